"""Time points and ranges as users type them, resolved against a recording's span.

Users think of a recording in three ways: "from minute 2 to minute 5" (offsets
from its first record), "the last 30 seconds" (offsets from its end), and
"from 12:00 on May 1st" (a calendar time). A ``TimeSpec`` is parsed once,
before any file is opened, so a typo is reported at once; it is resolved to
epoch seconds only when the recording's first and last receive times are
known. Ranges are half-open, ``[start, end)``, so cutting at T and at T again
splits a recording into pieces that merge back exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from engine.errors import CuecapError

# A bare number at or above this is an epoch time (2001-09-09), not an offset:
# no recording is 31 years long.
EPOCH_THRESHOLD = 1e9

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)\Z")
_UNITS = re.compile(r"(?:(\d+(?:\.\d*)?)h)?(?:(\d+(?:\.\d*)?)m(?!s))?(?:(\d+(?:\.\d*)?)s)?\Z")
_CLOCK = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d*)?)\Z")

HELP = (
    "seconds from the start (90, 1:30, 2m30s), from the end (-30), "
    "an ISO datetime (2024-05-01T12:00:00, local time unless it has an offset) "
    "or an epoch time (@1714557600)"
)


class TimeSpecError(CuecapError, ValueError):
    """A time the user typed that is not one of the accepted forms."""


Kind = Literal["absolute", "from_start", "from_end"]


@dataclass(frozen=True, slots=True)
class TimeSpec:
    """A parsed time point; ``resolve`` turns it into epoch seconds."""

    text: str
    kind: Kind
    value: float

    def resolve(self, first: float, last: float | Callable[[], float]) -> float:
        """Epoch seconds, given the recording's first and last receive times.

        ``last`` may be a callable so that finding the end of a long recording
        is paid only by specs that count from it.
        """
        if self.kind == "absolute":
            return self.value
        if self.kind == "from_start":
            return first + self.value
        end = last() if callable(last) else last
        return end - self.value


def parse_time(text: str) -> TimeSpec:
    """Parse one time point; raises ``TimeSpecError`` naming the accepted forms."""
    raw = text
    text = text.strip()
    if not text:
        raise TimeSpecError(f"{raw!r}: empty time; use {HELP}")
    if text.startswith("@"):
        number = text[1:].strip()
        if not _NUMBER.match(number):
            raise TimeSpecError(f"{raw!r}: '@' must be followed by epoch seconds, e.g. @1714557600")
        return TimeSpec(raw, "absolute", float(number))
    negative = text.startswith("-")
    body = text[1:].strip() if text[0] in "+-" else text
    seconds = _offset_seconds(body)
    if seconds is not None:
        if negative:
            return TimeSpec(raw, "from_end", seconds)
        if text[0] != "+" and _NUMBER.match(body) and seconds >= EPOCH_THRESHOLD:
            return TimeSpec(raw, "absolute", seconds)
        return TimeSpec(raw, "from_start", seconds)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise TimeSpecError(f"{raw!r}: not a time; use {HELP}") from None
    return TimeSpec(raw, "absolute", when.timestamp())  # naive: local time


def _offset_seconds(body: str) -> float | None:
    """Seconds in ``90``, ``1:30``, ``1:02:03.5`` or ``1h2m3s``; None if it is none of them."""
    if _NUMBER.match(body):
        value = float(body)
        return value if math.isfinite(value) else None
    match = _CLOCK.match(body)
    if match:
        hours, minutes, seconds = match.groups()
        if float(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
            return None
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    match = _UNITS.match(body)
    if match and any(match.groups()):
        hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
        return hours * 3600 + minutes * 60 + seconds
    return None


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open range of receive times, ``[start, end)``; None means open."""

    start: float | None = None
    end: float | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise TimeSpecError(
                f"the range ends ({self.end:.6f}) before it starts ({self.start:.6f})"
            )

    @property
    def is_open(self) -> bool:
        return self.start is None and self.end is None

    def __contains__(self, time: float) -> bool:
        return (self.start is None or time >= self.start) and (self.end is None or time < self.end)

    def describe(self, first: float | None = None, last: float | None = None) -> str:
        """The range in words; given the recording's span, in its own times.

        ``--from 1:00`` on a 10 s recording then reads "from 1:00.000 ... of a
        recording of 0:00.000 to 0:10.000", the way the user typed it, rather
        than as epoch seconds.
        """
        if first is None:
            start = "the start" if self.start is None else f"{self.start:.6f}"
            end = "the end" if self.end is None else f"{self.end:.6f}"
            return f"[{start}, {end})"
        start = "the start" if self.start is None else offset_text(self.start - first)
        end = "the end" if self.end is None else offset_text(self.end - first)
        span = "" if last is None else f" of a recording of 0:00.000 to {offset_text(last - first)}"
        return f"[{start}, {end}){span}"


def offset_text(seconds: float) -> str:
    """Seconds from a recording's start as ``m:ss.sss`` (``h:mm:ss.sss``), as users type them."""
    sign = "-" if seconds < 0 else ""
    minutes, secs = divmod(abs(seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{secs:06.3f}"
    return f"{sign}{minutes}:{secs:06.3f}"


EVERYTHING = TimeRange()


def resolve_range(
    start: TimeSpec | None,
    end: TimeSpec | None,
    first: float,
    last: float | Callable[[], float],
) -> TimeRange:
    """The ``TimeRange`` the user meant by ``--from``/``--to`` for this recording."""
    return TimeRange(
        None if start is None else start.resolve(first, last),
        None if end is None else end.resolve(first, last),
    )
