"""Retry, per-camera limits, where files are written: decisions only, time passed in.

The seed retried at once, which hammers a camera that just failed; here a retry
waits an exponentially growing delay with jitter, so many shots failing
together do not come back together. Per-camera limits are what the seed's
users wrote by hand: at most N shots of a camera at once, and at most one per
period (refusing the extra requests, or spacing them out).

``InlineWrites`` decides whether a shot file is written on the loop's thread;
see its docstring for the measurements behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``backoff * factor**(n-1)``, capped, then +-jitter."""

    backoff: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.5

    def delay(self, failed_tries: int, rand: float) -> float:
        """Seconds to wait after the ``failed_tries``-th failure; ``rand`` is uniform in [0, 1)."""
        base = min(self.cap, self.backoff * self.factor ** max(0, failed_tries - 1))
        return max(0.0, base * (1.0 + self.jitter * (2.0 * rand - 1.0)))


class CameraGate:
    """One camera's limits: in-flight count, and a minimum interval between shots.

    With ``throttle="skip"`` the interval applies to requests (``ShotDesk``
    refuses one that comes too soon after the last admitted). With ``"delay"``
    every request is admitted and the interval spaces the starts of tries, here.
    """

    __slots__ = (
        "in_flight",
        "last_start",
        "max_in_flight",
        "min_interval",
        "throttle",
    )

    def __init__(
        self,
        max_in_flight: int | None = None,
        min_interval: float = 0.0,
        throttle: Literal["skip", "delay"] = "skip",
    ) -> None:
        self.max_in_flight = max_in_flight
        self.min_interval = min_interval
        self.throttle = throttle
        self.in_flight = 0
        self.last_start: float | None = None

    def start_at(self) -> float | None:
        """Earliest time the next try may start by the interval (None: no interval wait)."""
        if self.throttle == "delay" and self.min_interval > 0 and self.last_start is not None:
            return self.last_start + self.min_interval
        return None

    def can_start(self, now: float) -> bool:
        if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
            return False
        at = self.start_at()
        return at is None or at <= now

    def started(self, now: float) -> None:
        self.in_flight += 1
        self.last_start = now

    def finished(self) -> None:
        self.in_flight -= 1


def plan_time(
    dt: float | None, now: float, buffer_ts: float, live_window: float
) -> tuple[float, bool, float]:
    """When a request is for, whether a live shot serves it, and when it may start.

    Returns ``(shot_time, live, not_before)``. A requested time in the future
    waits for that moment and is then live; one in the past within
    ``live_window`` is served live; older ones ask the camera's archive.
    ``buffer_ts`` delays every start (the seed gave overlays time to render).
    """
    earliest = now + buffer_ts
    if dt is None:
        return now, True, earliest
    if dt >= now:
        return dt, True, max(earliest, dt)
    return dt, now - dt <= live_window, earliest


@dataclass(slots=True)
class InlineWrites:
    """Whether a shot's file is written on the event loop's thread, or on a worker thread.

    Measured on a 2-core machine with a 5 KB JPEG: creating, writing and renaming
    the file takes 40-60 us in page cache (120 us for 256 KB), while handing it
    to a worker thread and back costs 120-500 us of wake-ups, plus GIL hand-overs
    on each of the worker's four system calls while the loop is busy: saving
    10,000 queued shots cost 370 us of CPU per shot that way against 150 us
    written in place, and the loop ran at half the rate. So small files are
    written in place, and large ones (``max_bytes``) go to a worker, where the
    copy would hold the loop for longer than the hand-over costs.

    A disk that stalls (a network share, write-back throttling, a journal
    commit: one write in a burst of 10,000 took 120 ms on that machine) stalls
    the whole loop, so a write slower than ``slow`` seconds sends writes to
    worker threads for ``pause`` seconds, twice as long after each slow write
    that follows (up to ``max_pause``), back to ``pause`` after a quick one.
    ``slow`` is well above what a quick disk can show: each of the four system
    calls lets other Python threads take the GIL, and getting it back may wait
    a switch interval (5 ms) each, so a busy program sees 20 ms writes that say
    nothing about the disk.
    """

    max_bytes: int = 256 * 1024
    slow: float = 0.050
    pause: float = 5.0
    max_pause: float = 300.0
    resume_at: float = float("-inf")
    next_pause: float = 0.0

    def quick(self, now: float) -> bool:
        """No write slow lately: may file system calls be made on the loop's thread?"""
        return now >= self.resume_at

    def inline(self, size: int, now: float) -> bool:
        """Write ``size`` bytes on the loop's thread at ``now``?"""
        return size <= self.max_bytes and now >= self.resume_at

    def took(self, seconds: float, now: float) -> float | None:
        """An in-place write took ``seconds``: the pause it starts, or None when it was quick."""
        if seconds <= self.slow:
            self.next_pause = self.pause
            return None
        pause = max(self.next_pause, self.pause)
        self.resume_at = now + pause
        self.next_pause = min(pause * 2, self.max_pause)
        return pause
