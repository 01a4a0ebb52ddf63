"""Firing schedules: on APScheduler in live runs, from a heap in virtual time.

Both ask the pure ``Schedule`` for fire times, so they fire at the same
instants. Live runs use APScheduler 3's ``AsyncIOScheduler``, set on purpose:

- ``misfire_grace_time`` (the rule's ``grace``, default 1 s): a fire that
  could not start within that long of its time (the machine slept, the loop
  was blocked) is skipped rather than run late: a timelapse frame taken
  minutes late is a wrong frame;
- ``coalesce=True``: after a long stall, one run rather than a burst of the
  ones missed;
- ``max_instances=1``: the job only hands a firing to the rule runner and
  returns at once; the rule's ``mode`` decides about overlapping runs.

In virtual time (a ``ManualClock``: tests and ``cuecap replay``) there is no
wall clock to wait on; whoever moves time asks ``due(now)`` for the fires up
to then, in order.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from engine.rules.schedule import Schedule

log = logging.getLogger(__name__)

Key = tuple[str, int]
OnFire = Callable[[str, int, float], None]


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


class ScheduleTrigger(BaseTrigger):
    """An APScheduler trigger that asks a pure ``Schedule``; jitter included, reproducible."""

    __slots__ = ("schedule",)

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is not None:
            after = previous_fire_time.timestamp()
        else:
            after = now.timestamp() - 1e-6  # a fire due exactly now still counts
        fire = self.schedule.next_fire(after)
        if fire is None:
            return None
        return datetime.fromtimestamp(fire[1], self.schedule.tz)

    def __str__(self) -> str:
        return "cuecap schedule"


def planned_time(schedule: Schedule, now: float, lookback: float) -> float:
    """The fire this run is for: the latest one at or before ``now`` within ``lookback``."""
    last = None
    for _, actual in schedule.fire_times(now - lookback, now + 1e-6):
        last = actual
    return last if last is not None else now


class LiveScheduler:
    """Schedules on APScheduler's ``AsyncIOScheduler``; ``on_fire(rule, index, time)`` per fire."""

    def __init__(self, on_fire: OnFire, tz: tzinfo, now: Callable[[], float]) -> None:
        self.on_fire = on_fire
        self.now = now
        self._scheduler = AsyncIOScheduler(timezone=tz)
        self._jobs: dict[Key, Job] = {}
        self.missed = 0

    def start(self) -> None:
        from apscheduler.events import EVENT_JOB_MISSED

        self._scheduler.add_listener(self._missed, EVENT_JOB_MISSED)
        self._scheduler.start()

    def _missed(self, event: Any) -> None:
        self.missed += 1
        log.warning("schedule %s skipped its fire at %s (missed by more than its grace)",
                    event.job_id, event.scheduled_run_time)  # fmt: skip

    async def _run(self, rule: str, index: int) -> None:
        job = self._jobs.get((rule, index))
        if job is None:
            return
        now = self.now()
        self.on_fire(
            rule, index, planned_time(job.schedule, now, job.grace + job.schedule.jitter + 1)
        )

    def set_jobs(self, jobs: Mapping[Key, Job]) -> tuple[int, int, int]:
        """Make the scheduled jobs these: unchanged ones keep their timing.

        Returns how many were added, changed and removed.
        """
        added, changed, removed = diff_jobs(self._jobs, jobs)
        for key in removed:
            self._scheduler.remove_job(_job_id(key))
            del self._jobs[key]
        for key in (*added, *changed):
            job = self._jobs[key] = jobs[key]
            self._scheduler.add_job(
                self._run,
                trigger=ScheduleTrigger(job.schedule),
                args=key,
                id=_job_id(key),
                name=_job_id(key),
                misfire_grace_time=max(1, math.ceil(job.grace)),
                coalesce=True,
                max_instances=1,
                replace_existing=True,
            )
        return len(added), len(changed), len(removed)

    def next_times(self) -> dict[Key, float | None]:
        out: dict[Key, float | None] = {}
        for key in self._jobs:
            job = self._scheduler.get_job(_job_id(key))
            when = job.next_run_time if job is not None else None
            out[key] = when.timestamp() if when is not None else None
        return out

    def wakeup(self) -> None:
        """Look at the jobs now (tests move a frozen clock, then wake the scheduler)."""
        self._scheduler.wakeup()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)


def _job_id(key: Key) -> str:
    return f"{key[0]}#{key[1]}"


class VirtualScheduler:
    """Schedules in virtual time: ``due(now)`` pops every fire up to ``now``, in time order."""

    def __init__(self, start: float) -> None:
        self.start = start
        self._jobs: dict[Key, Job] = {}
        self._heap: list[tuple[float, Key, int]] = []
        self._version: dict[Key, int] = {}

    def _push(self, key: Key, after: float) -> None:
        fire = self._jobs[key].schedule.next_fire(after)
        if fire is not None:
            heapq.heappush(self._heap, (fire[1], key, self._version[key]))

    def set_jobs(self, jobs: Mapping[Key, Job], now: float | None = None) -> tuple[int, int, int]:
        """As ``LiveScheduler.set_jobs``; new and changed jobs fire after ``now``."""
        after = self.start if now is None else now
        added, changed, removed = diff_jobs(self._jobs, jobs)
        for key in removed:
            del self._jobs[key]
            self._version[key] = self._version.get(key, 0) + 1  # its heap entries go stale
        for key in (*added, *changed):
            self._jobs[key] = jobs[key]
            self._version[key] = self._version.get(key, 0) + 1
            self._push(key, after)
        return len(added), len(changed), len(removed)

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

    def next_times(self) -> dict[Key, float | None]:
        self._discard_stale()
        out: dict[Key, float | None] = dict.fromkeys(self._jobs)
        for time, key, version in self._heap:
            if key in self._jobs and version == self._version[key]:
                current = out.get(key)
                out[key] = time if current is None else min(current, time)
        return out
