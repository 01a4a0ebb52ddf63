"""Ingest speed: how fast each way of recording a PurpleDrop stream keeps up.

One run, side by side, on the same stream: a "blaster" websocket server in its
own process sends N pre-generated PurpleDrop events as fast as the socket
takes them (the frames are serialized once, up front, so the server costs
next to nothing and the receiver is what is measured). Two cases: small
events (~300 bytes, the capacitance and electrode traffic) and ~100 KB camera
frames. Contenders, each a function below:

  (a) bare     a bare websockets receive loop writing ``<I`` length + bytes
  (b) seed     the seed ``EventRecorder.__record`` loop, as written
  (c) cuecap   ``cuecap record``'s pipeline, in-process (same code as the CLI)

Each contender receives exactly N messages into a file in a temporary folder;
the file sizes are checked. Best of ``--rounds`` runs, contenders interleaved.

    python bench/ingest.py [--small N] [--images N] [--rounds R] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# --- the stream --------------------------------------------------------------------------


def small_events(n: int, seed: int = 1) -> list[bytes]:
    """A mix like the real background traffic: ~300 bytes on average."""
    from engine.proto.purpledrop_pb2 import PurpleDropEvent

    rnd = random.Random(seed)
    out = []
    for i in range(n):
        event = PurpleDropEvent()
        pick = i % 10
        stamp_s, stamp_ns = 1_700_000_000 + i // 100, (i % 100) * 10_000_000
        if pick < 5:
            msg = event.group_capacitance
            msg.measurements.extend(rnd.random() for _ in range(40))
            msg.raw_measurements.extend(rnd.random() for _ in range(40))
        elif pick < 9:
            msg = event.active_capacitance
            msg.baseline, msg.measurement, msg.calibrated = rnd.random(), rnd.random(), rnd.random()
        else:
            msg = event.electrode_state
            for _ in range(2):
                msg.drive_groups.add(
                    electrodes=[rnd.random() < 0.1 for _ in range(128)], setting=200
                )
            for _ in range(3):
                msg.scan_groups.add(electrodes=[rnd.random() < 0.1 for _ in range(128)], setting=0)
        if msg.DESCRIPTOR.fields_by_name.get("timestamp") is not None:
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
    from engine.recording.session import record_stream
    from engine.recording.writer import RecordingWriter
    from engine.sources.websocket import WebSocketSource

    writer = RecordingWriter(path, recorder="bench", source=uri, opened_at=time.time())
    summary = await record_stream(WebSocketSource(uri), writer, max_records=n)
    if summary.error:
        raise RuntimeError(summary.error)


async def cuecap_recorder(uri: str, path: Path, n: int) -> None:
    """(d) the full activity pipeline: source -> detectors -> policy/state machine -> pre-roll -> writer.

    Detectors as a real rule file has them: any electrode_state, a step in the
    (decoded) active capacitance, a busy camera. Post-roll is long so that the
    whole stream lands in the one file the harness checks.
    """
    from engine.core.clock import SYSTEM_CLOCK
    from engine.core.events import discard
    from engine.core.frame import Frame
    from engine.recorder.config import RecorderConfig
    from engine.recorder.recorder import Recorder
    from engine.sources.websocket import WebSocketSource

    config = RecorderConfig.model_validate(
        {
            "activity": [
                {"type": "message", "types": ["electrode_state"]},
                {"type": "step", "field": "active_capacitance.calibrated", "delta": 2.0},
                {"type": "rate", "types": ["image"], "per_second": 1},
            ],
            "pre_roll": 60,
            "post_roll": 600,
            "folder": "",
            "file_name": path.name,
        }
    )
    recorder = Recorder("bench", config, root=path.parent, emit=discard, clock=SYSTEM_CLOCK)
    source = WebSocketSource(uri)
    feed = recorder.feed
    count = 0
    async for item in source:
        if type(item) is Frame:
            feed(item)
            count += 1
            if count >= n:
                break
        else:
            recorder.feed_gap(item)  # type: ignore[arg-type]
    await source.aclose()
    recorder.close()
    if recorder.last_error:
        raise RuntimeError(recorder.last_error)


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

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def mbps(self) -> float:
        return self.payload / self.seconds / 1e6


async def _run_one(fn: Contender, uri: str, path: Path, n: int, payload: int) -> Result:
    start = time.perf_counter()
    await fn(uri, path, n)
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    if size != 4 * n + payload:
        raise RuntimeError(f"{path.name}: {size} bytes written, expected {4 * n + payload}")
    return Result(n, payload, seconds)


def main(argv: list[str] | None = None) -> dict[str, dict[str, Result]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=50_000, help="small events per run")
    parser.add_argument("--images", type=int, default=1_000, help="~100 KB frames per run")
    parser.add_argument("--rounds", type=int, default=5, help="runs per contender (best counts)")
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
    _report(results, info)
    return results


async def _measure(
    port: int, info: dict[str, tuple[int, int]], rounds: int
) -> dict[str, dict[str, Result]]:
    results: dict[str, dict[str, Result]] = {case: {} for case in info}
    with tempfile.TemporaryDirectory(prefix="cuecap-bench-") as tmp:
        for case, (n, payload) in info.items():
            uri = f"ws://127.0.0.1:{port}/{case}"
            for r in range(rounds):
                for key, (_, fn) in CONTENDERS.items():
                    path = Path(tmp, f"{case}-{key}-{r}.bin")
                    result = await _run_one(fn, uri, path, n, payload)
                    best = results[case].get(key)
                    if best is None or result.seconds < best.seconds:
                        results[case][key] = result
                    for p in Path(tmp).glob(f"{path.name}*"):
                        p.unlink()
    return results


def _report(results: dict[str, dict[str, Result]], info: dict[str, tuple[int, int]]) -> None:
    print(f"{'case':<8} {'contender':<28} {'messages/s':>12} {'MB/s':>9} {'seconds':>8}")
    for case, rows in results.items():
        n, payload = info[case]
        for key, result in rows.items():
            label = f"({key}) {CONTENDERS[key][0]}"
            print(
                f"{case:<8} {label:<28} {result.rate:>12,.0f} {result.mbps:>9.1f} "
                f"{result.seconds:>8.3f}"
            )
        print(f"{'':<8} {n} messages, {payload / n:,.0f} bytes on average")
    print()
    for case, rows in results.items():
        for mine in ("c", "d"):
            if mine in rows:
                ratios = [
                    f"({mine})/({key}) = {rows[mine].rate / rows[key].rate:.2f}"
                    for key in rows
                    if key != mine and key in "ab"
                ]
                print(f"{case:<8} " + "   ".join(ratios))
    small = results.get("small", {})
    if {"a", "d"} <= small.keys():
        ratio = small["d"].rate / small["a"].rate
        verdict = "met" if ratio >= 0.75 else "NOT met"
        print(f"target on small events: (d) full pipeline >= 0.75 x (a): {ratio:.2f}, {verdict}")
    if {"a", "b", "c"} <= small.keys():
        vs_a = small["c"].rate / small["a"].rate
        vs_b = small["c"].rate / small["b"].rate
        verdict = "met" if vs_a >= 0.8 and vs_b >= 2.5 else "NOT met"
        print(f"targets on small events: (c) >= 0.8 x (a) and >= 2.5 x (b): {verdict}")


if __name__ == "__main__":
    main()
