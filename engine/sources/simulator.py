"""The simulator as an in-process source: frames straight from a ``SimWorld``, no socket.

Virtual time (``paced=False``) runs the world as fast as the CPU allows and
stamps every frame with its event time, so an hour of stream takes seconds and
a test knows exactly when each frame "arrived"; a ``ManualClock`` given as
``clock`` is moved to each frame's time before the frame is handed out, so
timers reading that clock follow the stream. Paced (``paced=True``), frames
come out in real time (or ``speed`` times faster), stamped with the clock's
time at delivery, like a live websocket source without the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncGenerator

from engine.core.clock import SYSTEM_CLOCK, Clock, ManualClock
from engine.core.frame import Frame, Gap
from engine.errors import InvalidArgument
from engine.events import Emit, SourceConnected, discard
from engine.sim.pump import Item, batches
from engine.sim.world import SimWorld
from engine.sources.base import SourceStats


class SimulatorSource:
    """Frames of a simulated PurpleDrop: ``async for frame in SimulatorSource(SimWorld(seed=1))``.

    The stream starts at ``start`` (default: the clock's time when iteration
    begins) and ends before ``until`` (or ``start + duration``), or never.
    After iteration has begun, ``start`` holds the start time, so the ground
    truth is ``source.world.bursts(source.start, until)``.
    """

    def __init__(
        self,
        world: SimWorld,
        *,
        name: str = "sim",
        clock: Clock = SYSTEM_CLOCK,
        paced: bool = True,
        speed: float = 1.0,
        start: float | None = None,
        until: float | None = None,
        duration: float | None = None,
    ) -> None:
        if not speed > 0:
            raise InvalidArgument(f"speed={speed}: must be above 0")
        if until is not None and duration is not None:
            raise InvalidArgument("pass until= or duration=, not both")
        if duration is not None and not duration >= 0:
            raise InvalidArgument(f"duration={duration}: must be 0 or more seconds")
        self.world = world
        self.name = name
        self.clock = clock
        self.paced = paced
        self.speed = float(speed)
        self.start = start
        self.until = until
        self.duration = duration
        self.stats = SourceStats()
        self.notify: Emit = discard
        self._announced = False
        self._batches: AsyncGenerator[list[Item]] | None = None
        self._batch: list[Item] = []
        self._next = 0
        self._seq = 0
        self._anchor: tuple[float, float] | None = None  # (first event time, loop time)
        self._closing = asyncio.Event()
        self._busy = False
        self._finished = False

    def __repr__(self) -> str:
        return f"SimulatorSource({self.name!r}, paced={self.paced}, frames={self.stats.frames})"

    def __aiter__(self) -> SimulatorSource:
        if not self._announced:
            self._announced = True
            self.notify(SourceConnected(time=self.clock.time(), source=self.name))
        return self

    async def __anext__(self) -> Frame | Gap:
        if self._finished or self._closing.is_set():
            await self._finish()
            raise StopAsyncIteration
        if self._next >= len(self._batch) and not await self._refill():
            raise StopAsyncIteration
        t, raw = self._batch[self._next]
        self._next += 1
        if self.paced:
            if not await self._wait_until(t):
                await self._finish()
                raise StopAsyncIteration
            now = self.clock.time()
        else:
            now = t
            clock = self.clock
            if isinstance(clock, ManualClock) and t > clock.time():
                clock.set(t)
        seq = self._seq
        self._seq = seq + 1
        stats = self.stats
        stats.frames += 1
        stats.bytes += len(raw)
        return Frame(raw, now, seq, self.name)

    async def _refill(self) -> bool:
        if self._batches is None:
            if self.start is None:
                self.start = self.clock.time()
            until = self.until
            if until is None and self.duration is not None:
                until = self.start + self.duration
            self._batches = batches(self.world.events(self.start, until))
        self._busy = True
        try:
            batch = await anext(self._batches, None)
        finally:
            self._busy = False
        await asyncio.sleep(0)  # a batch is hundreds of frames: let timers and other tasks run
        if batch is None or self._closing.is_set():
            await self._finish()
            return False
        self._batch, self._next = batch, 0
        return True

    async def _wait_until(self, t: float) -> bool:
        """Sleep until event time ``t`` is due; False if ``aclose()`` came first."""
        loop = asyncio.get_running_loop()
        if self._anchor is None:
            self._anchor = (t, loop.time())
        first, at = self._anchor
        delay = at + (t - first) / self.speed - loop.time()
        if delay <= 0 or math.isinf(self.speed):
            return not self._closing.is_set()
        try:
            await asyncio.wait_for(self._closing.wait(), delay)
        except TimeoutError:
            return True
        return False

    async def _finish(self) -> None:
        self._finished = True
        self._batch, self._next = [], 0
        generator, self._batches = self._batches, None
        if generator is not None and not self._busy:
            with contextlib.suppress(RuntimeError):
                await generator.aclose()

    async def aclose(self) -> None:
        """End iteration promptly, from any task."""
        self._closing.set()
        if not self._busy:
            await self._finish()
