"""Ingest speed: how fast each way of recording a PurpleDrop stream keeps up.

One run, side by side, on the same stream: a "blaster" websocket server in its
own process sends N pre-generated PurpleDrop events as fast as the socket
takes them (the frames are serialized once, up front, so the server costs
next to nothing and the receiver is what is measured). Two cases: small
events (~250 bytes: the capacitance traffic of a real PurpleDrop, with a
droplet move now and then) and ~100 KB camera frames. Contenders, each a
function below:

  (a) bare      a bare websockets receive loop writing ``<I`` length + bytes
  (b) seed      the seed ``EventRecorder.__record`` loop, as written
  (c) cuecap    ``cuecap record``'s pipeline, in-process (same code as the CLI)
  (d) recorder  the full activity pipeline: source, Frame, detectors (decoding
                what they need), decisions and state machine, pre-roll, writer

(a), (b) and (c) write all N messages to one file; the file sizes are checked.
(d) writes only around the moves, as in a real experiment; its files are
checked to be in-order, non-overlapping slices of the stream holding every
move. Each round runs every contender once, in a rotating order, so a busy
machine slows them alike; rates are the best of ``--rounds``, and ratios are
given both from those and as the median of the per-round ratios.

    python bench/ingest.py [--small N] [--images N] [--rounds R] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import shutil
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# --- the stream --------------------------------------------------------------------------


D_TARGET = 0.9  # (d)/(a) and (c)/(a), medians of the paired rounds (issue 16)
C_TARGET = 0.9

MOVE_EVERY = 10_000
"""One droplet move per this many small events (~100 s of a real stream)."""


def small_events(n: int, seed: int = 1) -> list[bytes]:
    """The traffic of a PurpleDrop while an experiment runs, ~250 bytes on average.

    Per 100 events (about a second on real hardware): active and group
    capacitance at ~50 Hz each, temperatures, the HV regulator and a
    128-electrode capacitance scan. Every ``MOVE_EVERY`` events a droplet moves:
    five ``electrode_state`` events, after which ``active_capacitance.calibrated``
    steps by 5 (its noise is ~0.05). Everything else is the idle background.
    """
    from engine.proto.purpledrop_pb2 import PurpleDropEvent

    rnd = random.Random(seed)
    out = []
    level = 10.0
    moving = 0
    for i in range(n):
        event = PurpleDropEvent()
        slot = i % 100
        stamp_s, stamp_ns = 1_700_000_000 + i // 100, (i % 100) * 10_000_000
        if i % MOVE_EVERY == MOVE_EVERY // 2:
            moving = 20
        if moving and slot % 2 == 1:
            moving -= 1
            if moving % 4 == 0:
                state = event.electrode_state
                for _ in range(2):
                    state.drive_groups.add(
                        electrodes=[rnd.random() < 0.1 for _ in range(128)], setting=200
                    )
                for _ in range(3):
                    state.scan_groups.add(
                        electrodes=[rnd.random() < 0.1 for _ in range(128)], setting=0
                    )
                if moving == 0:
                    level += 5.0 if rnd.random() < 0.5 else -5.0
                out.append(event.SerializeToString())
                continue
        msg: Any
        if slot == 99:
            msg = event.scan_capacitance
            for _ in range(128):
                msg.measurements.add(
                    capacitance=rnd.random(), drop_present=rnd.random() < 0.1, raw=rnd.random()
                )
        elif slot in (25, 75):
            msg = event.temperature_control
            msg.temperatures.extend([25 + rnd.random(), 25 + rnd.random()])
            msg.duty_cycles.extend([0.3, 0.3])
        elif slot == 50:
            msg = event.hv_regulator
            msg.voltage, msg.v_target_out = 200 + rnd.random(), 200.0
        elif slot % 2 == 0:
            msg = event.active_capacitance
            msg.baseline, msg.measurement = 1.0 + rnd.random() * 0.01, level + rnd.random() * 0.1
            msg.calibrated = level + rnd.gauss(0, 0.05)
        else:
            msg = event.group_capacitance
            msg.measurements.extend(rnd.random() for _ in range(56))
            msg.raw_measurements.extend(rnd.random() for _ in range(56))
        msg.timestamp.seconds, msg.timestamp.nanos = stamp_s, stamp_ns
        out.append(event.SerializeToString())
    return out


def image_events(n: int, size: int = 100_000, seed: int = 2) -> list[bytes]:
    """Camera frames: incompressible ~100 KB payloads, as JPEGs are."""
    from engine.proto.purpledrop_pb2 import PurpleDropEvent

    rnd = random.Random(seed)
    payloads = [rnd.randbytes(size + k * 997) for k in range(8)]
    out = []
    for i in range(n):
        event = PurpleDropEvent()
        event.image.timestamp.seconds = 1_700_000_000 + i // 30
        event.image.image_data = payloads[i % len(payloads)]
        out.append(event.SerializeToString())
    return out


CASES: dict[str, Callable[[int], list[bytes]]] = {"small": small_events, "images": image_events}

# --- the blaster (its own process) -------------------------------------------------------

_CHUNK = 1 << 20


def _prepare(events: list[bytes]) -> list[bytes]:
    """The whole stream as ready-to-send websocket frames, in ~1 MiB chunks, closing last."""
    from websockets.frames import Close, Frame, Opcode

    chunks, pending, size = [], [], 0
    for raw in events:
        data = Frame(Opcode.BINARY, raw).serialize(mask=False)
        pending.append(data)
        size += len(data)
        if size >= _CHUNK:
            chunks.append(b"".join(pending))
            pending, size = [], 0
    pending.append(Frame(Opcode.CLOSE, Close(1000, "done").serialize()).serialize(mask=False))
    chunks.append(b"".join(pending))
    return chunks


def _blaster(conn: multiprocessing.connection.Connection, counts: dict[str, int]) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    streams, info = {}, {}
    for case, n in counts.items():
        events = CASES[case](n)
        streams[case] = _prepare(events)
        info[case] = (len(events), sum(map(len, events)))

    async def handler(ws: ServerConnection) -> None:
        chunks = streams[ws.request.path.strip("/")]
        # A client that stops reading part-way (a timed run) ends its stream early.
        with contextlib.suppress(RuntimeError, ConnectionError):
            for chunk in chunks:  # bypass per-message sends: the server must not be the bottleneck
                ws.transport.write(chunk)
                await ws.drain()
        await ws.wait_closed()

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
            conn.send((server.sockets[0].getsockname()[1], info))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop

    asyncio.run(main())


# --- the contenders ----------------------------------------------------------------------

Contender = Callable[[str, Path, int], Awaitable[None]]


async def bare_loop(uri: str, path: Path, n: int) -> None:
    """(a) the least anyone can do: receive, write length and bytes."""
    from websockets.asyncio.client import connect

    pack = struct.Struct("<I").pack
    with open(path, "wb") as f:
        async with connect(uri, compression=None, max_size=None, proxy=None) as ws:
            write = f.write
            async for msg in ws:
                write(pack(len(msg)))
                write(msg)


async def seed_loop(uri: str, path: Path, n: int) -> None:
    """(b) the seed's ``EventRecorder.__record``, as written (it ends on the server's close)."""
    import websockets
    from websockets.exceptions import ConnectionClosedOK

    stop_event = asyncio.Event()

    async def __record(filepath: Path) -> int:  # verbatim from the seed
        msg_count = 0
        with open(filepath, "wb") as f:
            # With default close timeout, it takes a long time to close.
            async with websockets.connect(uri, close_timeout=0.2) as ws:
                while True:
                    recv_task = asyncio.create_task(ws.recv())
                    stop_task = asyncio.create_task(stop_event.wait())
                    done, pending = await asyncio.wait(  # noqa: RUF059
                        {recv_task, stop_task}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if stop_task in done:
                        recv_task.cancel()
                        return msg_count
                    msg_count += 1
                    raw_event = recv_task.result()
                    length_bytes = struct.pack("I", len(raw_event))
                    f.write(length_bytes)
                    f.write(raw_event)

    with contextlib.suppress(ConnectionClosedOK):
        await __record(path)
    stop_event.set()  # let the stop tasks the seed leaves behind, one per message, finish
    await asyncio.sleep(0)


async def cuecap_record(uri: str, path: Path, n: int) -> None:
    """(c) ``cuecap record``: WebSocketSource -> record_stream -> RecordingWriter."""
    from engine.recording.writer import RecordingWriter
    from engine.sources.session import record_stream
    from engine.sources.websocket import WebSocketSource

    writer = RecordingWriter(path, recorder="bench", source=uri, opened_at=time.time())
    summary = await record_stream(WebSocketSource(uri), writer, max_records=n)
    if summary.error:
        raise RuntimeError(summary.error)


# What a lab would declare: any move, or a step in the droplet's capacitance. The
# stream arrives ~1000x faster than a real PurpleDrop sends it, so the windows
# are ~1000x shorter than the usual 2 s / 3 s: a few hundred messages each.
RECORDER = {
    "activity": [
        {"type": "message", "types": ["electrode_state"]},
        {"type": "step", "field": "active_capacitance.calibrated", "delta": 2.0},
    ],
    "pre_roll": 0.002,
    "post_roll": 0.003,
    "folder": "",
    "file_name": "{seq:03d}.bin",
}


def _segments_of(path: Path) -> Path:
    return path.with_suffix(".d")


async def cuecap_recorder(uri: str, path: Path, n: int) -> None:
    """(d) the full activity pipeline, run as ``EventRecorder`` runs a recorder.

    WebSocketSource -> ``feed_source`` -> Recorder (detectors, decisions, state
    machine, pre-roll, segment writers), with ``run_session``'s flush tick.
    """
    from engine.core.clock import SYSTEM_CLOCK
    from engine.events import discard
    from engine.recorder.config import RecorderConfig
    from engine.recorder.recorder import Recorder, feed_source
    from engine.sources.session import run_session
    from engine.sources.websocket import WebSocketSource

    config = RecorderConfig.model_validate(RECORDER)
    root = _segments_of(path)
    recorder = Recorder("bench", config, root=root, emit=discard, clock=SYSTEM_CLOCK)
    source = WebSocketSource(uri)
    _, error = await run_session(
        feed_source(recorder, source, max_frames=n),
        recorder.tick,
        clock=SYSTEM_CLOCK,
        period=config.flush_interval / 2,
    )
    await source.aclose()
    recorder.close()
    if error or recorder.last_error:
        raise RuntimeError(error or recorder.last_error)


CONTENDERS: dict[str, tuple[str, Contender]] = {
    "a": ("bare websockets loop", bare_loop),
    "b": ("seed EventRecorder loop", seed_loop),
    "c": ("cuecap record", cuecap_record),
    "d": ("cuecap activity recorder", cuecap_recorder),
}

# --- the harness -------------------------------------------------------------------------


@dataclass
class Result:
    messages: int
    payload: int
    seconds: float
    written: float = 1.0  # the fraction of the stream that went to disk

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def mbps(self) -> float:
        return self.payload / self.seconds / 1e6


async def _run_one(
    key: str, fn: Contender, uri: str, path: Path, stream: list[bytes], payload: int
) -> Result:
    n = len(stream)
    start = time.perf_counter()
    await fn(uri, path, n)
    seconds = time.perf_counter() - start
    if key == "d":
        return Result(n, payload, seconds, _check_segments(_segments_of(path), stream))
    size = path.stat().st_size
    if size != 4 * n + payload:
        raise RuntimeError(f"{path.name}: {size} bytes written, expected {4 * n + payload}")
    return Result(n, payload, seconds)


def _check_segments(folder: Path, stream: list[bytes]) -> float:
    """(d)'s files: in-order, non-overlapping slices of the stream, every move in one.

    Returns the fraction of the stream written.
    """
    from engine.core.frame import peek_kind
    from engine.recording.reader import RecordingReader

    files = sorted(folder.glob("*.bin"))
    position = {raw: i for i, raw in enumerate(stream)} if files else {}  # events are unique
    written: list[int] = []
    for path in files:
        at = [position[frame.raw] for frame in RecordingReader(path)]
        if at != list(range(at[0], at[0] + len(at))):
            raise RuntimeError(f"{path.name}: not one contiguous slice of the stream")
        if written and at[0] <= written[-1]:
            raise RuntimeError(f"{path.name}: overlaps the file before it")
        written.extend(at)
    moves = {i for i, raw in enumerate(stream) if peek_kind(raw) == "electrode_state"}
    if not moves <= set(written):
        raise RuntimeError(f"{folder.name}: {len(moves - set(written))} moves not recorded")
    return len(written) / len(stream)


def main(argv: list[str] | None = None) -> dict[str, dict[str, list[Result]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=50_000, help="small events per run")
    parser.add_argument("--images", type=int, default=1_000, help="~100 KB frames per run")
    parser.add_argument("--rounds", type=int, default=7, help="runs per contender (best counts)")
    parser.add_argument("--quick", action="store_true", help="a few seconds, for smoke tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.small, args.images, args.rounds = 5_000, 100, 1
    counts = {"small": args.small, "images": args.images}

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    blaster = ctx.Process(target=_blaster, args=(child, counts), daemon=True)
    blaster.start()
    try:
        if not parent.poll(120):
            raise RuntimeError("the blaster server did not start")
        port, info = parent.recv()
        results = asyncio.run(_measure(port, info, args.rounds))
    finally:
        parent.send("stop")
        blaster.join(10)
        if blaster.is_alive():
            blaster.terminate()
    _report(results, info, args.quick)
    return results


async def _measure(
    port: int, info: dict[str, tuple[int, int]], rounds: int
) -> dict[str, dict[str, list[Result]]]:
    results: dict[str, dict[str, list[Result]]] = {case: {} for case in info}
    keys = list(CONTENDERS)
    _import_all()
    with tempfile.TemporaryDirectory(prefix="cuecap-bench-") as tmp:
        for case, (n, payload) in info.items():
            stream = CASES[case](n)  # what the blaster sends, to check (d)'s files against
            uri = f"ws://127.0.0.1:{port}/{case}"
            for r in range(rounds):
                shift = r % len(keys)
                for key in keys[shift:] + keys[:shift]:  # rotate who goes first
                    path = Path(tmp, f"{case}-{key}-{r}.bin")
                    result = await _run_one(key, CONTENDERS[key][1], uri, path, stream, payload)
                    results[case].setdefault(key, []).append(result)
                    for p in Path(tmp).glob(f"{path.stem}*"):
                        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return results


def _import_all() -> None:
    """Import what the contenders import, so no timed run pays for it."""
    import importlib

    for name in (
        "websockets.asyncio.client",
        "engine.recorder.config",
        "engine.recorder.recorder",
        "engine.sources.session",
        "engine.sources.websocket",
    ):
        importlib.import_module(name)


def _best(runs: list[Result]) -> Result:
    return min(runs, key=lambda result: result.seconds)


def _ratio(rows: dict[str, list[Result]], mine: str, base: str) -> tuple[float, float]:
    """(best rate of mine / best rate of base, median over rounds of the paired ratios)."""
    best = _best(rows[mine]).rate / _best(rows[base]).rate
    paired = statistics.median(m.rate / b.rate for m, b in zip(rows[mine], rows[base], strict=True))
    return best, paired


def _report(
    results: dict[str, dict[str, list[Result]]], info: dict[str, tuple[int, int]], quick: bool
) -> None:
    from results import report

    print(f"{'case':<8} {'contender':<30} {'messages/s':>12} {'MB/s':>9} {'seconds':>8}")
    for case, rows in results.items():
        n, payload = info[case]
        for key, runs in rows.items():
            result = _best(runs)
            label = f"({key}) {CONTENDERS[key][0]}"
            print(
                f"{case:<8} {label:<30} {result.rate:>12,.0f} {result.mbps:>9.1f} "
                f"{result.seconds:>8.3f}"
            )
        rounds = len(next(iter(rows.values())))
        print(f"{'':<8} {n} messages, {payload / n:,.0f} bytes on average, best of {rounds}")
        if "d" in rows:
            written = statistics.mean(result.written for result in rows["d"])
            print(f"{'':<8} (d) wrote {written:.1%} of the stream: the moves with their windows")
    print()
    print("ratios of messages/s: best vs best (median of the per-round ratios)")
    for case, rows in results.items():
        for mine in ("c", "d"):
            if mine in rows:
                ratios = []
                for key in "ab":
                    if key in rows:
                        best, paired = _ratio(rows, mine, key)
                        ratios.append(f"({mine})/({key}) = {best:.2f} ({paired:.2f})")
                print(f"{case:<8} " + "   ".join(ratios))
    small = results.get("small", {})
    if {"a", "d"} <= small.keys():
        best, paired = _ratio(small, "d", "a")
        verdict = "met" if paired >= D_TARGET else "NOT met"
        print(
            f"target on small events: (d) full pipeline >= {D_TARGET} x (a), median of the "
            f"paired rounds: {paired:.2f} (best vs best {best:.2f}), {verdict}"
        )
        if not quick:
            report(
                "ingest", "full pipeline vs bare loop, small events", paired, "x", target=D_TARGET
            )
    if {"a", "b", "c"} <= small.keys():
        vs_a_paired = _ratio(small, "c", "a")[1]
        vs_b_paired = _ratio(small, "c", "b")[1]
        verdict = "met" if vs_a_paired >= C_TARGET and vs_b_paired >= 2.5 else "NOT met"
        print(
            f"targets on small events: (c) >= {C_TARGET} x (a) and >= 2.5 x (b), medians of the "
            f"paired rounds: {vs_a_paired:.2f} and {vs_b_paired:.2f}, {verdict}"
        )
        if not quick:
            report(
                "ingest",
                "cuecap record vs bare loop, small events",
                vs_a_paired,
                "x",
                target=C_TARGET,
            )


if __name__ == "__main__":
    main()
