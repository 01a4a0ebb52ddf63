"""``log frames``: the camera frames of a recording as image files named by time.

The bytes are written exactly as received (no decode, no re-encode), so a
frame file is the camera's own JPEG. Names come from a path template
(strftime plus ``{seq}``, ``{index}``, ``{offset}``), by default one that
sorts in time order; two frames that would get the same name (same
microsecond) keep both, the later one with ``-{seq}`` added. Each file's
modification time is set to its frame's time, so file browsers sort them
right too.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.core.templates import PathEscapeError, Template, TemplateError, safe_join
from engine.logtools.errors import LogToolError
from engine.logtools.inputs import LogInput, Progress
from engine.logtools.timerange import EVERYTHING, TimeRange
from engine.logtools.timing import Clock, FrameClock

DEFAULT_NAME = "%Y%m%d-%H%M%S.%f.jpg"
NAME_FIELDS = ("seq", "index", "offset")


@dataclass
class FramesResult:
    folder: Path
    written: int = 0
    first: Path | None = None
    last: Path | None = None
    bytes: int = 0


def parse_name(template: str) -> Template:
    """The file name template, checked before anything is read."""
    try:
        return Template(template, NAME_FIELDS)
    except TemplateError as exc:
        raise LogToolError(f"--name: {exc}") from None


def export_frames(
    log: LogInput,
    folder: str | os.PathLike[str],
    *,
    name: str = DEFAULT_NAME,
    time_range: TimeRange = EVERYTHING,
    clock: Clock = "receive",
    utc: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> FramesResult:
    """Write each ``image`` frame of ``log`` to ``folder``; refuses to overwrite unless ``force``."""
    template = parse_name(name)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise LogToolError(f"{folder}: exists and is not a folder")
    frame_clock = FrameClock(clock)
    result = FramesResult(folder=folder)
    start: float | None = None
    last_base: Path | None = None
    for index, (frame, data) in enumerate(log.images(time_range, progress)):
        t = frame_clock.time(frame)
        if start is None:
            start = t
        when = datetime.fromtimestamp(t, tz=UTC) if utc else datetime.fromtimestamp(t)
        values = {"seq": frame.seq, "index": index, "offset": f"{t - start:.3f}"}
        try:
            path = safe_join(folder, template.render(values, when))
        except (PathEscapeError, TemplateError) as exc:
            raise LogToolError(f"--name {name!r}: {exc}") from None
        if path == last_base:  # same name as the frame before: keep both
            path = path.with_name(f"{path.stem}-{frame.seq}{path.suffix}")
        else:
            last_base = path
        _write(path, data, force)
        with contextlib.suppress(OSError):
            os.utime(path, (t, t))
        result.written += 1
        result.bytes += len(data)
        result.first = result.first or path
        result.last = path
    if result.written == 0:
        where = "" if time_range.is_open else f" in {log.describe(time_range)}"
        raise LogToolError(f"{log.path}: no camera (image) frames{where}; nothing written")
    return result


def _write(path: Path, data: bytes, force: bool) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb" if force else "xb") as f:
            f.write(data)
    except FileExistsError:
        raise LogToolError(
            f"{path}: already exists (use --force to replace, or another folder)"
        ) from None
    except OSError as exc:
        raise LogToolError(f"{path}: cannot write: {exc.strerror or exc}") from None
