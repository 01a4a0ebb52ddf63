"""The simulated pdserver: real websocket clients on loopback."""

from __future__ import annotations

import asyncio
import math
import socket
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.sync.client import connect as sync_connect

from engine.core.frame import Frame
from engine.recording.format import RecordingError
from engine.recording.writer import RecordingWriter
from engine.sim.server import SimServer, run_sim_in_thread, start_sim_server
from engine.sim.world import SimWorld

SMALL = {"fps": 5, "image_size": (64, 48)}


def client(uri: str) -> connect:
    # No receive flow control: a test that stops reading must still see the closing handshake.
    return connect(uri, max_size=None, max_queue=None, compression=None, proxy=None)


async def receive(ws: ClientConnection, n: int, timeout: float = 10.0) -> list[bytes]:
    out: list[bytes] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            message = await ws.recv()
            assert isinstance(message, bytes)
            out.append(message)
    return out


async def whole_stream(server: SimServer) -> list[bytes]:
    """Everything a bounded stream sends to one client; closes the server."""
    try:
        async with client(server.uri) as ws:
            await server.wait_done(timeout=10)
            return await receive(ws, server.sent)
    finally:
        await server.close()


async def test_a_client_receives_binary_events_that_decode() -> None:
    server = await start_sim_server(seed=1, wait_for_clients=1, speed=50, **SMALL)
    try:
        assert server.uri == f"ws://127.0.0.1:{server.port}" and server.port > 0
        async with client(server.uri) as ws:
            messages = await receive(ws, 300)
    finally:
        await server.close()
    frames = [Frame(m, 0.0, i) for i, m in enumerate(messages)]
    assert all(f.valid for f in frames)
    assert [f.kind for f in frames[:2]] == ["device_info", "electrode_layout"]
    assert {"active_capacitance", "group_capacitance", "image", "image_transform"} <= {
        f.kind for f in frames
    }
    assert server.sent >= 300 and server.clients_total == 1


async def test_the_stream_is_the_worlds_from_the_start_time() -> None:
    world = SimWorld(seed=9, fps=0)
    server = await start_sim_server(world=world, wait_for_clients=1, speed=200, duration=5.0)
    messages = await whole_stream(server)
    assert server.started_at is not None
    assert messages == [raw for _, raw in world.events(server.started_at, server.started_at + 5.0)]


async def test_every_client_gets_the_same_broadcast() -> None:
    server = await start_sim_server(seed=2, wait_for_clients=2, speed=50, **SMALL)
    try:
        async with client(server.uri) as a, client(server.uri) as b:
            first, second = await asyncio.gather(receive(a, 200), receive(b, 200))
            assert server.clients == 2
    finally:
        await server.close()
    assert first == second
    assert server.peak_clients == 2 and server.delivered >= 400


async def test_client_messages_are_ignored() -> None:
    server = await start_sim_server(seed=3, fps=0, wait_for_clients=1, speed=50)
    try:
        async with client(server.uri) as ws:
            await ws.send("hello?")
            await ws.send(b"\x00" * 100)
            messages = await receive(ws, 100)
    finally:
        await server.close()
    assert all(Frame(m, 0.0, 0).valid for m in messages)


def make_recording(path: Path, n: int = 60, spacing: float = 0.02) -> list[tuple[float, bytes]]:
    world = SimWorld(seed=4, **SMALL)
    records = [
        (1000.0 + i * spacing, raw)
        for i, (_, raw) in zip(range(n), world.events(0.0), strict=False)
    ]
    records.append((1000.0 + n * spacing, b"\x1a" + bytes(150_000)))  # a camera-sized frame
    with RecordingWriter(path) as writer:
        for t, raw in records:
            writer.write(raw, t)
    return records


async def test_replay_serves_records_byte_for_byte_with_timing_scaled(tmp_path: Path) -> None:
    records = make_recording(tmp_path / "r.bin")
    speed = 20.0
    loop = asyncio.get_running_loop()
    server = await start_sim_server(replay=tmp_path / "r.bin", speed=speed)
    assert server.wait_for_clients == 1  # a replay waits, so nobody misses its beginning
    arrivals = []
    try:
        async with client(server.uri) as ws:
            async with asyncio.timeout(10):
                messages = []
                while len(messages) < len(records):
                    messages.append(await ws.recv())
                    arrivals.append(loop.time())
            await server.wait_done(timeout=10)
    finally:
        await server.close()
    assert messages == [raw for _, raw in records]
    assert server.sent == len(records)
    t0, started = records[0][0], server.stream_started
    assert started is not None
    for (t, _), arrived in zip(records, arrivals, strict=True):
        assert arrived >= started + (t - t0) / speed - 0.002  # never early


async def test_replay_duration_and_unpaced_speed(tmp_path: Path) -> None:
    records = make_recording(tmp_path / "r.bin", n=400, spacing=0.01)
    server = await start_sim_server(replay=tmp_path / "r.bin", speed=math.inf, duration=1.0)
    messages = await whole_stream(server)
    assert messages == [raw for t, raw in records if t - records[0][0] < 1.0]


async def test_a_bounded_stream_can_close_when_done() -> None:
    server = await start_sim_server(
        fps=0, wait_for_clients=1, speed=100, duration=2.0, close_when_done=True
    )
    got = 0
    async with client(server.uri) as ws:
        with pytest.raises(ConnectionClosedOK) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
                    got += 1
    await server.wait_closed()
    assert got == server.sent > 200
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


async def test_injected_frames_reach_clients_as_sent() -> None:
    server = await start_sim_server(fps=0, speed=1, first_burst_delay=60)
    try:
        async with client(server.uri) as ws:
            await server.wait_clients(1, timeout=5)
            server.inject(b"\xff\xfegarbage")
            server.inject("a text frame")
            async with asyncio.timeout(5):
                seen = []
                while len(seen) < 2:
                    message = await ws.recv()
                    if message in (b"\xff\xfegarbage", "a text frame"):
                        seen.append(message)
    finally:
        await server.close()
    assert seen == [b"\xff\xfegarbage", "a text frame"] and server.injected == 2


@pytest.mark.parametrize("abrupt", [False, True])
async def test_close_is_graceful_or_abrupt(abrupt: bool) -> None:
    server = await start_sim_server(fps=0, wait_for_clients=1)
    async with client(server.uri) as ws:
        await receive(ws, 2)
        await server.close(abrupt=abrupt)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
    if abrupt:
        assert isinstance(closed.value, ConnectionClosedError) and closed.value.rcvd is None
    else:
        assert isinstance(closed.value, ConnectionClosedOK) and closed.value.rcvd.code == 1001


async def test_a_server_restarts_on_the_same_port() -> None:
    first = await start_sim_server(fps=0)
    port = first.port
    await first.close(abrupt=True)
    second = await start_sim_server(port=port, fps=0, wait_for_clients=1)
    try:
        async with client(second.uri) as ws:
            assert len(await receive(ws, 3)) == 3
    finally:
        await second.close()


async def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            await start_sim_server(port=port)


async def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="either"):
        await start_sim_server(world=SimWorld(), replay=tmp_path / "x.bin")
    with pytest.raises(ValueError, match="fps"):
        await start_sim_server(world=SimWorld(), fps=3)
    with pytest.raises(ValueError, match="speed"):
        await start_sim_server(speed=0)
    with pytest.raises(RecordingError, match="no such recording"):
        await start_sim_server(replay=tmp_path / "missing.bin")


def test_run_in_a_thread_for_synchronous_code() -> None:
    with run_sim_in_thread(seed=5, wait_for_clients=1, speed=50, **SMALL) as sim:
        with sync_connect(
            sim.uri, max_size=None, max_queue=None, compression=None, proxy=None
        ) as ws:
            messages = [ws.recv(timeout=5) for _ in range(50)]
        assert all(Frame(m, 0.0, 0).valid for m in messages)
        sim.shutdown(abrupt=True)
        assert sim.finished.is_set()
    assert not sim.loop.is_running()


def test_run_in_a_thread_reports_startup_errors() -> None:
    with pytest.raises(ValueError, match="speed"), run_sim_in_thread(speed=-1):
        pass
