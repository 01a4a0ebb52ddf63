"""The shot queue: which tasks start now, what a failure leads to. No I/O, no clock.

Every decision takes ``now``; the asyncio service asks ``take(now)`` whenever
something changed (a request, a finished try, a timer) and arms one timer for
``next_wake(now)``. Requests come in admitted (``ShotDesk`` bounds how many
are unfinished); here are the other bounds the seed lacked: at most
``pool_size`` tries running at once over all cameras, and each camera's own
gate. Among the cameras free to start, the oldest request goes first, so one
busy camera does not starve the others and a retry keeps its place.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from engine.shots.policy import CameraGate, RetryPolicy
from engine.shots.status import ShotStatus


@dataclass(eq=False, slots=True)
class ShotTask:
    """One requested shot, from ``in_queue`` to its final status."""

    guid: str
    camera: str
    created: float
    not_before: float
    shot_time: float
    live: bool
    path: Path | None
    max_tries: int
    timeout: float
    figures: bool = False
    seq: int = 0
    tries: int = 0
    state: ShotStatus = ShotStatus.in_queue
    reason: str = ""
    clash: bool = False  # its name is taken (on_exists: error): it fails without a try
    replace: bool = False  # on_exists: replace (written over a file of that name)
    context: Any = None  # what the adapter needs back (callbacks, fields...)
    order: int = field(default=0)  # global submission order, set by the queue


class Outcome(Enum):
    success = "success"
    retry = "retry"
    error = "error"


class ShotQueue:
    """Bounded waiting room plus in-flight accounting for all cameras."""

    def __init__(
        self,
        *,
        pool_size: int,
        retry: RetryPolicy,
        random: Callable[[], float],
    ) -> None:
        self.pool_size = pool_size
        self.retry = retry
        self._random = random
        self.gates: dict[str, CameraGate] = {}
        self._timed: list[tuple[float, int, ShotTask]] = []  # not ready before a time
        self._ready: dict[str, list[tuple[int, ShotTask]]] = {}  # camera -> heap by order
        self._order = 0
        self.waiting = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def gate(self, camera: str) -> CameraGate:
        gate = self.gates.get(camera)
        if gate is None:
            gate = self.gates[camera] = CameraGate()
        return gate

    # -- requests ----------------------------------------------------------

    def add(self, task: ShotTask) -> None:
        """Queue an admitted task (``ShotDesk`` bounds and throttles requests)."""
        self.gate(task.camera)
        self._order += 1
        task.order = self._order
        self._push(task)

    def _push(self, task: ShotTask) -> None:
        self.waiting += 1
        heapq.heappush(self._timed, (task.not_before, task.order, task))

    # -- starting ----------------------------------------------------------

    def take(self, now: float) -> list[ShotTask]:
        """Tasks to start now; they count as in flight until ``done``."""
        timed = self._timed
        ready = self._ready
        while timed and timed[0][0] <= now:
            task = heapq.heappop(timed)[2]
            heap = ready.get(task.camera)
            if heap is None:
                heap = ready[task.camera] = []
            heapq.heappush(heap, (task.order, task))
        starts: list[ShotTask] = []
        while self.in_flight < self.pool_size and ready:
            best: str | None = None
            best_order = 0
            for camera, heap in ready.items():
                if (best is None or heap[0][0] < best_order) and self.gates[camera].can_start(now):
                    best, best_order = camera, heap[0][0]
            if best is None:
                break
            heap = ready[best]
            task = heapq.heappop(heap)[1]
            if not heap:
                del ready[best]
            self.gates[best].started(now)
            self.waiting -= 1
            self.in_flight += 1
            if self.in_flight > self.max_in_flight:
                self.max_in_flight = self.in_flight
            task.tries += 1
            task.state = ShotStatus.saving
            starts.append(task)
        return starts

    def next_wake(self, now: float) -> float | None:
        """When ``take`` may have something new without any request or completion."""
        wake = self._timed[0][0] if self._timed else None
        if self.in_flight < self.pool_size:
            for camera in self._ready:
                at = self.gates[camera].start_at()
                if at is not None and at > now and (wake is None or at < wake):
                    wake = at
        return wake

    # -- finishing ---------------------------------------------------------

    def done(
        self, task: ShotTask, now: float, error: str | None, retryable: bool = True
    ) -> tuple[Outcome, float]:
        """A try ended. Returns the outcome and, for a retry, when it may start."""
        self.in_flight -= 1
        self.gates[task.camera].finished()
        if error is None:
            task.state = ShotStatus.success
            task.reason = ""
            return Outcome.success, now
        task.reason = error
        if retryable and task.tries < task.max_tries:
            task.not_before = now + self.retry.delay(task.tries, self._random())
            task.state = ShotStatus.in_queue
            self._push(task)
            return Outcome.retry, task.not_before
        task.state = ShotStatus.error
        return Outcome.error, now

    def remove_waiting(self) -> Iterator[ShotTask]:
        """Take every waiting task out (shutdown); they never start."""
        tasks = [t for _, _, t in self._timed]
        for heap in self._ready.values():
            tasks.extend(t for _, t in heap)
        self._timed.clear()
        self._ready.clear()
        self.waiting = 0
        tasks.sort(key=lambda t: t.order)
        return iter(tasks)
