"""Firing schedules live, on APScheduler and the wall clock (virtual time: ``jobs.py``).

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
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from engine.rules.schedule import Schedule
from engine.runtime.jobs import Job, Key, OnFire, VirtualScheduler, diff_jobs, planned_time

log = logging.getLogger(__name__)

__all__ = ["Job", "Key", "LiveScheduler", "OnFire", "ScheduleTrigger", "VirtualScheduler"]


class ScheduleTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 ships no types
    """An APScheduler trigger that asks a pure ``Schedule``; jitter included, reproducible."""

    __slots__ = ("schedule",)

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is not None:
            # A datetime holds whole microseconds: the previous fire, rounded to one, may
            # read a hair before its true time, and asking "after" that would give the same
            # fire again, forever (APScheduler loops until a fire is past now).
            after = previous_fire_time.timestamp() + 1e-6
        else:
            after = now.timestamp() - 1e-6  # a fire due exactly now still counts
        fire = self.schedule.next_fire(after)
        if fire is None:
            return None
        return datetime.fromtimestamp(fire[1], self.schedule.tz)

    def __str__(self) -> str:
        return "cuecap schedule"


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

        if self._scheduler.running:
            return
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

    def set_jobs(self, jobs: Mapping[Key, Job], now: float | None = None) -> tuple[int, int, int]:
        """Make the scheduled jobs these: unchanged ones keep their timing.

        Returns how many were added, changed and removed. (``now``: the wall clock's,
        which APScheduler reads itself.)
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

    def due(self, now: float, *, inclusive: bool = True) -> list[tuple[float, str, int]]:
        """Nothing: APScheduler fires live schedules by itself, through ``on_fire``."""
        return []

    def next_due(self) -> float:
        """Never: nothing is ever ``due``."""
        return math.inf

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
