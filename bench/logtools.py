"""Log tools: frame-time accuracy of ``log video`` and the speed of reading, exporting, encoding.

One run, side by side, on one simulated recording (seeded ``SimWorld``, a
camera that stalls now and then, receive times with network jitter):

  video     (a) ``cuecap log video``: every frame at its own receive time
            (true variable frame rate) against (b) PurpleDrop ``pdlog``'s way:
            one constant frame rate guessed from the first 100 frames. Both
            are really encoded with PyAV and read back; the table shows how
            far each video's frame times are from the recording's, and the
            encoding speed (frames/s).
  read      (a) a bare loop reading ``<I`` length + bytes (what PurpleDrop's
            reader does) against (b) ``LogInput.frames`` (index times, type
            peek) and (c) ``log info``'s summary (decodes and validates
            every record): MB/s.
  export    (a) ``log export``'s descriptor-driven flattening against (b)
            ``MessageToDict`` of every message then flattening the dict:
            rows/s of ``scan_capacitance`` (128 measurements each) and
            ``active_capacitance``.

    python bench/logtools.py [--seconds S] [--quick]
"""

from __future__ import annotations

import argparse
import io
import itertools
import random
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.core.frame import peek_kind  # noqa: E402
from engine.logtools.export import export_csv  # noqa: E402
from engine.logtools.info import summarize  # noqa: E402
from engine.logtools.inputs import LogInput  # noqa: E402
from engine.logtools.video import VideoOptions, write_video  # noqa: E402
from engine.recording.writer import RecordingWriter  # noqa: E402
from engine.sim.world import SimWorld  # noqa: E402

T0 = 1_714_557_600.0
TB = Fraction(1, 90000)


def make_recording(path: Path, seconds: float, seed: int = 11) -> list[float]:
    """A sim recording whose camera stalls; returns the image receive times."""
    world = SimWorld(seed, fps=15.0, image_size=(320, 240), idle=(2.0, 6.0))
    rng = random.Random(seed)
    records: list[tuple[float, bytes]] = []
    stall_until = -1.0
    drop = False
    for t, raw in world.events(T0, T0 + seconds):
        kind = peek_kind(raw)
        if kind == "image_transform":
            if t >= stall_until and rng.random() < 0.02:  # a stall of 0.3-1.5 s
                stall_until = t + rng.uniform(0.3, 1.5)
            drop = t < stall_until or rng.random() < 0.1
        if drop and kind in ("image_transform", "image"):
            continue
        records.append((t + rng.uniform(0.001, 0.030), raw))
    records.sort(key=lambda item: item[0])
    with RecordingWriter(path, recorder="bench", opened_at=records[0][0]) as writer:
        for t, raw in records:
            writer.write(raw, t)
    return [t for t, raw in records if peek_kind(raw) == "image"]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def race(fns: list[Callable[[], Any]], rounds: int) -> list[tuple[float, Any]]:
    """Best time and first result of each contender, rounds interleaved (a b c a b c ...)
    so that load from other processes falls on all of them alike."""
    times: list[list[float]] = [[] for _ in fns]
    results: list[Any] = [None] * len(fns)
    for r in range(rounds):
        for i, fn in enumerate(fns):
            seconds, result = timed(fn)
            times[i].append(seconds)
            if r == 0:
                results[i] = result
    return [(min(t), result) for t, result in zip(times, results, strict=True)]


# -- video -------------------------------------------------------------------------------


def pdlog_style(path: Path, out: Path) -> int:
    """Baseline: a constant frame rate guessed from the first 100 image timestamps."""
    import av

    from engine.logtools.video import _Painter  # same decoding, only the timing differs

    frames = [(f.timestamp, m.image_data) for f, m in LogInput(path).messages("image")]
    head = [t for t, _ in frames[:100]]
    fps = (len(head) - 1) / (head[-1] - head[0])
    rate = Fraction(fps).limit_denominator(1000)
    painter = _Painter(overlay=False)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"preset": "veryfast"})
        for i, (_, data) in enumerate(frames):
            img = painter.image(data, None)
            if i == 0:
                stream.width, stream.height = painter.size
                stream.pix_fmt = "yuv420p"
            frame = av.VideoFrame.from_image(img)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return len(frames)


def read_back(path: Path) -> list[float]:
    import av

    with av.open(str(path)) as container:
        return [float(f.pts * f.time_base) for f in container.decode(video=0)]


def errors(video: list[float], recorded: list[float]) -> tuple[float, float]:
    """Max and mean |video time - recorded time| in ms (both from their first frame)."""
    diffs = [abs(v - (r - recorded[0])) * 1000 for v, r in zip(video, recorded, strict=True)]
    return max(diffs), sum(diffs) / len(diffs)


def bench_video(path: Path, image_times: list[float], tmp: Path) -> None:
    ours_out, base_out = tmp / "ours.mp4", tmp / "pdlog.mp4"
    ours_s, result = timed(
        lambda: write_video(LogInput(path), ours_out, VideoOptions(preset="veryfast"), force=True)
    )
    base_s, n = timed(lambda: pdlog_style(path, base_out))
    ours_t, base_t = read_back(ours_out), read_back(base_out)
    assert len(ours_t) == len(base_t) == len(image_times) == result.frames == n
    ours_err, base_err = errors(ours_t, image_times), errors(base_t, image_times)
    gaps = [b - a for a, b in itertools.pairwise(image_times)]
    print(
        f"\nvideo: {len(image_times)} frames 320x240 over {image_times[-1] - image_times[0]:.1f} s, "
        f"frame gaps {min(gaps) * 1000:.0f}-{max(gaps) * 1000:.0f} ms"
    )
    print(f"  {'':26} {'max error':>11} {'mean error':>11} {'frames/s':>9}")
    print(
        f"  {'(a) cuecap log video (VFR)':26} {ours_err[0]:>8.3f} ms {ours_err[1]:>8.3f} ms {n / ours_s:>9.1f}"
    )
    print(
        f"  {'(b) pdlog-style const rate':26} {base_err[0]:>8.1f} ms {base_err[1]:>8.1f} ms {n / base_s:>9.1f}"
    )
    print(
        f"  ratio: max time error (b)/(a) = {base_err[0] / max(ours_err[0], 1e-3):.0f}x "
        f"(a's error is the 1/90000 s tick); encoding speed (a)/(b) = {base_s / ours_s:.2f}"
    )


# -- reading -----------------------------------------------------------------------------


def bare_read(path: Path) -> int:
    n = 0
    with open(path, "rb", buffering=1 << 20) as f:
        while True:
            header = f.read(4)
            if len(header) < 4:
                return n
            (size,) = struct.unpack("<I", header)
            f.read(size)
            n += 1


def bench_read(path: Path, rounds: int) -> None:
    mb = path.stat().st_size / 1e6
    (a_s, records), (b_s, _), (c_s, info) = race(
        [
            lambda: bare_read(path),
            lambda: sum(1 for _ in LogInput(path).frames()),
            lambda: summarize(LogInput(path)),
        ],
        rounds,
    )
    assert info.records == records
    print(f"\nread: {records} records, {mb:.1f} MB")
    for name, s in (("(a) bare <I loop", a_s), ("(b) LogInput.frames", b_s), ("(c) log info", c_s)):
        print(f"  {name:24} {mb / s:>8.1f} MB/s {records / s:>11.0f} records/s")
    print(f"  ratio to (a): frames {a_s / b_s:.2f}, info {a_s / c_s:.2f}")


# -- export ------------------------------------------------------------------------------


def dict_flatten(node: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            dict_flatten(value, f"{prefix}{key}_", out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            dict_flatten(value, f"{prefix}{i}_", out)
    elif isinstance(node, int | float | bool):
        out[prefix[:-1]] = node


def message_to_dict_export(path: Path, kind: str) -> int:
    """Baseline: protobuf's JSON mapping of each message, flattened, written with csv."""
    import csv

    from google.protobuf.json_format import MessageToDict

    rows = []
    for frame, message in LogInput(path).messages(kind):
        row = {"time": frame.time, "seq": frame.seq}
        dict_flatten(MessageToDict(message, preserving_proto_field_name=True), "", row)
        rows.append(row)
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return len(rows)


def bench_export(path: Path, rounds: int) -> None:
    print("\nexport (rows/s):")
    for kind in ("scan_capacitance", "active_capacitance"):
        (a_s, result), (b_s, n) = race(
            [
                lambda k=kind: export_csv(LogInput(path), k, io.StringIO()),
                lambda k=kind: message_to_dict_export(path, k),
            ],
            rounds,
        )
        assert result.rows == n
        print(
            f"  {kind:20} (a) log export {n / a_s:>9.0f}   (b) MessageToDict {n / b_s:>9.0f}"
            f"   ratio (a)/(b) {b_s / a_s:.2f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=120.0, help="recording length (default 120)"
    )
    parser.add_argument("--quick", action="store_true", help="a 30 s recording, one round")
    args = parser.parse_args(argv)
    seconds = 30.0 if args.quick else args.seconds
    rounds = 1 if args.quick else 5
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "bench.bin"
        build_s, image_times = timed(lambda: make_recording(path, seconds))
        print(f"recording: {seconds:.0f} s of simulated stream built in {build_s:.1f} s")
        bench_video(path, image_times, tmp)
        bench_read(path, rounds)
        bench_export(path, rounds)


if __name__ == "__main__":
    main()
