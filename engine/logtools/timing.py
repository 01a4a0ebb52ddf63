"""When each camera frame is shown: pure timing for ``log video`` and ``log frames``.

No I/O and no clock: frame times come in, presentation timestamps go out.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

from engine.core.frame import Frame
from engine.logtools.errors import LogToolError

TIME_BASE = Fraction(1, 90000)
"""The MPEG clock: fine enough that no frame time is rounded by more than 6 µs."""

Clock = Literal["receive", "timestamp"]


class PtsPlanner:
    """Presentation timestamps from frame times: ``(t - start) / speed`` in ``time_base`` units.

    Encoders refuse equal or decreasing timestamps; two frames received in
    the same tick, or a clock that stepped back, get the next free tick
    instead, and ``adjusted`` counts them.
    """

    def __init__(self, start: float, speed: float = 1.0, time_base: Fraction = TIME_BASE) -> None:
        if not speed > 0:
            raise LogToolError(f"--speed must be more than 0, not {speed}")
        self.start = start
        self.speed = speed
        self.ticks_per_second = 1 / time_base
        self.last: int | None = None
        self.adjusted = 0

    def pts(self, time: float) -> int:
        pts = round((time - self.start) / self.speed * self.ticks_per_second)
        if self.last is not None and pts <= self.last:
            pts = self.last + 1
            self.adjusted += 1
        self.last = pts
        return pts


class FrameClock:
    """The time a camera frame is shown at: its receive time, or the server's timestamp.

    A frame without a timestamp (in ``timestamp`` mode) is placed at its
    receive time shifted by the last known timestamp-to-receive offset, so a
    missing field does not jump the video to the other clock.
    """

    def __init__(self, clock: Clock = "receive") -> None:
        if clock not in ("receive", "timestamp"):
            raise LogToolError(f"unknown clock {clock!r}; use 'receive' or 'timestamp'")
        self.clock = clock
        self.offset = 0.0
        self.missing = 0

    def time(self, frame: Frame) -> float:
        if self.clock == "receive":
            return frame.time
        stamp = frame.timestamp
        if stamp is None:
            self.missing += 1
            return frame.time + self.offset
        self.offset = stamp - frame.time
        return stamp
