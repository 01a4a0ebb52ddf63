"""Recorder pipeline cost, in process: what detectors, decisions and pre-roll add per message.

``bench/ingest.py`` measures the whole thing behind a real websocket, where the
network dominates and a loaded machine blurs the picture. This one feeds the
same pre-built small events straight in, so the per-message cost of each layer
shows. Side by side, in one run, best of ``--rounds``:

  (a) bare      ``<I`` length + bytes into a buffered file (the floor)
  (b) writer    ``RecordingWriter.write`` (records, index, counts)
  (c) recorder  ``Recorder.feed``, one message-type detector, recording from the first move on
  (d) full      the same with message + step (decodes) + rate detectors
  (e) idle      ``Recorder.feed``, idle: every message into the pre-roll, nothing written

Every contender builds a ``Frame`` per message, as a source does. It also
checks that memory stays flat while idle: the pre-roll's size at the end of
the stream equals its size halfway.

    python bench/recorder.py [--messages N] [--rounds R] [--quick]
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import small_events  # noqa: E402  (the same stream as the ingest benchmark)

from engine.core.clock import ManualClock  # noqa: E402
from engine.core.frame import Frame  # noqa: E402
from engine.events import discard  # noqa: E402
from engine.recorder.config import RecorderConfig  # noqa: E402
from engine.recorder.recorder import Recorder  # noqa: E402
from engine.recording.writer import RecordingWriter  # noqa: E402

MOVES = {"type": "message", "types": ["electrode_state"]}
FULL = [
    MOVES,
    {"type": "step", "field": "active_capacitance.calibrated", "delta": 2.0},
    {"type": "rate", "types": ["image"], "per_second": 1},
]
STEP = 0.001  # receive times: one message per millisecond


def bare(events: list[bytes], folder: Path) -> None:
    pack = struct.Struct("<I").pack
    with open(folder / "bare.bin", "wb", buffering=1 << 20) as f:
        write = f.write
        for i, raw in enumerate(events):
            frame = Frame(raw, 1000.0 + i * STEP, i, "bench")
            write(pack(len(frame.raw)))
            write(frame.raw)


def writer(events: list[bytes], folder: Path) -> None:
    w = RecordingWriter(folder / "writer.bin", opened_at=1000.0)
    write = w.write
    for i, raw in enumerate(events):
        frame = Frame(raw, 1000.0 + i * STEP, i, "bench")
        write(frame.raw, frame.time)
    w.close()


def _recorder(folder: Path, activity: list[dict[str, object]], **options: object) -> Recorder:
    config = RecorderConfig.model_validate(
        {"activity": activity, "pre_roll": 2, "post_roll": 600, "folder": "", **options}
    )
    return Recorder("bench", config, root=folder, emit=discard, clock=ManualClock(1000.0))


def _feed(recorder: Recorder, events: list[bytes]) -> None:
    feed = recorder.feed
    for i, raw in enumerate(events):
        feed(Frame(raw, 1000.0 + i * STEP, i, "bench"))
    recorder.close()
    if recorder.last_error:
        raise RuntimeError(recorder.last_error)


def recorder_simple(events: list[bytes], folder: Path) -> None:
    _feed(_recorder(folder, [MOVES], file_name="simple.bin"), events)


def recorder_full(events: list[bytes], folder: Path) -> None:
    _feed(_recorder(folder, FULL, file_name="full.bin"), events)


def recorder_idle(events: list[bytes], folder: Path) -> None:
    _feed(_recorder(folder, [{"type": "message", "types": ["device_info"]}]), events)


CONTENDERS: dict[str, tuple[str, Callable[[list[bytes], Path], None]]] = {
    "a": ("bare length+bytes loop", bare),
    "b": ("RecordingWriter", writer),
    "c": ("Recorder, 1 detector", recorder_simple),
    "d": ("Recorder, 3 detectors", recorder_full),
    "e": ("Recorder, idle (pre-roll)", recorder_idle),
}


def memory_flat(events: list[bytes]) -> tuple[int, int, int, int]:
    """Pre-roll (records, bytes) halfway and at the end of an idle stream."""
    with tempfile.TemporaryDirectory() as tmp:
        recorder = _recorder(Path(tmp), [{"type": "message", "types": ["device_info"]}])
        ring = recorder.policy.preroll
        half = len(events) // 2
        for i, raw in enumerate(events):
            recorder.feed(Frame(raw, 1000.0 + i * STEP, i, "bench"))
            if i == half:
                middle = (len(ring), ring.bytes)
        end = (len(ring), ring.bytes)
        recorder.close()
    return (*middle, *end)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a second or two, for smoke tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.rounds = 20_000, 1
    events = small_events(args.messages)
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cuecap-bench-") as tmp:
        for _ in range(args.rounds):
            for key, (_, fn) in CONTENDERS.items():
                folder = Path(tmp, key)
                folder.mkdir(exist_ok=True)
                start = time.perf_counter()
                fn(events, folder)
                seconds = time.perf_counter() - start
                best[key] = min(best.get(key, seconds), seconds)
                for p in folder.iterdir():
                    p.unlink()
    n = len(events)
    print(
        f"{n} small events ({sum(map(len, events)) / n:,.0f} bytes on average), best of {args.rounds}"
    )
    print(f"{'contender':<32} {'messages/s':>12} {'us/message':>11} {'vs (a)':>7} {'vs (b)':>7}")
    for key, (label, _) in CONTENDERS.items():
        rate = n / best[key]
        print(
            f"({key}) {label:<28} {rate:>12,.0f} {best[key] / n * 1e6:>11.2f} "
            f"{best['a'] / best[key]:>7.2f} {best['b'] / best[key]:>7.2f}"
        )
    extra = (best["d"] - best["b"]) / n * 1e6
    print(f"the full pipeline adds {extra:.2f} us per message to the writer it feeds")
    mid_n, mid_b, end_n, end_b = memory_flat(events)
    print(
        f"idle pre-roll halfway: {mid_n} records / {mid_b} bytes; at the end: {end_n} / {end_b} "
        f"({'flat' if abs(end_b - mid_b) <= 0.05 * max(mid_b, 1) else 'GROWING'})"
    )
    return {key: n / seconds for key, seconds in best.items()}


if __name__ == "__main__":
    main()
