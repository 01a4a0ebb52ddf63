"""``type: nats``: a source published by another engine of the site, read from its stream.

Frames come out with the receive times the reading engine gave them (not
this engine's), so a recorder here keeps the same pre-roll and writes the
same times as one on the reading engine. Holes become ``Gap`` items, as
``engine.cluster.feedcore.FeedReader`` decides: another engine taking over
the device, items lost on the way, items older than ``max_lag``.

The stream is read by an ephemeral pull consumer of this engine, from the
first message after the source starts (a live source: nothing from before).
It remembers the stream sequence of the last message it had: when the
server goes away, or the consumer is lost (a server restart), a new
consumer starts right after that message, so nothing comes twice and what
the stream no longer holds (its limits) is a hole, not a silence. At most
``batch`` messages are held in memory at a time; a message is at most the
server's ``max_payload``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from engine.cluster.feedcore import FeedError, FeedReader, parse
from engine.cluster.link import Link
from engine.core.clock import Clock
from engine.core.frame import Frame, Gap, frame_class
from engine.core.schema import PURPLEDROP, Schema
from engine.events import Emit, SourceConnected, discard
from engine.sources.base import SourceStats, unless_closed

log = logging.getLogger("engine.cluster")

FETCH_WAIT = 0.05  # seconds a fetch waits for messages: the most it adds to a frame's delay
INACTIVE = 30.0  # a consumer nobody fetches from is removed by the server after this long


class NatsSource:
    """The stream ``stream`` of the site: ``async for item in NatsSource(...)``."""

    def __init__(
        self,
        name: str,
        link: Link,
        stream: str,
        *,
        clock: Clock,
        max_lag: float,
        batch: int = 64,
        schema: Schema = PURPLEDROP,
        declare: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.declare = declare
        self.link = link
        self.stream = stream
        self.clock = clock
        self.batch = batch
        self.schema = schema
        self.stats = SourceStats()
        self.notify: Emit = discard
        self.reader = FeedReader(name, max_lag)
        self.next_sequence: int | None = None  # the stream sequence to go on from
        self.subscriptions = 0
        self._subscribed = False
        self._fresh = False  # the server came back: a new consumer, to be safe
        self._closing = asyncio.Event()
        self._stream: AsyncGenerator[Frame | Gap] | None = None
        self._warned = False
        link.on_reconnect.append(self._reconnected)

    def __repr__(self) -> str:
        return f"NatsSource({self.name!r}, stream={self.stream!r}, frames={self.stats.frames})"

    def __aiter__(self) -> AsyncIterator[Frame | Gap]:
        if self._stream is None:
            self._stream = self._run()
        return self._stream

    @property
    def connected(self) -> bool:
        """Reading the stream (the status page): the server is there and a consumer is set."""
        return self._subscribed and self.link.connected.is_set()

    def _reconnected(self) -> None:
        self._fresh = True

    async def _subscribe(self) -> Any:
        names = self.link.names
        sequence = self.next_sequence
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.NEW
            if sequence is None
            else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=sequence,
            inactive_threshold=INACTIVE,
            mem_storage=True,
        )
        sub = await self.link.js.pull_subscribe(
            names.feed_subject(self.stream), stream=names.feed_stream(self.stream), config=config
        )
        self.subscriptions += 1
        return sub

    async def _fetch(self, sub: Any) -> list[Msg] | None:
        """The next messages, [] when none came; None when closed meanwhile."""
        fetching = await unless_closed(sub.fetch(self.batch, timeout=FETCH_WAIT), self._closing)
        if fetching is None:
            return None
        exc = fetching.exception()
        if isinstance(exc, (nats.errors.TimeoutError, TimeoutError)):
            return []
        if exc is not None:
            raise exc
        messages: list[Msg] = fetching.result()
        return messages

    async def _run(self) -> AsyncGenerator[Frame | Gap]:
        now = self.clock.time
        make = frame_class(self.schema)
        name = self.name
        announced = False
        while not self._closing.is_set():
            try:
                await self.link.connected.wait()
                self._fresh = False
                if self.declare is not None:
                    await self.declare(self.stream)
                sub = await self._subscribe()
            except (nats.errors.Error, nats.js.errors.Error, OSError) as exc:
                log.debug("source %s: cannot read stream %s yet (%s)", name, self.stream, exc)
                if await self._closed_within(0.25):
                    return
                continue
            self._subscribed = True
            if not announced:
                announced = True
                self.notify(SourceConnected(time=now(), source=name))
            try:
                while not self._closing.is_set() and not self._fresh:
                    try:
                        messages = await self._fetch(sub)
                    except (nats.errors.Error, nats.js.errors.Error, OSError) as exc:
                        log.debug("source %s: fetch failed (%s); again", name, exc)
                        break
                    if messages is None:
                        return
                    for msg in messages:
                        item = self._take(msg, make)
                        if item is not None:
                            for one in item:
                                yield one
                    if messages:
                        await asyncio.sleep(0)
            finally:
                self._subscribed = False
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            if await self._closed_within(0.05):
                return

    def _take(self, msg: Msg, make: type[Frame]) -> list[Frame | Gap] | None:
        stats = self.stats
        try:
            self.next_sequence = msg.metadata.sequence.stream + 1
        except (AttributeError, ValueError):
            return None
        try:
            stamp = parse(msg.headers)
        except FeedError as exc:
            stats.invalid += 1
            if not self._warned:
                self._warned = True
                log.warning("source %s: %s; skipping such messages", self.name, exc)
            return None
        gap, deliver = self.reader.take(stamp, self.clock.time())
        out: list[Frame | Gap] = []
        if gap is not None:
            stats.note_gap(gap)
            stats.reconnects += 1
            out.append(gap)
        if deliver:
            raw = msg.data
            seq = stats.frames
            stats.frames = seq + 1
            stats.bytes += len(raw)
            frame = make(raw, stamp.time, seq, self.name)
            if frame.kind is None:
                stats.invalid += 1
            out.append(frame)
        return out

    async def _closed_within(self, delay: float) -> bool:
        try:
            await asyncio.wait_for(self._closing.wait(), delay)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        self._closing.set()
        with contextlib.suppress(ValueError):
            self.link.on_reconnect.remove(self._reconnected)
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(RuntimeError):
                await stream.aclose()
