"""Schedules as jobs, and the scheduler the engine core asks: pure, no clock read.

A ``Job`` is a rule's schedule to fire; a ``Scheduler`` fires jobs. The live
one (``engine.runtime.scheduler.LiveScheduler``) runs on APScheduler and the
wall clock; ``VirtualScheduler`` here fires in virtual time (a ``ManualClock``:
tests and ``cuecap replay``), where there is no wall clock to wait on:
whoever moves time asks ``due(now)`` for the fires up to then, in order. Both
ask the pure ``Schedule`` for fire times, so they fire at the same instants.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.rules.schedule import Schedule

Key = tuple[str, int]
OnFire = Callable[[str, int, float], None]


class Scheduler(Protocol):
    """What the engine core asks of a scheduler; live and virtual time differ only here.

    A live scheduler fires by itself, on the wall clock, through the callback it was
    built with, and has nothing ``due``; a virtual one never fires by itself and hands
    back from ``due(now)`` every fire up to ``now``.
    """

    def set_jobs(self, jobs: Mapping[Key, Job], now: float) -> tuple[int, int, int]: ...

    def due(self, now: float, *, inclusive: bool = True) -> list[tuple[float, str, int]]: ...

    def next_due(self) -> float:
        """The earliest time ``due`` could return anything for (inf: never, until
        ``set_jobs``); lets the core skip asking on every frame."""
        ...

    def next_times(self) -> dict[Key, float | None]: ...

    def start(self) -> None: ...

    def shutdown(self) -> None: ...


@dataclass(frozen=True)
class Job:
    """A schedule to run: ``fingerprint`` changes when the rule's trigger changes."""

    schedule: Schedule
    grace: float
    fingerprint: Any


def diff_jobs(
    current: Mapping[Key, Job], wanted: Mapping[Key, Job]
) -> tuple[list[Key], list[Key], list[Key]]:
    """Keys of the jobs to add, to replace (their trigger changed) and to remove."""
    removed = [key for key in current if key not in wanted]
    added = [key for key in wanted if key not in current]
    changed = [
        key
        for key, job in wanted.items()
        if key in current and current[key].fingerprint != job.fingerprint
    ]
    return added, changed, removed


def planned_time(schedule: Schedule, now: float, lookback: float) -> float:
    """The fire this run is for: the latest one at or before ``now`` within ``lookback``.

    An interval's latest fire is never more than one interval (plus jitter)
    back, so a long grace on a short interval costs one step, not thousands.
    """
    if schedule.every is not None:
        lookback = min(lookback, schedule.every + schedule.jitter)
    last = None
    for _, actual in schedule.fire_times(now - lookback, now + 1e-6):
        last = actual
    return last if last is not None else now


class VirtualScheduler:
    """Schedules in virtual time: ``due(now)`` pops every fire up to ``now``, in time order."""

    def __init__(self, start: float) -> None:
        self.origin = start
        self._jobs: dict[Key, Job] = {}
        self._heap: list[tuple[float, Key, int]] = []
        self._version: dict[Key, int] = {}

    def _push(self, key: Key, after: float) -> None:
        fire = self._jobs[key].schedule.next_fire(after)
        if fire is not None:
            heapq.heappush(self._heap, (fire[1], key, self._version[key]))

    def set_jobs(self, jobs: Mapping[Key, Job], now: float | None = None) -> tuple[int, int, int]:
        """As ``LiveScheduler.set_jobs``; new and changed jobs fire after ``now``."""
        after = self.origin if now is None else now
        added, changed, removed = diff_jobs(self._jobs, jobs)
        for key in removed:
            del self._jobs[key]
            self._version[key] = self._version.get(key, 0) + 1  # its heap entries go stale
        for key in (*added, *changed):
            self._jobs[key] = jobs[key]
            self._version[key] = self._version.get(key, 0) + 1
            self._push(key, after)
        return len(added), len(changed), len(removed)

    def start(self) -> None:
        """Nothing to start: virtual time moves when the stream does."""

    def shutdown(self) -> None:
        """Nothing to stop."""

    def _discard_stale(self) -> None:
        heap = self._heap
        while heap and (heap[0][1] not in self._jobs or heap[0][2] != self._version[heap[0][1]]):
            heapq.heappop(heap)

    def due(self, now: float, *, inclusive: bool = True) -> list[tuple[float, str, int]]:
        """``(time, rule, index)`` of every fire up to ``now`` (or before it), in time order."""
        out: list[tuple[float, str, int]] = []
        while True:
            self._discard_stale()
            if not self._heap:
                return out
            first = self._heap[0][0]
            if first > now or (first == now and not inclusive):
                return out
            time, key, _ = heapq.heappop(self._heap)
            out.append((time, key[0], key[1]))
            self._push(key, time)

    def next_due(self) -> float:
        self._discard_stale()
        return self._heap[0][0] if self._heap else math.inf

    def next_times(self) -> dict[Key, float | None]:
        self._discard_stale()
        out: dict[Key, float | None] = dict.fromkeys(self._jobs)
        for time, key, version in self._heap:
            if key in self._jobs and version == self._version[key]:
                current = out.get(key)
                out[key] = time if current is None else min(current, time)
        return out
