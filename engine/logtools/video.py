"""``log video``: the camera frames of a recording as an H.264 MP4, each at its own time.

PurpleDrop's ``pdlog`` guesses one frame rate from the first frames; a camera
whose rate wanders (network stalls, exposure changes) then drifts out of step
with the rest of the recording. Here every frame's presentation time comes
from its own receive time (or, with ``clock="timestamp"``, from the server's
timestamp in the message) on a 1/90000 s time base: a true variable frame
rate video whose frame times match the recording's. Each frame also gets the
duration up to the next one, so the last frame is shown for as long as the
one before it, and the file's duration is right.

PyAV is an optional extra (``pip install 'cuecap[video]'``); without it, or
without an H.264 encoder in its FFmpeg build, ``write_video`` raises
``MissingDependency`` before reading the recording, never a silent no-op.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import InvalidArgument
from engine.logtools.errors import LogToolError, MissingDependency
from engine.logtools.inputs import LogInput, Progress
from engine.logtools.timerange import EVERYTHING, TimeRange
from engine.logtools.timing import TIME_BASE, Clock, FrameClock, PtsPlanner

if TYPE_CHECKING:  # imported where used: PyAV is optional, Pillow slow to import
    from av import VideoFrame
    from av.container import OutputContainer
    from av.video.stream import VideoStream
    from PIL import Image, ImageFont

H264_ENCODERS = ("libx264", "libopenh264", "h264_videotoolbox", "h264_nvenc", "h264_vaapi")
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


# -- options and result ------------------------------------------------------------


@dataclass(frozen=True)
class VideoOptions:
    time_range: TimeRange = EVERYTHING
    speed: float = 1.0
    clock: Clock = "receive"
    overlay: bool = False
    utc: bool = False
    crf: int = 23
    preset: str = "medium"
    encoder: str | None = None  # None: the first H.264 encoder available


@dataclass
class VideoResult:
    path: Path
    frames: int = 0
    skipped: int = 0
    adjusted: int = 0
    missing_timestamps: int = 0
    first_time: float | None = None
    last_time: float | None = None
    duration: float = 0.0
    width: int = 0
    height: int = 0
    encoder: str = ""
    errors: list[str] = field(default_factory=list)


# -- adapters ----------------------------------------------------------------------


def require_av() -> None:
    """``MissingDependency`` saying how to install PyAV, unless ``import av`` works."""
    try:
        import av  # noqa: F401
    except ImportError:
        raise MissingDependency(
            "making videos needs PyAV, which is not installed: pip install 'cuecap[video]'"
        ) from None


def choose_encoder(wanted: str | None = None) -> str:
    """The H.264 encoder to use: ``wanted`` if available, else the first that is."""
    import av

    candidates = (wanted,) if wanted else H264_ENCODERS
    for name in candidates:
        try:
            av.codec.Codec(name, "w")
        except (ValueError, av.FFmpegError):  # UnknownCodecError is a ValueError
            continue
        return name
    if wanted:
        raise MissingDependency(f"encoder {wanted!r} is not in this PyAV/FFmpeg build")
    raise MissingDependency(
        f"this PyAV/FFmpeg build has no H.264 encoder (tried {', '.join(H264_ENCODERS)}); "
        "install the PyAV wheel from PyPI, which bundles libx264"
    )


def container_format(out: Path) -> str:
    fmt = CONTAINERS.get(out.suffix.lower())
    if fmt is None:
        raise LogToolError(
            f"{out}: unknown video type {out.suffix or '(no suffix)'!r}; use one of "
            f"{', '.join(sorted(CONTAINERS))}"
        )
    return fmt


def overlay_text(t: float, start: float, utc: bool) -> str:
    """The label drawn on a frame: its date and time, and seconds since the first frame."""
    when = datetime.fromtimestamp(t, tz=UTC) if utc else datetime.fromtimestamp(t).astimezone()
    return f"{when.isoformat(sep=' ', timespec='milliseconds')}  +{t - start:.3f} s"


class _Painter:
    """Decodes camera JPEGs into RGB images of one even size, optionally labelled."""

    def __init__(self, overlay: bool) -> None:
        from PIL import Image, ImageDraw, ImageFont

        self._image, self._draw_mod, self._font_mod = Image, ImageDraw, ImageFont
        self.overlay = overlay
        self.size: tuple[int, int] | None = None
        self._font: ImageFont.ImageFont | ImageFont.FreeTypeFont | None = None

    def image(self, data: bytes, label: str | None) -> Image.Image:
        img: Image.Image = self._image.open(io.BytesIO(data))
        img = img.convert("RGB")
        if self.size is None:
            w, h = img.size
            if w < 2 or h < 2:
                raise InvalidArgument(f"a {w}x{h} image is too small for a video")
            self.size = (w - w % 2, h - h % 2)  # H.264 4:2:0 needs even sides
            if label is not None:
                self._font = self._load_font(*self.size, label)
        if img.size != self.size:
            w, h = self.size
            if img.size[0] - w > 1 or img.size[1] - h > 1 or img.size[0] < w or img.size[1] < h:
                img = img.resize(self.size)
            else:
                img = img.crop((0, 0, w, h))
        if label is not None:
            self._label(img, label)
        return img

    def _load_font(
        self, width: int, height: int, sample: str
    ) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
        """A font as large as the frame allows: 1/24 of its height, narrowed to fit its width."""
        size = max(6, height // 24)
        try:
            font = self._font_mod.load_default(size=size)
        except (TypeError, OSError, ImportError):  # Pillow without FreeType: one fixed size
            return self._font_mod.load_default()
        text_width = font.getlength(sample + "000")  # room for the offset to grow
        room = width * 0.9
        if text_width > room:
            font = self._font_mod.load_default(size=max(6, int(size * room / text_width)))
        return font

    def _label(self, img: Image.Image, text: str) -> None:
        draw = self._draw_mod.Draw(img)
        pad = max(2, img.size[1] // 120)
        left, top, right, bottom = draw.textbbox((pad * 2, pad * 2), text, font=self._font)
        draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=(0, 0, 0))
        draw.text((pad * 2, pad * 2), text, fill=(255, 255, 255), font=self._font)


def write_video(
    log: LogInput, out: str | os.PathLike[str], options: VideoOptions = VideoOptions(), *,
    progress: Progress | None = None, force: bool = False,
) -> VideoResult:  # fmt: skip
    """Encode the ``image`` frames of ``log`` to ``out``; see the module docstring.

    The video is written to a hidden temporary file beside ``out`` and renamed
    when complete, so a failure never leaves a broken video or clobbers a file.
    """
    out = Path(out)
    fmt = container_format(out)
    if out.exists() and not force:
        raise LogToolError(f"{out}: already exists (use --force to replace it)")
    if out.is_dir():
        raise LogToolError(f"{out}: is a folder")
    require_av()
    import av

    encoder = choose_encoder(options.encoder)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LogToolError(f"{out.parent}: cannot create folder: {exc.strerror or exc}") from None
    clock = FrameClock(options.clock)
    painter = _Painter(options.overlay)
    result = VideoResult(path=out, encoder=encoder)
    tmp = out.with_name(f".{out.name}.partial")
    container: OutputContainer | None = None
    stream: VideoStream | None = None
    planner: PtsPlanner | None = None
    held: VideoFrame | None = None  # the previous frame: its duration is known when the next comes
    last_interval = 0
    durations: dict[int | None, int] = {}  # by pts, which PyAV types as optional
    try:
        for frame, data in log.images(options.time_range, progress):
            t = clock.time(frame)
            if planner is None:
                planner = PtsPlanner(t, options.speed)
            label = overlay_text(t, planner.start, options.utc) if options.overlay else None
            try:
                img = painter.image(data, label)
            except (OSError, ValueError) as exc:  # Pillow: not an image, cut short...
                result.skipped += 1
                if len(result.errors) < 5:
                    result.errors.append(f"record {frame.seq}: {exc}")
                continue
            if container is None or stream is None:
                assert painter.size is not None  # set by the first image
                container, stream = _open(tmp, fmt, encoder, painter.size, options)
            video_frame = av.VideoFrame.from_image(img)
            video_frame.pts = planner.pts(t)
            video_frame.time_base = TIME_BASE
            if held is not None:
                last_interval = video_frame.pts - (held.pts or 0)
                held.duration = last_interval
                _encode(container, stream, held, durations)
            held = video_frame
            if result.first_time is None:
                result.first_time = t
            result.last_time = t
            result.frames += 1
        if held is None:
            reason = (
                f"none of its {result.skipped} camera frames could be decoded ({result.errors[0]})"
                if result.skipped
                else "no camera (image) frames"
            )
            where = "" if options.time_range.is_open else f" in {log.describe(options.time_range)}"
            raise LogToolError(f"{log.path}: {reason}{where}; no video written")
        assert container is not None and stream is not None  # opened for the first frame held
        held.duration = last_interval or round(1 / 30 / TIME_BASE)
        _encode(container, stream, held, durations)
        _encode(container, stream, None, durations)
        container.close()
        container = None
        os.replace(tmp, out)
    except av.FFmpegError as exc:
        raise LogToolError(f"{out}: encoding failed: {exc}") from None
    finally:
        if container is not None:
            with contextlib.suppress(Exception):
                container.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    assert planner is not None and planner.last is not None
    result.adjusted = planner.adjusted
    result.missing_timestamps = clock.missing
    result.width, result.height = painter.size or (0, 0)
    result.duration = float((planner.last + held.duration) * TIME_BASE)
    return result


def _open(
    tmp: Path, fmt: str, encoder: str, size: tuple[int, int], options: VideoOptions
) -> tuple[OutputContainer, VideoStream]:
    import av
    from av.video.stream import VideoStream

    container = av.open(str(tmp), mode="w", format=fmt)
    codec_options = {}
    if encoder == "libx264":
        codec_options = {"crf": str(options.crf), "preset": options.preset}
    try:
        stream = container.add_stream(encoder, options=codec_options)
        if not isinstance(stream, VideoStream):  # an H.264 encoder makes a video stream
            raise LogToolError(f"{encoder} is not a video encoder")
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
    except Exception:
        container.close()
        raise
    return container, stream


def _encode(
    container: OutputContainer,
    stream: VideoStream,
    frame: VideoFrame | None,
    durations: dict[int | None, int],
) -> None:
    """Encode ``frame`` (None: flush) and mux what comes out, with each frame's own duration.

    Encoders that reorder frames do not carry durations through reliably, so
    packets get theirs back by presentation time.
    """
    if frame is not None:
        durations[frame.pts] = frame.duration
    for packet in stream.encode(frame):
        duration = durations.pop(packet.pts, None)
        if duration is not None:
            packet.duration = duration
        container.mux(packet)
