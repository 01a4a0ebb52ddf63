"""Clocks are injected, never read inside the core.

Every frame gets its receive time from the engine's clock; pre-roll, post-roll,
schedules and gaps are computed from those times. Tests and replays pass a
``ManualClock`` so that a day of stream runs in milliseconds and a replay
reproduces what a live run recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from engine.errors import InvalidArgument


class Clock(Protocol):
    """Source of the current time, in seconds since the epoch (UTC)."""

    def time(self) -> float: ...


class SystemClock:
    """The wall clock (``time.time``)."""

    __slots__ = ()

    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to: virtual time for tests and replays."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def time(self) -> float:
        return self._now

    def set(self, now: float) -> None:
        if now < self._now:
            raise InvalidArgument(f"ManualClock cannot go back in time ({now} < {self._now})")
        self._now = float(now)

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise InvalidArgument(f"ManualClock cannot go back in time (advance by {seconds})")
        self._now += seconds
        return self._now


SYSTEM_CLOCK = SystemClock()


# A monotonic counter in seconds, for measuring what a step costs (never the time of
# day). The pure core measures budgets with it (a condition's evaluation time, twice
# per evaluation: the C function itself, no Python call around it) and tests replace
# it where they need exact figures.
elapsed: Callable[[], float] = time.perf_counter

# This thread's CPU time in seconds: what a step cost when the machine was busy.
# Dearer to read than ``elapsed`` (a system call), so budgets read it only to confirm
# an overrun: a step that took long on ``elapsed`` because the process was not
# running (a loaded machine, another thread holding the GIL) did not cost that much.
cpu_elapsed: Callable[[], float] = time.thread_time


def due(last: float | None, now: float, interval: float) -> bool:
    """Whether a step done at ``last`` (``None``: never) is due again at ``now``.

    A clock stepped back (live, receive time is the wall clock) makes it due
    too: otherwise the step would wait for the old time to come again.
    """
    return last is None or not 0 <= now - last < interval


class FlushClock(Enum):
    """What a segment's ``flush_interval`` is counted in: it bounds what a crash loses.

    Live, receive time is the wall clock, so the writer flushes as receive
    time passes. In virtual time (a replay flat out) receive time runs far
    ahead of the wall clock: flushing on it would flush a hundred times per
    wall second for no gain, so the writer flushes only when told, and the
    driver tells it every ``flush_interval`` of wall time.
    """

    RECEIVE_TIME = "receive time"
    WHEN_TOLD = "when told"
