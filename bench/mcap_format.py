"""MCAP against cuecap's own format: write speed, file size, and a time-range read via the index.

One run, side by side, on the simulator's stream (seeded ``SimWorld``: capacitance,
temperatures, HV, droplet moves and 640x480 JPEG camera frames):

  write     (a) ``RecordingWriter`` (pdrecord ``.bin`` + ``.idx``) against
            (b) ``McapRecordingWriter`` with zstd chunks and (c) with lz4
            chunks (1 MiB, summary and indexes): MB/s of records written,
            best of ``--rounds``, and the file size of each (MCAP / .bin).
  range     a large MCAP recording (``--size``, 1 GB by default: the stream
            repeated with shifted times) in a temporary folder, and a
            10-second window read (a) through the chunk index
            (``McapRecordingReader.frames_between``) against (b) a full scan
            of the same file keeping the frames in the window. Both must
            give the same frames.

    python bench/mcap_format.py [--seconds S] [--size BYTES] [--rounds R] [--dir DIR] [--quick]

(Not ``bench/mcap.py``: the benchmarks' folder is on ``sys.path``, and that
name would hide the ``mcap`` package itself.)
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from results import report  # noqa: E402

from engine.core.frame import Frame  # noqa: E402
from engine.core.units import parse_size  # noqa: E402
from engine.recording.mcap import Compression, McapRecordingReader, McapRecordingWriter  # noqa: E402
from engine.recording.writer import RecordingWriter  # noqa: E402
from engine.sim.world import SimWorld  # noqa: E402

T0 = 1_714_557_600.0
WINDOW = 10.0


def stream(seconds: float, seed: int = 7) -> list[tuple[float, bytes]]:
    world = SimWorld(seed, fps=10.0, image_size=(640, 480), idle=(2.0, 6.0))
    return list(world.events(T0, T0 + seconds))


def frames_of(records: list[tuple[float, bytes]]) -> list[Frame]:
    return [Frame(raw, t, i, "sim") for i, (t, raw) in enumerate(records)]


def write_bin(path: Path, frames: list[Frame]) -> None:
    with RecordingWriter(path, recorder="bench", flush_interval=math.inf) as writer:
        write = writer.write
        for frame in frames:
            write(frame.raw, frame.time)


def write_mcap(path: Path, frames: list[Frame], compression: Compression) -> None:
    with McapRecordingWriter(
        path, recorder="bench", compression=compression, flush_interval=math.inf
    ) as writer:
        write = writer.write_frame
        for frame in frames:
            write(frame)


def best_of(rounds: int, fn: Callable[[int], Any]) -> float:
    best = float("inf")
    for r in range(rounds):
        start = time.perf_counter()
        fn(r)
        best = min(best, time.perf_counter() - start)
    return best


def bench_write(folder: Path, seconds: float, rounds: int) -> None:
    records = stream(seconds)
    frames = frames_of(records)
    payload = sum(len(f.raw) for f in frames)
    print(f"write: {len(frames):,} records, {payload / 1e6:.1f} MB, {seconds:g} s of simulator")
    rows: list[tuple[str, float, int]] = []
    contenders: list[tuple[str, str, Callable[[Path], None]]] = [
        ("(a) pdrecord .bin", "bin", lambda p: write_bin(p, frames)),
        ("(b) MCAP zstd", "mcap", lambda p: write_mcap(p, frames, Compression.ZSTD)),
        ("(c) MCAP lz4", "mcap", lambda p: write_mcap(p, frames, Compression.LZ4)),
    ]
    for label, suffix, fn in contenders:

        def once(r: int, fn: Callable[[Path], None] = fn, suffix: str = suffix) -> None:
            out = folder / f"w{r}.{suffix}"
            for p in folder.glob(f"w{r}.{suffix}*"):
                p.unlink()
            fn(out)

        seconds_taken = best_of(rounds, once)
        out = folder / f"w0.{suffix}"
        size = out.stat().st_size + (Path(f"{out}.idx").stat().st_size if suffix == "bin" else 0)
        rows.append((label, seconds_taken, size))
        for p in folder.glob("w*"):
            p.unlink()
    print(f"{'contender':<22}{'MB/s':>10}{'seconds':>10}{'file MB':>10}")
    for label, taken, size in rows:
        print(f"{label:<22}{payload / taken / 1e6:>10.1f}{taken:>10.3f}{size / 1e6:>10.2f}")
    base_time, base_size = rows[0][1], rows[0][2]
    for (label, taken, size), key in zip(rows[1:], ("zstd", "lz4"), strict=True):
        report("mcap", f"write speed, MCAP {key} / pdrecord", base_time / taken, "x")
        report("mcap", f"file size, MCAP {key} / pdrecord", size / base_size, "x", better="lower")
        print(
            f"{label}: write speed {base_time / taken:.2f} x pdrecord, "
            f"file size {size / base_size:.3f} x pdrecord (.bin + .idx)"
        )


def build_large(path: Path, size: int) -> tuple[int, float, float]:
    """An MCAP of about ``size`` bytes; returns (records, first time, last time)."""
    base = stream(60.0)
    span = base[-1][0] - T0 + 0.1
    n = 0
    last = T0
    with McapRecordingWriter(path, recorder="bench", flush_interval=math.inf) as writer:
        round_ = 0
        while True:
            shift = round_ * span
            for t, raw in base:
                writer.write_frame(Frame(raw, t + shift, n, "sim"))
                n += 1
                last = t + shift
            round_ += 1
            if writer.bytes >= size:
                break
    return n, T0, last


def bench_range(folder: Path, size: int) -> None:
    path = folder / "large.mcap"
    started = time.perf_counter()
    records, first, last = build_large(path, size)
    built = time.perf_counter() - started
    actual = path.stat().st_size
    print(
        f"\nrange: {actual / 1e9:.2f} GB MCAP, {records:,} records, "
        f"{(last - first) / 60:.1f} min of stream (written in {built:.1f} s)"
    )
    start = first + (last - first) / 2
    end = start + WINDOW

    def indexed() -> list[tuple[int, float]]:
        return [(f.seq, f.time) for f in McapRecordingReader(path).frames_between(start, end)]

    def full_scan() -> list[tuple[int, float]]:
        return [(f.seq, f.time) for f in McapRecordingReader(path) if start <= f.time < end]

    t_open = best_of(3, lambda r: McapRecordingReader(path))
    t_index = best_of(3, lambda r: indexed())
    t_scan = best_of(1, lambda r: full_scan())
    assert indexed() == full_scan(), "the index and the scan disagree"
    window = len(indexed())
    print(f"{'read of a 10 s window':<28}{'seconds':>10}{'records':>10}")
    print(f"{'(a) via the chunk index':<28}{t_index:>10.3f}{window:>10,}")
    print(f"{'    opening alone':<28}{t_open:>10.3f}{'':>10}  (reading the summary)")
    print(f"{'(b) full scan':<28}{t_scan:>10.3f}{window:>10,}")
    print(f"index vs full scan: {t_scan / t_index:.0f} x faster")
    report(
        "mcap",
        f"10 s window of a {actual / 1e9:.2f} GB MCAP: full scan / index",
        t_scan / t_index,
        "x",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="simulator seconds to write")
    parser.add_argument("--size", default="1GB", help="size of the large MCAP (e.g. 1GB, 200MB)")
    parser.add_argument("--rounds", type=int, default=3, help="write runs per contender")
    parser.add_argument("--dir", default=None, help="folder for the temporary files")
    parser.add_argument("--quick", action="store_true", help="a few seconds, for smoke tests")
    args = parser.parse_args(argv)
    size = int(parse_size(args.size))
    seconds, rounds = args.seconds, args.rounds
    if args.quick:
        seconds, rounds, size = 5.0, 1, 30_000_000
    folder = Path(tempfile.mkdtemp(prefix="cuecap-bench-mcap-", dir=args.dir))
    try:
        free = shutil.disk_usage(folder).free
        if free < 2 * size:
            print(f"only {free / 1e9:.1f} GB free in {folder}; use --size or --dir")
            return 1
        bench_write(folder, seconds, rounds)
        bench_range(folder, size)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"(load average {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
