"""The live source: a PurpleDrop ``pdserver`` (or anything like it) over a websocket.

The receive path is leaner than a bare ``async for msg in ws``: websockets
parses every frame of a read at once and queues them, then hands them out one
``recv`` at a time, each through three coroutines (~1 us per message, a
quarter of the whole receive cost for small events). After each ``recv`` the
source takes the complete binary messages already queued behind it directly
(``_Receiver``), then lets websockets resume reading as ``recv`` would. Per
message that leaves one clock read and one ``Frame``. Nothing is decoded here;
a recorder stores the bytes exactly as they arrived, and the first tag byte is
enough to notice bytes that cannot be a ``PurpleDropEvent``.

A ``pdserver`` never replays what a client missed, so a reconnect leaves a hole.
The source reconnects with backoff and jitter and then yields one ``Gap``
before the next frame, so recorders can note the hole in their manifest
instead of pretending the stream was continuous.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypedDict

from websockets.asyncio.client import ClientConnection, connect
from websockets.client import process_exception
from websockets.exceptions import ConnectionClosed, InvalidURI
from websockets.frames import CloseCode, Opcode
from websockets.frames import Frame as WireFrame
from websockets.uri import parse_uri

from engine.core.clock import SYSTEM_CLOCK, Clock, SystemClock
from engine.core.frame import Frame, Gap, frame_class, peek_kind
from engine.core.schema import PURPLEDROP, Schema
from engine.errors import CuecapError, InvalidArgument
from engine.events import Emit, SourceConnected, discard
from engine.sources.backoff import Backoff
from engine.sources.base import SourceStats, unless_closed

log = logging.getLogger(__name__)

DEFAULT_MAX_SIZE = 16 * 1024 * 1024
PDSERVER_PORT = 7001


class SourceUnavailable(CuecapError, ConnectionError):
    """The source cannot deliver any more frames: the server is gone or refuses us."""


def normalize_uri(uri: str) -> str:
    """``host``, ``host:port`` or a ``ws://``/``wss://`` URI, checked.

    A bare host gets ``ws://`` and PurpleDrop's websocket port (7001), which is
    what users type on the command line. Raises ``ValueError`` naming the URI.
    """
    text = uri.strip()
    if "://" not in text:
        host, _, port = text.partition(":")
        text = f"ws://{host}:{port or PDSERVER_PORT}"
    try:
        parse_uri(text)
    except InvalidURI as exc:
        raise InvalidArgument(f"{uri!r} is not a websocket URI (ws://host:port): {exc}") from None
    return text


def _close_reason(exc: BaseException) -> str:
    """A short, human description of why a connection ended."""
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd or exc.sent
        if frame is None:
            return "connection dropped without a close frame"
        who = "server" if exc.rcvd is not None else "client"
        reason = f": {frame.reason}" if frame.reason else ""
        return f"closed by {who} (code {frame.code}{reason})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(exc, TimeoutError):
        return "no answer in time (open_timeout)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _ConnectOptions(TypedDict):
    """The keyword arguments of every ``websockets`` connect call."""

    compression: str | None
    proxy: str | None
    max_size: int
    max_queue: int
    open_timeout: float
    close_timeout: float
    ping_interval: float | None
    ping_timeout: float | None


class WebSocketSource:
    """Frames from a websocket server; reconnects and reports gaps.

    Iterate it once: ``async for item in source`` yields ``Frame`` and, after a
    reconnect, one ``Gap``. Iteration ends after ``aclose()``; it raises
    ``SourceUnavailable`` when the server refuses the connection for good
    (bad path, forbidden) or when ``max_retries`` attempts in a row failed.
    """

    def __init__(
        self,
        uri: str,
        *,
        name: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        max_size: int = DEFAULT_MAX_SIZE,
        open_timeout: float = 10.0,
        close_timeout: float = 1.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        max_queue: int = 128,
        backoff: Backoff | None = None,
        max_retries: int | None = None,
        rng: Callable[[], float] | None = None,
        schema: Schema = PURPLEDROP,
        max_size_setting: str = "cuecap record --max-size",
    ) -> None:
        self.uri = normalize_uri(uri)
        self.schema = schema
        self.name = name if name is not None else self.uri
        self.clock = clock
        self.max_size = max_size
        self.max_size_setting = max_size_setting  # where a user raises it, for the hint
        self.backoff = backoff if backoff is not None else Backoff()
        self.max_retries = max_retries
        self.stats = SourceStats()
        self.notify: Emit = discard
        self.attempts = 0  # connection attempts, successful or not
        self._rng = rng if rng is not None else random.random
        self._connect_kwargs: _ConnectOptions = {
            "compression": None,  # deflate costs ~50x on incompressible camera frames
            "proxy": None,  # pdserver lives on the LAN; never route it via $HTTPS_PROXY
            "max_size": max_size,
            "max_queue": max_queue,
            "open_timeout": open_timeout,
            "close_timeout": close_timeout,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
        }
        self._ws: ClientConnection | None = None
        # The wall clock read directly: one Python call less per message.
        self._now = time.time if type(clock) is SystemClock else clock.time
        self._connected_once = False
        self._dropped_at: float | None = None
        self._drop_reason = ""
        self._closing = asyncio.Event()
        self._stream: AsyncGenerator[Frame | Gap] | None = None
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"WebSocketSource({self.uri!r}, frames={self.stats.frames})"

    @property
    def connected(self) -> bool:
        return self._ws is not None

    def __aiter__(self) -> AsyncIterator[Frame | Gap]:
        if self._stream is None:
            self._stream = self._run() if self.schema is PURPLEDROP else self._run_schema()
        return self._stream

    async def __anext__(self) -> Frame | Gap:
        return await self.__aiter__().__anext__()

    async def _connections(self) -> AsyncGenerator[tuple[ClientConnection, Gap | None]]:
        """Each connection as it opens (with the gap before it, after a drop), until closed.

        The loops that read a connection (the iterator, ``pour``, ``pour_raw``) catch
        ``ConnectionClosed`` and hand it to ``_lost``; this generator reconnects.
        """
        try:
            while not self._closing.is_set():
                gap = await self._connect()
                ws = self._ws
                if ws is None:  # closed while connecting
                    return
                yield ws, gap
        finally:
            ws, self._ws = self._ws, None
            if ws is not None:
                await _close(ws)

    async def _run(self) -> AsyncGenerator[Frame | Gap]:
        # An async generator: resuming it costs less than a fresh __anext__ coroutine
        # per message, and the names the loop needs are locals.
        stats = self.stats
        now = self._now
        name = self.name
        kinds = _KIND_OF_PREFIX.get
        async with contextlib.aclosing(self._connections()) as connections:
            async for ws, gap in connections:
                if gap is not None:
                    yield gap
                batch = _Receiver(ws).batch
                try:
                    while True:
                        for msg in await batch():
                            kind = kinds(msg[:1])  # text frames (str) are no key: None too
                            if kind is not None:
                                seq = stats.frames  # frames are numbered 0, 1, 2... as they arrive
                                stats.frames = seq + 1
                                stats.bytes += len(msg)
                                # only bytes have a kind: a str never equals a bytes key
                                yield Frame(msg, now(), seq, name, kind)  # type: ignore[arg-type]
                            else:
                                frame = self._odd(msg)
                                if frame is not None:
                                    yield frame
                except ConnectionClosed as exc:
                    self._lost(exc)

    async def pour(
        self, on_frame: Callable[[Frame], object], on_gap: Callable[[Gap], object]
    ) -> None:
        """Hand every frame and gap to the callbacks, as iterating would, until closed.

        The fast way to consume a source: no generator to resume per message. It yields
        to the loop every ``YIELD_EVERY`` messages, so a flood cannot starve timers. An
        exception from a callback ends the pour (the connection is closed).
        """
        if self.schema is not PURPLEDROP:
            async for item in self:
                (on_frame if isinstance(item, Frame) else on_gap)(item)  # type: ignore[arg-type]
            return
        stats = self.stats
        now = self._now
        name = self.name
        kinds = _KIND_OF_PREFIX.get
        budget = YIELD_EVERY
        async with contextlib.aclosing(self._connections()) as connections:
            async for ws, gap in connections:
                if gap is not None:
                    on_gap(gap)
                batch = _Receiver(ws).batch
                try:
                    while True:
                        msgs = await batch()
                        for msg in msgs:
                            kind = kinds(msg[:1])
                            if kind is not None:
                                seq = stats.frames
                                stats.frames = seq + 1
                                stats.bytes += len(msg)
                                on_frame(Frame(msg, now(), seq, name, kind))  # type: ignore[arg-type]
                            else:
                                frame = self._odd(msg)
                                if frame is not None:
                                    on_frame(frame)
                        budget -= len(msgs)
                        if budget <= 0:
                            budget = YIELD_EVERY
                            await asyncio.sleep(0)
                except ConnectionClosed as exc:
                    self._lost(exc)

    async def pour_raw(
        self,
        write: Callable[[bytes, float], object],
        on_gap: Callable[[Gap], object],
        limit: int | None = None,
    ) -> bool:
        """``write(raw, receive_time)`` for every binary message, until closed or ``limit``.

        What recording a stream as it comes needs, and no more: no ``Frame`` per
        message. Binary messages that are not events are written too (and counted
        as invalid), text frames are skipped, as iterating would. Returns True when
        ``limit`` messages were written.
        """
        if self.schema is not PURPLEDROP:  # its kinds are not read off the first byte
            left = limit
            async for item in self:
                if isinstance(item, Frame):
                    write(item.raw, item.time)
                    if left is not None:
                        left -= 1
                        if left == 0:
                            return True
                else:
                    on_gap(item)
            return False
        stats = self.stats
        now = self._now
        is_event = _IS_EVENT_TAG
        left = -1 if limit is None else limit
        budget = YIELD_EVERY
        async with contextlib.aclosing(self._connections()) as connections:
            async for ws, gap in connections:
                if gap is not None:
                    on_gap(gap)
                batch = _Receiver(ws).batch
                try:
                    while True:
                        msgs = await batch()
                        for msg in msgs:
                            if type(msg) is bytes and msg and is_event[msg[0]]:
                                stats.frames += 1
                                stats.bytes += len(msg)
                                write(msg, now())
                            elif self._odd(msg) is not None:
                                write(msg, now())  # type: ignore[arg-type]  # binary: bytes
                            else:
                                continue
                            left -= 1
                            if left == 0:
                                return True
                        budget -= len(msgs)
                        if budget <= 0:
                            budget = YIELD_EVERY
                            await asyncio.sleep(0)
                except ConnectionClosed as exc:
                    self._lost(exc)
        return False

    async def _run_schema(self) -> AsyncGenerator[Frame | Gap]:
        """The loop above for another schema: each frame's kind comes from its schema."""
        stats = self.stats
        now = self._now
        name = self.name
        make = frame_class(self.schema)
        async with contextlib.aclosing(self._connections()) as connections:
            async for ws, gap in connections:
                if gap is not None:
                    yield gap
                try:
                    while True:
                        msg = await ws.recv()
                        if isinstance(msg, str):
                            self._odd(msg)
                            continue
                        seq = stats.frames
                        stats.frames = seq + 1
                        stats.bytes += len(msg)
                        frame = make(msg, now(), seq, name)
                        if frame.kind is None:
                            stats.invalid += 1
                            self._warn_once(
                                "binary",
                                f"frame {seq} ({len(msg)} bytes) is not a {self.schema.name} "
                                "with a kind; keeping its bytes",
                            )
                        yield frame
                except ConnectionClosed as exc:
                    self._lost(exc)

    # -- the unusual paths, kept out of the loop above -------------------------------

    def _odd(self, msg: bytes | str) -> Frame | None:
        """Count a text frame or bytes that cannot be an event; pass binary through."""
        stats = self.stats
        stats.invalid += 1
        if isinstance(msg, str):
            self._warn_once(
                "text", f"text frames are not {self.schema.descriptor.name} messages; skipping them"
            )
            return None
        first = "none, it is empty" if not msg else f"0x{msg[0]:02x}"
        self._warn_once(
            "binary",
            f"frame {stats.frames} ({len(msg)} bytes, first byte {first}) is not a PurpleDrop "
            "event; keeping its bytes",
        )
        seq = stats.frames
        stats.frames = seq + 1
        stats.bytes += len(msg)
        return Frame(msg, self._now(), seq, self.name)

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("%s: %s (further ones are only counted)", self.name, message)

    def _lost(self, exc: ConnectionClosed) -> None:
        self._ws = None
        if self._closing.is_set():
            return
        self._dropped_at = self.clock.time()
        self._drop_reason = _close_reason(exc)
        sent = exc.sent
        if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
            message = (
                f"{self.uri}: a message exceeded max_size ({self.max_size} bytes); "
                f"raise it ({self.max_size_setting})"
            )
            self.stats.note_error(message)
            log.error("%s", message)
        log.warning("%s: connection lost (%s); reconnecting", self.name, self._drop_reason)

    async def _connect(self) -> Gap | None:
        """Open a connection, retrying with backoff; after a drop, returns the gap."""
        dropped = self._connected_once
        retries = 0
        last_error = self._drop_reason
        wait = dropped  # after a drop, back off before the first attempt too
        while True:
            if wait:
                if self.max_retries is not None and retries >= self.max_retries:
                    self._give_up(f"gave up after {retries} retries; last error: {last_error}")
                delay = self.backoff.delay(retries, self._rng())
                retries += 1
                if await self._closed_within(delay):
                    return None
            wait = True
            self.attempts += 1
            try:
                ws = await self._open()
            except Exception as exc:
                if process_exception(exc) is not None:  # bad path, forbidden, not a websocket...
                    self._give_up(f"refused: {_close_reason(exc)}", exc)
                last_error = _close_reason(exc)
                # Retries come about once a second: say the first few, then one a minute.
                if retries <= 3 or retries % 60 == 0:
                    log.warning(
                        "%s: connect attempt %d failed: %s", self.name, self.attempts, last_error
                    )
                continue
            if ws is None:  # closed while connecting
                return None
            self._ws = ws
            now = self.clock.time()
            if dropped:
                start = self._dropped_at if self._dropped_at is not None else now
                gap = Gap(self.name, start, now, self._drop_reason)
                self.stats.reconnects += 1
                self.stats.note_gap(gap)
                log.warning(
                    "%s: reconnected after %.3f s (reconnect #%d)",
                    self.name,
                    gap.duration,
                    self.stats.reconnects,
                )
                self.notify(SourceConnected(time=now, source=self.name, reconnect=retries))
                return gap
            log.info("%s: connected", self.name)
            self._connected_once = True
            self.notify(SourceConnected(time=now, source=self.name))
            return None

    def _give_up(self, why: str, cause: BaseException | None = None) -> None:
        message = f"{self.uri}: {why}"
        self.stats.note_error(message)
        log.error("%s", message)
        raise SourceUnavailable(message) from cause

    async def _open(self) -> ClientConnection | None:
        """One connection attempt that ``aclose()`` can interrupt (returns None then)."""
        attempt = await unless_closed(connect(self.uri, **self._connect_kwargs), self._closing)
        if attempt is None:
            return None
        ws = attempt.result()
        if self._closing.is_set():
            await _close(ws)
            return None
        return ws

    async def _closed_within(self, delay: float) -> bool:
        """Wait ``delay`` seconds unless ``aclose()`` comes first (then True)."""
        try:
            await asyncio.wait_for(self._closing.wait(), delay)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        """End iteration promptly, from any task; closes the connection cleanly."""
        self._closing.set()
        ws, self._ws = self._ws, None
        if ws is not None:
            await _close(ws)  # a task waiting in recv() wakes up and ends the iteration
        stream = self._stream
        if stream is not None:
            # Runs the generator's cleanup now if it rests at a yield; if another task is
            # inside it, that task is already on its way out.
            with contextlib.suppress(RuntimeError):
                await stream.aclose()


async def _close(ws: ClientConnection) -> None:
    """The closing handshake; if it is cancelled half-way, drop the TCP connection at once.

    Cancelled mid-handshake (an event loop shutting down cancels every task), the
    connection would otherwise stay open with nobody left to finish closing it,
    and the server would hang on to it until its own close timeout.
    """
    try:
        await ws.close()
    except asyncio.CancelledError:
        ws.transport.abort()
        raise


class _Receiver:
    """Messages of one connection in batches: a ``recv``, then what websockets already parsed.

    websockets' ``Assembler`` queues every frame one read holds (its ``frames``, a
    ``SimpleQueue`` over a deque) and ``recv`` hands them out one per call. ``batch``
    awaits one ``recv`` (which waits, handles fragments, text and the end of the
    connection) and then takes up to ``YIELD_EVERY - 1`` more messages from that
    queue while they are complete binary frames (fin set: an unfragmented message
    is exactly its frame's payload), stopping at anything else so ``recv`` deals
    with it, as it would have. Then ``maybe_resume`` lets reading go on below
    ``max_queue``, as each ``recv`` does. The order, the bytes and the bound are
    those of ``recv``; a batch holds at most ``YIELD_EVERY`` messages. With a
    websockets whose assembler is built otherwise, ``batch`` is one ``recv``.
    """

    __slots__ = ("_queue", "_recv", "_resume", "batch")

    def __init__(self, ws: ClientConnection) -> None:
        self._recv = ws.recv
        assembler = getattr(ws, "recv_messages", None)
        queue = getattr(getattr(assembler, "frames", None), "queue", None)
        resume = getattr(assembler, "maybe_resume", None)
        if isinstance(queue, deque) and callable(resume):
            self._queue: deque[WireFrame] = queue
            self._resume: Callable[[], None] = resume
            self.batch: Callable[[], Awaitable[list[bytes | str]]] = self._batch
        else:
            self.batch = self._one

    async def _one(self) -> list[bytes | str]:
        return [await self._recv()]

    async def _batch(self) -> list[bytes | str]:
        out: list[bytes | str] = [await self._recv()]
        queue = self._queue
        if queue:
            binary = Opcode.BINARY
            room = YIELD_EVERY - 1
            while queue and room:
                frame = queue[0]
                if not frame.fin or frame.opcode is not binary:
                    break
                queue.popleft()
                data = frame.data
                out.append(data if type(data) is bytes else bytes(data))
                room -= 1
            self._resume()
        return out


# First bytes a PurpleDropEvent can start with (tags of its oneof members) -> kind.
# Text frames look up their first character (a str) and find nothing.
_KIND_OF_PREFIX: dict[bytes | str, str] = {
    bytes((tag,)): kind for tag in range(256) if (kind := peek_kind(bytes((tag,)))) is not None
}
# 1 at the first bytes that start an event: an index instead of a slice and a lookup.
_IS_EVENT_TAG = bytes(1 if bytes((tag,)) in _KIND_OF_PREFIX else 0 for tag in range(256))
YIELD_EVERY = 256  # messages a pour handles before it lets the loop run timers and tasks
