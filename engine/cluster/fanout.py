"""A source with ``publish_to:``: read by the engine holding its lease, published for the site.

``LedSource`` stands in for the source on every engine of the site. On the
engine holding the source's lease (``engine.cluster.lease``) it builds the
real source (websocket, simulator, replay) and passes on what it yields,
exactly as it would without a cluster, and publishes each item into the
site's stream for it (``engine.cluster.feedcore`` says how). On the others
it waits: they do not connect to the device. When the lease moves away the
real source is closed; when it comes back, a fresh one is built and the
local recorders and rules hear of the stretch read elsewhere as a ``Gap``.

What waits to be published (the server away, or slower than the device) is
kept in a ``Publisher``: bounded in bytes, the oldest dropped first and
counted; the consumers see what was dropped as a hole (a ``Gap``). A frame
larger than the server's message limit cannot be published: counted, and a
hole too. Local recording never waits for the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors

from engine.cluster.errors import ClusterError
from engine.cluster.feedcore import Stamp, Stamper
from engine.cluster.lease import Lease
from engine.cluster.link import Link
from engine.core.clock import Clock
from engine.core.frame import Frame, Gap
from engine.events import Emit, Event, SourceConnected, discard
from engine.sources.base import Source, SourceStats

log = logging.getLogger("engine.cluster")

HEADER_ROOM = 512  # bytes a message's headers take, at most, beside its payload
WINDOW = 256  # messages sent ahead of their acknowledgements
ACK_WAIT = 2.0  # seconds the oldest may go unacknowledged before the window is sent again


@dataclass
class PublisherStats:
    sent: int = 0
    dropped: int = 0  # pushed out of the full queue, the oldest first
    too_big: int = 0  # larger than the server takes
    refused: int = 0  # refused by the server for another reason


class Publisher:
    """Items of one source on their way to its stream, in order, one at a time."""

    def __init__(
        self,
        link: Link,
        subject: str,
        limit: int,
        *,
        declare: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.link = link
        self.subject = subject
        self.declare = declare
        self.limit = limit  # bytes
        self.stats = PublisherStats()
        self._items: deque[tuple[bytes, dict[str, str]]] = deque()  # not sent yet
        self._inflight: deque[tuple[bytes, dict[str, str]]] = deque()  # sent, not acknowledged
        self._futures: deque[asyncio.Future[Any]] = deque()  # their acknowledgements
        self._bytes = 0
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._items) + len(self._inflight)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.subject)

    def put(self, data: bytes, stamp: Stamp) -> None:
        nc = self.link.nc
        size = len(data) + HEADER_ROOM
        if nc is not None and size > nc.max_payload:
            self.stats.too_big += 1
            return
        self._items.append((data, stamp.headers()))
        self._bytes += size
        while self._bytes > self.limit and self._items:
            old, _ = self._items.popleft()  # the oldest not already on its way
            self._bytes -= len(old) + HEADER_ROOM
            self.stats.dropped += 1
        self._ready.set()

    def clear(self) -> int:
        """Forget what waits (its term is over); returns how many were dropped."""
        dropped = len(self._items)
        self.stats.dropped += dropped
        self._items.clear()
        self._bytes = sum(len(data) + HEADER_ROOM for data, _ in self._inflight)
        return dropped

    async def _run(self) -> None:
        declared = self.declare is None
        while True:
            if not declared and self.declare is not None:
                await self.link.connected.wait()
                try:
                    await self.declare()
                except (nats.errors.Error, OSError) as exc:
                    log.debug("%s: cannot declare its stream yet (%s)", self.subject, exc)
                    await asyncio.sleep(0.2)
                    continue
                declared = True
            if not self._items and not self._inflight:
                self._ready.clear()
                await self._ready.wait()
                continue
            await self.link.connected.wait()
            try:
                await self._send_window()
            except asyncio.CancelledError:
                raise
            except (nats.errors.Error, nats.js.errors.Error, OSError, TimeoutError) as exc:
                # Not acknowledged: sent again, in order (Nats-Msg-Id makes copies harmless).
                log.debug("%s: publishing failed (%s); again soon", self.subject, exc)
                self._items.extendleft(reversed(self._inflight))
                self._inflight.clear()
                await asyncio.sleep(0.2)

    async def _send_window(self) -> None:
        """Send up to ``WINDOW`` ahead of the acknowledgements; take those that came, in order."""
        js = self.link.js
        futures, inflight = self._futures, self._inflight
        while self._items and len(inflight) < WINDOW:
            item = self._items.popleft()
            inflight.append(item)
            futures.append(await js.publish_async(self.subject, item[0], headers=item[1]))
        if not futures:
            return
        done, _ = await asyncio.wait((futures[0],), timeout=ACK_WAIT)
        if not done:  # the oldest had no answer in ACK_WAIT: lost with its connection
            self._abandon()
            raise ClusterError(f"{self.subject}: no acknowledgement in {ACK_WAIT:g} s")
        while futures and futures[0].done():
            future = futures[0]
            exc = ClusterError("cancelled") if future.cancelled() else future.exception()
            if isinstance(exc, nats.js.errors.ServiceUnavailableError | nats.js.errors.ServerError):
                break  # JetStream busy or restarting: this one and those after go again
            if isinstance(exc, nats.js.errors.APIError):
                log.warning("%s: a message refused: %s", self.subject, exc)
                self.stats.refused += 1
            elif exc is not None:
                break
            else:
                self.stats.sent += 1
            futures.popleft()
            data, _ = inflight.popleft()
            self._bytes -= len(data) + HEADER_ROOM
        if futures and futures[0].done():  # it failed: it and those after go again
            error = futures[0].exception() if not futures[0].cancelled() else None
            self._abandon()
            raise error or ClusterError(f"{self.subject}: a publish was cancelled")

    def _abandon(self) -> None:
        for future in self._futures:
            future.cancel()
        self._futures.clear()

    async def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the queue to empty, then stop sending."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(self) and self.link.connected.is_set():
                    await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


class LedSource:
    """The source ``name`` on one engine of a site: read here while this engine leads it."""

    def __init__(
        self,
        name: str,
        build: Callable[[], Source],
        *,
        link: Link,
        lease: Lease,
        publisher: Publisher,
        clock: Clock,
    ) -> None:
        self.name = name
        self.build = build
        self.link = link
        self.lease = lease
        self.publisher = publisher
        self.clock = clock
        self.stats = SourceStats()
        self.notify: Emit = discard
        self.stamper = Stamper(link.engine_name)
        self._inner: Source | None = None
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._stream: AsyncGenerator[Frame | Gap] | None = None
        self._last_sent = 0.0  # when an item was last handed to the publisher (for beats)
        self._away_since: float | None = None  # this engine stopped reading (another leads)
        self._local_gap: Gap | None = None
        self._connected_in_term = False
        self._beater: asyncio.Task[None] | None = None
        self._closings: set[asyncio.Task[None]] = set()
        lease.on_change = self._lease_changed

    def __repr__(self) -> str:
        state = "reading" if self._inner is not None else f"led by {self.lease.holder or '?'}"
        return f"LedSource({self.name!r}, {state}, frames={self.stats.frames})"

    @property
    def leading(self) -> bool:
        return self.lease.holding

    @property
    def connected(self) -> bool:
        """Reading the device here (the status page): False while another engine leads."""
        inner = self._inner
        return inner is not None and self._connected_in_term and getattr(inner, "connected", True)

    def __aiter__(self) -> AsyncIterator[Frame | Gap]:
        if self._stream is None:
            self._stream = self._run()
        return self._stream

    # -- the lease -------------------------------------------------------------------

    def _lease_changed(self) -> None:
        lease = self.lease
        reading = self._inner is not None and self._connected_in_term
        if lease.holding and reading and self.stamper.epoch != lease.epoch:
            # Taken again after it lapsed, without a break in reading: the term goes on.
            self._send(b"", self.stamper.start(lease.epoch, self.clock.time(), goes_on=True))
        if not lease.holding and self._inner is not None:
            log.warning("source %s: engine %s reads it now; closing it here", self.name,
                        lease.holder or "?")  # fmt: skip
            dropped = self.publisher.clear()
            if dropped:
                log.warning("source %s: %d items not published (another engine leads)",
                            self.name, dropped)  # fmt: skip
            closing = asyncio.get_running_loop().create_task(self._inner.aclose())
            self._closings.add(closing)  # kept: a task nobody holds may be collected mid-way
            closing.add_done_callback(self._closings.discard)
        self._changed.set()

    # -- reading -----------------------------------------------------------------------

    def _inner_notify(self, event: Event) -> None:
        if isinstance(event, SourceConnected) and not self._connected_in_term:
            self._connected_in_term = True
            now = event.time
            self._send(b"", self.stamper.start(self.lease.epoch, now))
            if self._away_since is not None:
                self._local_gap = Gap(self.name, self._away_since, now,
                                      "read by another engine of the site")  # fmt: skip
                self._away_since = None
            self.notify(SourceConnected(time=now, source=self.name,
                                        reconnect=int(self.stats.reconnects > 0)))  # fmt: skip
            return
        self.notify(event)

    def _send(self, data: bytes, stamp: Stamp) -> None:
        self._last_sent = self.clock.time()
        self.publisher.put(data, stamp)

    async def _run(self) -> AsyncGenerator[Frame | Gap]:
        stats = self.stats
        self.publisher.start()
        self.lease.start()
        while not self._closing.is_set():
            if not self.lease.holding:
                self._changed.clear()
                closing = asyncio.ensure_future(self._closing.wait())
                changed = asyncio.ensure_future(self._changed.wait())
                try:
                    await asyncio.wait({closing, changed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    closing.cancel()
                    changed.cancel()
                continue
            inner = self._inner = self.build()
            inner.notify = self._inner_notify
            self._connected_in_term = False
            self._beater = asyncio.get_running_loop().create_task(self._beat(inner))
            ended = True
            try:
                async for item in inner:
                    gap = self._local_gap
                    if gap is not None:
                        self._local_gap = None
                        stats.note_gap(gap)
                        stats.reconnects += 1
                        yield gap
                    if isinstance(item, Frame):
                        stats.frames += 1
                        stats.bytes += len(item.raw)
                        if item.kind is None:
                            stats.invalid += 1
                        self._send(item.raw, self.stamper.frame(item.time))
                    else:
                        stats.note_gap(item)
                        stats.reconnects += 1
                        self._send(b"", self.stamper.gap(item))
                    yield item
                    if not self.lease.holding:
                        ended = False
                        break
            finally:
                self._beater.cancel()
                stats.errors.extend(inner.stats.errors)
                self._inner = None
                with contextlib.suppress(Exception):
                    await inner.aclose()
            if self._closing.is_set():
                return
            if self.lease.holding and ended:
                return  # the source itself ended (a replay, a simulator with an end)
            self._away_since = self.clock.time()

    async def _beat(self, inner: Source) -> None:
        """While the device is connected and quiet, say so: a hole's start is then known."""
        period = self.lease.period
        while True:
            await asyncio.sleep(period)
            now = self.clock.time()
            connected = getattr(inner, "connected", True)
            if self._connected_in_term and connected and now - self._last_sent >= period:
                self._send(b"", self.stamper.beat(now))

    async def aclose(self) -> None:
        """Stop reading: the stream hears the term end, the lease goes to another engine."""
        self._closing.set()
        self._changed.set()
        inner = self._inner
        if inner is not None:
            with contextlib.suppress(Exception):
                await inner.aclose()
        if self.stamper.active and self.lease.holding:
            self._send(b"", self.stamper.end(self.clock.time()))
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(RuntimeError):
                await stream.aclose()
        await self.publisher.flush(2.0)
        await self.lease.stop()
        publisher = self.publisher.stats
        if publisher.dropped or publisher.too_big or publisher.refused:
            log.warning("source %s: %d items published, %d dropped (queue full), %d too big "
                        "for the server, %d refused", self.name, publisher.sent,
                        publisher.dropped, publisher.too_big, publisher.refused)  # fmt: skip
