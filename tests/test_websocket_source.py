"""WebSocketSource against real websocket servers on loopback."""

from __future__ import annotations

import asyncio
import logging

import pytest
from scripted_server import ScriptedServer, sample_events
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode

from engine.core.clock import ManualClock
from engine.core.frame import Frame, Gap
from engine.sources.backoff import Backoff
from engine.sources.websocket import (
    YIELD_EVERY,
    SourceUnavailable,
    WebSocketSource,
    _Receiver,
    normalize_uri,
)

FAST = Backoff(initial=0.01, maximum=0.05, factor=2.0, jitter=0.5)


class TickingClock(ManualClock):
    """Every read moves time on by 1 ms: deterministic, strictly increasing receive times."""

    def time(self) -> float:
        return self.advance(0.001)


async def take(source: WebSocketSource, n: int) -> list[Frame | Gap]:
    items: list[Frame | Gap] = []
    async with asyncio.timeout(10):
        async for item in source:
            items.append(item)
            if len(items) == n:
                break
    return items


async def test_frames_arrive_byte_identical_in_order() -> None:
    events = sample_events(200, image_every=50, image_size=3_000_000)  # images over 1 MiB
    clock = TickingClock(1000.0)
    async with ScriptedServer(events) as server:
        source = WebSocketSource(server.uri, clock=clock, name="pd")
        frames = await take(source, len(events))
        await source.aclose()
    assert [f.raw for f in frames] == events
    assert [f.seq for f in frames] == list(range(len(events)))
    times = [f.time for f in frames]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert {f.source for f in frames} == {"pd"}
    assert source.stats.frames == len(events)
    assert source.stats.bytes == sum(map(len, events))
    assert source.stats.invalid == 0 and source.stats.reconnects == 0


async def test_message_over_max_size_is_reported_and_source_reconnects() -> None:
    small = sample_events(3)
    big = b"\x1a" + bytes(5000)
    async with ScriptedServer([*small, big, *small], then="hold") as server:
        source = WebSocketSource(server.uri, max_size=1000, backoff=FAST)
        items = await take(source, 7)  # 3 small, gap, 3 small again from the new connection
        await source.aclose()
    assert [type(i) for i in items] == [Frame] * 3 + [Gap] + [Frame] * 3
    assert any("max_size (1000 bytes)" in e for e in source.stats.errors)


async def test_server_restart_gives_one_gap_and_continues() -> None:
    first, second = sample_events(20), sample_events(30)[20:]
    server = await ScriptedServer(first).start()
    port = server.port
    source = WebSocketSource(server.uri, backoff=FAST)
    got = await take(source, len(first))
    await server.stop()  # the server goes away mid-stream...
    reader = asyncio.ensure_future(take(source, 1 + len(second)))
    await asyncio.sleep(0.05)  # ...the source retries against a closed port meanwhile...
    server2 = await ScriptedServer(second, port=port).start()  # ...and it comes back
    try:
        rest = await reader
    finally:
        await source.aclose()
        await server2.stop()
    gap = rest[0]
    assert isinstance(gap, Gap)
    assert gap.end >= gap.start
    assert "closed by server (code 1001" in gap.reason
    assert [f.raw for f in got] + [f.raw for f in rest[1:]] == first + second  # type: ignore[union-attr]
    assert [f.seq for f in rest[1:]] == list(range(20, 30))  # type: ignore[union-attr]
    assert source.stats.reconnects == 1 and source.stats.gaps == [gap]
    assert source.attempts >= 2


async def test_text_and_garbage_are_counted_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = sample_events(4)
    garbage = b"\xff\x00garbage"
    script = [good[0], "hello", garbage, good[1], "again", b"", garbage, good[2], good[3]]
    caplog.set_level(logging.WARNING, logger="engine.sources.websocket")
    async with ScriptedServer(script) as server:
        source = WebSocketSource(server.uri)
        frames = await take(source, 7)  # text frames are skipped, binary kept untouched
        await source.aclose()
    assert [f.raw for f in frames] == [good[0], garbage, good[1], b"", garbage, good[2], good[3]]
    assert source.stats.invalid == 5
    assert [f.kind for f in frames].count(None) == 3
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("text frames" in w for w in warnings) == 1  # logged once per kind
    assert sum("is not a PurpleDrop event" in w for w in warnings) == 1
    assert "frame 1 (9 bytes, first byte 0xff)" in " ".join(warnings)


async def test_server_that_never_comes_back_ends_with_a_clear_error() -> None:
    server = await ScriptedServer(sample_events(5)).start()
    uri = server.uri
    source = WebSocketSource(uri, backoff=FAST, max_retries=3)
    items = await take(source, 5)
    await server.stop()
    with pytest.raises(SourceUnavailable, match=r"gave up after 3 retries; last error: .*refused"):
        async with asyncio.timeout(10):
            async for item in source:
                items.append(item)
    assert len(items) == 5
    assert source.stats.errors and uri in source.stats.errors[-1]
    with pytest.raises(StopAsyncIteration):  # ended for good, no more attempts
        await source.__anext__()


async def test_nothing_listening_and_no_retries() -> None:
    server = await ScriptedServer([]).start()
    uri = server.uri
    await server.stop()
    source = WebSocketSource(uri, max_retries=0)
    with pytest.raises(SourceUnavailable, match="gave up after 0 retries"):
        await source.__anext__()
    assert source.attempts == 1


async def test_refused_handshake_is_not_retried() -> None:
    """An HTTP server that is not a websocket endpoint: retrying would not help."""

    async def http_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http_only, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        source = WebSocketSource(f"ws://127.0.0.1:{port}/nope", backoff=FAST)
        with pytest.raises(SourceUnavailable, match=r"refused: .*404"):
            await source.__anext__()
        assert source.attempts == 1
    finally:
        server.close()
        await server.wait_closed()


async def test_aclose_ends_a_waiting_iteration_promptly() -> None:
    async with ScriptedServer(sample_events(2)) as server:  # then holds the line, silent
        source = WebSocketSource(server.uri)
        consumer = asyncio.ensure_future(take(source, 100))
        while source.stats.frames < 2:
            await asyncio.sleep(0.001)
        await source.aclose()
        async with asyncio.timeout(2):
            items = await consumer
    assert len(items) == 2


async def test_aclose_interrupts_the_backoff_wait() -> None:
    server = await ScriptedServer([]).start()
    uri = server.uri
    await server.stop()
    source = WebSocketSource(uri, backoff=Backoff(initial=60, maximum=60, jitter=0))
    consumer = asyncio.ensure_future(take(source, 1))
    while source.attempts < 1:
        await asyncio.sleep(0.001)
    await source.aclose()
    async with asyncio.timeout(2):
        assert await consumer == []


def test_backoff_policy() -> None:
    policy = Backoff(initial=0.5, maximum=4, factor=2, jitter=0.5)
    assert [policy.delay(a) for a in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert policy.delay(1, draw=0.5) == 0.75  # jitter only shortens
    assert policy.delay(10_000, draw=0.999) <= 4
    with pytest.raises(ValueError, match="maximum"):
        Backoff(initial=2, maximum=1)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=2)


def test_normalize_uri() -> None:
    assert normalize_uri("pd-host") == "ws://pd-host:7001"
    assert normalize_uri("pd-host:9000") == "ws://pd-host:9000"
    assert normalize_uri("wss://x/y") == "wss://x/y"
    with pytest.raises(ValueError, match="'http://x' is not a websocket URI"):
        normalize_uri("http://x")


class ChunkServer:
    """Writes a whole script of websocket frames in one go, so the client reads many at once.

    What a fast pdserver does to a busy client: one read holds hundreds of messages,
    with a text frame or a fragmented message among them now and then.
    """

    def __init__(self, frames: list[bytes]) -> None:
        self.chunk = b"".join(frames)
        self.port = 0
        self._server: Server | None = None

    async def _handler(self, ws: ServerConnection) -> None:
        ws.transport.write(self.chunk)
        await ws.wait_closed()

    async def __aenter__(self) -> str:
        self._server = await serve(self._handler, "127.0.0.1", 0, compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{self.port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def _wire(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return WireFrame(opcode, data, fin).serialize(mask=False)


def _mixed_script(n: int) -> tuple[list[bytes], list[bytes | str]]:
    """Wire frames: n events, a text frame, a message in three fragments, n more events."""
    events = sample_events(2 * n)
    fragmented = events[0] + events[1] + events[2]
    frames = [_wire(Opcode.BINARY, e) for e in events[:n]]
    frames.append(_wire(Opcode.TEXT, b"hello"))
    frames.append(_wire(Opcode.BINARY, events[0], fin=False))
    frames.append(_wire(Opcode.CONT, events[1], fin=False))
    frames.append(_wire(Opcode.CONT, events[2]))
    frames.extend(_wire(Opcode.BINARY, e) for e in events[n:])
    return frames, [*events[:n], "hello", fragmented, *events[n:]]


async def test_messages_queued_in_one_read_come_in_batches_in_order() -> None:
    frames, expected = _mixed_script(600)  # far more than max_queue: reading must resume
    async with ChunkServer(frames) as uri, connect(uri, compression=None, max_queue=16) as ws:
        batch = _Receiver(ws).batch
        got: list[bytes | str] = []
        sizes = []
        async with asyncio.timeout(10):
            while len(got) < len(expected):
                messages = await batch()
                sizes.append(len(messages))
                got.extend(messages)
    assert got == expected
    assert all(type(m) is bytes for m in got if not isinstance(m, str))
    assert max(sizes) == YIELD_EVERY  # queued messages came without a recv each, bounded
    # the text frame and the fragmented message each start a batch: recv handles them
    starts = {sum(sizes[:i]) for i in range(len(sizes))}
    assert {600, 601} <= starts


async def test_pour_and_iteration_see_every_message_of_a_burst() -> None:
    frames, expected = _mixed_script(700)
    events = [m for m in expected if isinstance(m, bytes)]
    async with ChunkServer(frames) as uri:
        poured: list[bytes] = []
        source = WebSocketSource(uri)

        async def pour() -> None:
            await source.pour(lambda f: poured.append(f.raw), lambda g: None)

        task = asyncio.ensure_future(pour())
        async with asyncio.timeout(10):
            while len(poured) < len(events):
                await asyncio.sleep(0.01)
        await source.aclose()
        await task
        second = WebSocketSource(uri)
        iterated = [f.raw for f in await take(second, len(events)) if isinstance(f, Frame)]
        await second.aclose()
        written: list[bytes] = []
        third = WebSocketSource(uri)
        assert await third.pour_raw(lambda raw, t: written.append(raw), lambda g: None, len(events))
        await third.aclose()
    assert poured == iterated == written == events
    assert [source.stats.frames, source.stats.invalid] == [len(events), 1]  # the text frame
