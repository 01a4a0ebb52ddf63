"""How time moves for a run: on the wall clock, or with the frames (virtual time).

The driver never asks which: it holds one of these two and lets it do the
few things that really differ:

- which scheduler fires schedules (APScheduler on the wall clock, or a heap
  that the stream's times drain);
- how a source is driven (``run_source``): live, a timer ticks the recorders
  and a source that can pours its frames in (no generator to resume per
  message); in virtual time a frame's receive time *is* the time, so each
  frame first moves time to it (schedules due before it fire, and their runs
  finish, before it is handled);
- how the run waits (``wait``): ``--for 20`` is twenty wall seconds live; in
  virtual time the frames reach the end;
- whether time moves by itself, which the core's stop decision needs (live, the
  engine outlives its sources while schedules remain; virtually it ends with them);
- whether sources are paced (a replay at the recorded speed) or run flat out;
- whether a shot must name its moment (virtual "now" has moved on by the time
  a shot is taken, so the trigger's time is asked for);
- what a recorder's ``flush_interval`` is counted in (``FlushClock``,
  ``flusher``): it bounds what a crash loses in wall time, so live the writers
  flush as receive time (the wall clock) passes, and in virtual time they are
  flushed on the wall clock instead of once per half second of stream;
- why recorders close at the stop: ``shutdown`` live, ``end`` (of the stream) virtually.

When to stop is the core's decision (``EngineCore.until``, ``source_ended``):
these only carry the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Coroutine, Mapping
from datetime import tzinfo
from typing import Any, Protocol

from engine.core.clock import SYSTEM_CLOCK, Clock, FlushClock, ManualClock
from engine.core.frame import Frame, Gap
from engine.runtime.jobs import OnFire, Scheduler, VirtualScheduler
from engine.runtime.scheduler import LiveScheduler
from engine.sources.base import Pourable, Source

YIELD_EVERY = 256  # items between chances for timers and actions to run
_IDLE_FLUSH_CHECK = 0.5  # real seconds between looks for recorders to flush, when none
_MIN_FLUSH_SLEEP = 0.001


class Flushable(Protocol):
    """What the virtual-time flusher drives of a recorder."""

    @property
    def config(self) -> Any: ...  # its flush_interval

    def flush(self, now: float) -> None: ...


async def _flush_on_the_wall_clock(
    recorders: Callable[[], Mapping[str, Flushable]],
    now: Callable[[], float],
    look_every: float = _IDLE_FLUSH_CHECK,
) -> None:
    """Each recorder flushed every ``flush_interval`` of wall time, whatever ``now`` says.

    The asyncio loop's clock is the wall clock whatever the engine's clock is, so
    a crash loses at most that much wall time, as live; the stream runs in
    between (sources yield to the loop every ``YIELD_EVERY`` items). It looks at
    least every ``look_every`` seconds, and flushes a recorder it has not seen
    (a reload's new or changed one) at once: sleeping to the next due flush, an
    old recorder's long interval, would leave a new one unflushed that long.
    """
    loop = asyncio.get_running_loop()
    due: dict[str, tuple[Flushable, float]] = {}  # by name: the recorder, its next flush
    started = False  # the recorders of the first look came with the run, not a reload
    while True:
        wall = loop.time()
        current = dict(recorders())
        for name in due.keys() - current.keys():  # gone with a reload
            del due[name]
        for name, recorder in current.items():
            seen = due.get(name)
            if seen is None or seen[0] is not recorder:
                if started:  # a reload's: it may have written since it came
                    recorder.flush(now())
                due[name] = (recorder, wall + recorder.config.flush_interval)
            elif wall >= seen[1]:
                recorder.flush(now())
                due[name] = (recorder, wall + recorder.config.flush_interval)
        started = True
        soonest = min((at for _, at in due.values()), default=math.inf)
        wake = min(soonest, wall + look_every)
        await asyncio.sleep(max(wake - loop.time(), _MIN_FLUSH_SLEEP))


class _Stopped(Exception):
    """The core takes no more frames: ends a pour from inside its callback."""


class Feed(Protocol):
    """What a timebase drives a source's items into: the driver's handlers."""

    unsettled: bool  # rule runs were started since the last ``settle``

    def take_frame(self, frame: Frame) -> bool:
        """Handle a frame; False once the core takes no more."""
        ...

    def take_gap(self, gap: Gap) -> None: ...

    def move_to(self, time: float) -> bool:
        """Virtual time moves to ``time``; False once that is past the end of the run."""
        ...

    async def settle(self) -> None:
        """Virtual time: the rule runs started (``unsettled``) finish before the stream moves on."""
        ...


async def _iterate(source: Source, feed: Feed) -> None:
    """Any source, item by item, as it comes (live sources that cannot pour)."""
    count = 0
    take_frame = feed.take_frame
    async for item in source:
        if isinstance(item, Frame):
            if not take_frame(item):
                break
        elif isinstance(item, Gap):
            feed.take_gap(item)
        count += 1
        if count % YIELD_EVERY == 0:
            await asyncio.sleep(0)


class LiveTime:
    """The wall clock (or any clock that moves by itself)."""

    moves_by_itself = True
    paced = True
    exact_shot_times = False
    flushes = FlushClock.RECEIVE_TIME

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock

    closes_recordings_with = "shutdown"

    def scheduler(self, on_fire: OnFire, tz: tzinfo) -> Scheduler:
        return LiveScheduler(on_fire, tz, self.clock.time)

    def ticker(
        self, every: Callable[[], float], tick: Callable[[float], None]
    ) -> Coroutine[Any, Any, None] | None:
        """Recorders see the time every ``every()`` seconds (a post-roll ends in silence)."""

        async def ticking() -> None:
            while True:
                await asyncio.sleep(every())
                tick(self.clock.time())

        return ticking()

    def flusher(
        self, recorders: Callable[[], Mapping[str, Flushable]], now: Callable[[], float]
    ) -> Coroutine[Any, Any, None] | None:
        """None: the writers flush as receive time, the wall clock, passes."""
        return None

    async def run_source(self, source: Source, feed: Feed) -> bool:
        """A source that can pours its frames in; any other is iterated.

        True when a pour ended because the core took no more (the source "stopped").
        """
        if not isinstance(source, Pourable):
            await _iterate(source, feed)
            return False
        take_frame = feed.take_frame

        def on_frame(frame: Frame) -> None:
            if not take_frame(frame):
                raise _Stopped

        try:
            await source.pour(on_frame, feed.take_gap)
        except _Stopped:
            return True
        return False

    async def wait(self, stop: asyncio.Event, duration: float | None) -> bool:
        """Until ``stop`` is set or ``duration`` seconds pass; True if the time ran out."""
        if duration is None:
            await stop.wait()
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
        return not stop.is_set()


class VirtualTime:
    """A ``ManualClock`` that the frames move: replays and tests, as fast as the machine allows."""

    moves_by_itself = False
    paced = False
    exact_shot_times = True
    flushes = FlushClock.WHEN_TOLD

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    closes_recordings_with = "end"

    def scheduler(self, on_fire: OnFire, tz: tzinfo) -> Scheduler:
        return VirtualScheduler(self.clock.time())

    def ticker(
        self, every: Callable[[], float], tick: Callable[[float], None]
    ) -> Coroutine[Any, Any, None] | None:
        """None: recorders are ticked as the frames move time (``EngineCore.advance``)."""
        return None

    def flusher(
        self, recorders: Callable[[], Mapping[str, Flushable]], now: Callable[[], float]
    ) -> Coroutine[Any, Any, None] | None:
        """Recorders flushed on the wall clock (they are ``FlushClock.WHEN_TOLD``)."""
        return _flush_on_the_wall_clock(recorders, now)

    async def run_source(self, source: Source, feed: Feed) -> bool:
        """Each frame (and each gap's end) moves time to it first, then is handled."""
        count = 0
        async for item in source:
            if isinstance(item, Frame):
                if not feed.move_to(item.time):
                    break
                if feed.unsettled:  # schedules fired: their runs happen before this frame
                    await feed.settle()
                if not feed.take_frame(item):
                    break
                if feed.unsettled:
                    await feed.settle()
            elif isinstance(item, Gap):
                # what was due before the source came back happens first
                if not feed.move_to(item.end):
                    break
                feed.take_gap(item)
            count += 1
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return False

    async def wait(self, stop: asyncio.Event, duration: float | None) -> bool:
        """The frames end the run (at ``--for``'s end or their own): wait for the stop."""
        await stop.wait()
        return False


Timebase = LiveTime | VirtualTime


def timebase_for(clock: Clock) -> Timebase:
    """Virtual time for a ``ManualClock``, the wall clock's way for every other clock."""
    return VirtualTime(clock) if isinstance(clock, ManualClock) else LiveTime(clock)
