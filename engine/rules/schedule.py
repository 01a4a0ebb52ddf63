"""When a schedule fires: a pure computation, no clock, no event loop.

``cuecap check`` lists the next fire times, ``cuecap replay`` fires schedules
in the virtual time of a recording, and the live engine hands the same object
to APScheduler as a trigger. All three ask one question, "the first fire time
after t?", so all three agree, down to the jitter.

Cron expressions are APScheduler 3's ``CronTrigger`` (its
``get_next_fire_time`` is pure); intervals count elapsed seconds from an
anchor (``start``, else midnight of 2000-01-01 in the schedule's zone), so
``every: 10s`` fires at :00, :10, :20 whenever the engine was started, and a
replay fires at the instants the live run did. Fixed times are cron entries.

Time zones and daylight saving:

- the spring gap: wall times that do not exist are not fired, except that a
  daily fixed time inside the gap (``at: "02:30"``) fires one hour later;
- the autumn overlap: an hour of wall time happens twice. Cron expressions
  with ``*`` for the hour fire in both (a day of ``*/5 * * * *`` fires 300
  times); fixed hours (``at:``, ``0 2 * * *``) fire once, at the first.

Jitter delays each fire by a fraction of ``jitter`` drawn from a hash of the
schedule's name and the nominal time: spread like random jitter, but
reproducible, so a replay reports the instants the live run used. Windows
(``between``, ``days``) and ``start``/``end`` apply to nominal times.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from apscheduler.triggers.cron import CronTrigger

from engine.errors import CuecapError

_TINY = 1e-6  # strictly after: one microsecond, the resolution of datetimes
_SEARCH_LIMIT = 2_000  # candidate times looked at before "never fires"
_DAY = 86400


# The shortest interval of ``every`` (stated in docs/rules.md): below it a rule
# would fire faster than the engine can serve anything else.
MIN_EVERY = 0.1


def every_floor_message(every: float) -> str:
    return (
        f"{every:g}s is shorter than the shortest interval, {MIN_EVERY:g}s; "
        "for something faster, react to messages instead"
    )


class ScheduleError(CuecapError, ValueError):
    """A schedule that cannot be built (bad cron string, empty, impossible)."""


def parse_cron(expression: str, tz: tzinfo) -> CronTrigger:
    """A cron trigger from 5 fields (minute hour day month weekday), or 6 with seconds first."""
    fields = expression.split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(expression, timezone=tz)
        if len(fields) == 6:
            second, minute, hour, day, month, dow = fields
            return CronTrigger(
                second=second, minute=minute, hour=hour, day=day, month=month,
                day_of_week=dow, timezone=tz,
            )  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise ScheduleError(f"bad cron expression {expression!r}: {exc}") from None
    raise ScheduleError(
        f"bad cron expression {expression!r}: expected 5 fields "
        "(minute hour day month weekday, e.g. '*/5 * * * *') or 6 with seconds first"
    )


def _hour_is_wildcard(trigger: CronTrigger) -> bool:
    for field in trigger.fields:
        if field.name == "hour":
            return str(field) == "*"
    return True


def seconds_of_day(local: datetime) -> float:
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


@dataclass(frozen=True, slots=True)
class Window:
    """Times of day ``[start, end)`` on some weekdays; ``start > end`` wraps past midnight.

    ``days`` are the weekdays (Monday 0) on which the window opens: a Friday
    window from 22:00 to 02:00 covers Friday 22:00 to Saturday 02:00.
    """

    start: int = 0
    end: int = _DAY
    days: frozenset[int] = frozenset(range(7))

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ScheduleError("a window from a time to the same time is empty")
        if not self.days:
            raise ScheduleError("a window needs at least one day")

    @property
    def always(self) -> bool:
        return self.start == 0 and self.end == _DAY and len(self.days) == 7

    def contains(self, local: datetime) -> bool:
        s = seconds_of_day(local)
        day = local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= s < self.end
        if s >= self.start:
            return day in self.days
        return s < self.end and (day - 1) % 7 in self.days

    def next_open(self, t: float, tz: tzinfo) -> float | None:
        """The first instant at or after ``t`` inside the window."""
        local = datetime.fromtimestamp(t, tz)
        if self.contains(local):
            return t
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
        best: float | None = None
        for day in range(9):
            base = (midnight.replace(tzinfo=None) + timedelta(days=day)).replace(tzinfo=tz)
            for offset in (0, self.start):
                if offset >= _DAY:
                    continue
                candidate = (base.replace(tzinfo=None) + timedelta(seconds=offset)).replace(
                    tzinfo=tz
                )
                at = candidate.timestamp()
                inside = at >= t and self.contains(datetime.fromtimestamp(at, tz))
                if inside and (best is None or at < best):
                    best = at
            if best is not None:
                return best
        return None


def _jitter_fraction(seed: str, nominal: float) -> float:
    digest = hashlib.blake2b(f"{seed}@{nominal:.6f}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Schedule:
    """The fire times of one schedule trigger; ``next_fire(after)`` is the whole interface.

    Exactly one of ``cron``, ``every``, ``at`` (times of day, seconds after
    midnight) or ``dates`` (epoch seconds) is given; ``cron`` may also be a
    list, fired at the union of its instants.
    """

    def __init__(
        self,
        *,
        tz: tzinfo,
        cron: str | Sequence[str] | None = None,
        every: float | None = None,
        at: Sequence[int] = (),
        dates: Sequence[float] = (),
        window: Window | None = None,
        start: float | None = None,
        end: float | None = None,
        jitter: float = 0.0,
        seed: str = "",
    ) -> None:
        given = sum(
            x is not None and x != () and x != [] for x in (cron, every, at or None, dates or None)
        )
        if given != 1:
            raise ScheduleError("a schedule needs exactly one of cron, every, at")
        if every is not None and not (every > 0 and math.isfinite(every)):
            raise ScheduleError(f"every must be a positive number of seconds, got {every}")
        if every is not None and every < MIN_EVERY:
            raise ScheduleError(f"every: {every_floor_message(every)}")
        if jitter < 0:
            raise ScheduleError(f"jitter must be >= 0, got {jitter}")
        if every is not None and jitter >= every:
            raise ScheduleError(
                f"jitter ({jitter:g}s) must be shorter than the interval ({every:g}s)"
            )
        if start is not None and end is not None and end <= start:
            raise ScheduleError("end must be after start")
        self.tz = tz
        self.window = window if window is not None and not window.always else None
        self.start = start
        self.end = end
        self.jitter = jitter
        self.seed = seed
        self.every = every
        self._anchor = start
        if every is not None and start is None:
            self._anchor = datetime(2000, 1, 1, tzinfo=tz).timestamp()
        crons = [cron] if isinstance(cron, str) else list(cron or ())
        # (trigger, fires only once in the autumn overlap)
        self._crons: list[tuple[CronTrigger, bool]] = []
        for expression in crons:
            trigger = parse_cron(expression, tz)
            self._crons.append((trigger, not _hour_is_wildcard(trigger)))
        for seconds in sorted(set(at)):
            if not 0 <= seconds < _DAY:
                raise ScheduleError(f"a time of day must be before 24:00, got {seconds}s")
            hour, rest = divmod(int(seconds), 3600)
            minute, second = divmod(rest, 60)
            trigger = CronTrigger(hour=hour, minute=minute, second=second, timezone=tz)
            self._crons.append((trigger, True))
        self._dates = sorted(dates)

    # -- nominal times ---------------------------------------------------------

    def _base_next(self, t: float) -> float | None:
        """The first instant strictly after ``t`` of the bare schedule (no window)."""
        if self.every is not None:
            assert self._anchor is not None
            if t < self._anchor:
                return self._anchor
            k = math.floor((t - self._anchor) / self.every) + 1
            candidate = self._anchor + k * self.every
            while candidate <= t:  # float rounding
                k += 1
                candidate = self._anchor + k * self.every
            return candidate
        if self._dates:
            i = bisect.bisect_right(self._dates, t)
            return self._dates[i] if i < len(self._dates) else None
        best: float | None = None
        now = datetime.fromtimestamp(t + _TINY, UTC)
        for trigger, once in self._crons:
            cursor = now
            for _ in range(4):
                fire = trigger.get_next_fire_time(None, cursor)
                if fire is None:
                    break
                if once and fire.fold == 1 and _is_repeat(fire):
                    cursor = fire.astimezone(UTC) + timedelta(microseconds=1)
                    continue
                at = fire.timestamp()
                if best is None or at < best:
                    best = at
                break
        return best

    def next_nominal(self, after: float) -> float | None:
        """The first nominal fire time strictly after ``after``, windows and bounds applied."""
        t = after
        if self.start is not None and t < self.start - _TINY:
            t = self.start - _TINY
        for _ in range(_SEARCH_LIMIT):
            candidate = self._base_next(t)
            if candidate is None or (self.end is not None and candidate > self.end):
                return None
            if self.window is None or self.window.contains(
                datetime.fromtimestamp(candidate, self.tz)
            ):
                return candidate
            opening = self.window.next_open(candidate, self.tz)
            if opening is None:
                return None
            t = max(candidate, opening - _TINY)
        return None

    # -- actual fire times -----------------------------------------------------

    def delay(self, nominal: float) -> float:
        """The jitter added to ``nominal``: reproducible, in ``[0, jitter)``."""
        if not self.jitter:
            return 0.0
        return self.jitter * _jitter_fraction(self.seed, nominal)

    def next_fire(self, after: float) -> tuple[float, float] | None:
        """``(nominal, actual)`` of the first fire whose actual time is strictly after ``after``."""
        t = after - self.jitter if self.jitter else after
        for _ in range(_SEARCH_LIMIT):
            nominal = self.next_nominal(t)
            if nominal is None:
                return None
            actual = nominal + self.delay(nominal)
            if actual > after:
                return nominal, actual
            t = nominal
        return None

    def fire_times(self, start: float, end: float) -> Iterator[tuple[float, float]]:
        """Every ``(nominal, actual)`` with ``start < actual <= end``, in order."""
        t = start
        while True:
            fire = self.next_fire(t)
            if fire is None or fire[1] > end:
                return
            yield fire
            t = fire[1]

    def upcoming(self, after: float, count: int) -> list[float]:
        """The next ``count`` actual fire times (fewer if the schedule ends)."""
        out: list[float] = []
        t = after
        while len(out) < count:
            fire = self.next_fire(t)
            if fire is None:
                break
            out.append(fire[1])
            t = fire[1]
        return out


def _is_repeat(fire: datetime) -> bool:
    """True when ``fire`` (fold 1) is the second occurrence of an ambiguous wall time."""
    first = fire.replace(fold=0)
    return first.utcoffset() != fire.utcoffset()
