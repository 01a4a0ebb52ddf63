"""How time moves for a run: on the wall clock, or with the frames (virtual time).

The engine core never asks which; the driver holds one of these two and asks
it the few things that really differ:

- which scheduler fires schedules (APScheduler on the wall clock, or a heap
  that the stream's times drain);
- whether time moves by itself: live, a timer ticks the recorders and
  ``--for 20`` is twenty wall seconds, and the engine outlives its sources while
  schedules remain; in virtual time a frame's receive time *is* the time, so
  schedules due before a frame fire before it, ``--for`` ends at the first
  frame past the end, and the run ends with its sources;
- whether sources are paced (a replay at the recorded speed) or run flat out;
- whether a shot must name its moment (virtual "now" has moved on by the time
  a shot is taken, so the trigger's time is asked for).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import tzinfo

from engine.core.clock import SYSTEM_CLOCK, Clock, ManualClock
from engine.runtime.jobs import OnFire, Scheduler, VirtualScheduler
from engine.runtime.scheduler import LiveScheduler


class LiveTime:
    """The wall clock (or any clock that moves by itself)."""

    moves_by_itself = True
    paced = True
    exact_shot_times = False

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock

    def scheduler(self, on_fire: OnFire, tz: tzinfo) -> Scheduler:
        return LiveScheduler(on_fire, tz, self.clock.time)

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

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def scheduler(self, on_fire: OnFire, tz: tzinfo) -> Scheduler:
        return VirtualScheduler(self.clock.time())

    async def wait(self, stop: asyncio.Event, duration: float | None) -> bool:
        """The frames end the run (at ``--for``'s end or their own): wait for the stop."""
        await stop.wait()
        return False


Timebase = LiveTime | VirtualTime


def timebase_for(clock: Clock) -> Timebase:
    """Virtual time for a ``ManualClock``, the wall clock's way for every other clock."""
    return VirtualTime(clock) if isinstance(clock, ManualClock) else LiveTime(clock)
