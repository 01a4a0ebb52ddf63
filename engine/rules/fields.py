"""Field types of rule files that are about time: offsets, times of day, weekdays, zones.

Each parses the forms people write by hand (``-2s``, ``"08:30"``, ``mon-fri``,
``Europe/Berlin``) and fails with a sentence that shows an accepted form.
Plain durations and sizes are ``engine.core.units``'s, shared with every other config.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from typing import Annotated, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from engine.core.units import check_seconds, parse_duration

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES: dict[str, tuple[int, ...]] = {
    "weekdays": (0, 1, 2, 3, 4),
    "weekends": (5, 6),
    "daily": (0, 1, 2, 3, 4, 5, 6),
    "everyday": (0, 1, 2, 3, 4, 5, 6),
}
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME_OF_DAY = re.compile(r"\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*\Z")


def parse_offset(value: object) -> object:
    """Signed seconds: ``-2s`` is two seconds before the event, ``1.5s`` or ``+1.5s`` after."""
    if isinstance(value, str):
        text = value.strip()
        sign = 1.0
        if text.startswith(("-", "+")):
            sign = -1.0 if text[0] == "-" else 1.0
            text = text[1:]
        return sign * float(parse_duration(text))
    return parse_duration(value)


@overload
def parse_time_of_day(value: str) -> int: ...
@overload
def parse_time_of_day(value: object) -> object: ...
def parse_time_of_day(value: object) -> object:
    """Seconds after midnight from ``"HH:MM"`` or ``"HH:MM:SS"`` (``"24:00"`` is the day's end)."""
    if isinstance(value, str):
        match = _TIME_OF_DAY.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a time of day; write it as 'HH:MM' or 'HH:MM:SS'")
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if (hour, minute, second) == (24, 0, 0):
            return 86400
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"{value!r} is not a time of day (00:00 to 23:59:59, or 24:00)")
        return hour * 3600 + minute * 60 + second
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time of day; quote it and write 'HH:MM'")
    return value


def _day(word: str) -> int:
    key = word.strip().lower()
    if key in WEEKDAYS:
        return WEEKDAYS.index(key)
    if key in _FULL_DAYS:
        return _FULL_DAYS.index(key)
    raise ValueError(
        f"{word.strip()!r} is not a day; use mon, tue, wed, thu, fri, sat, sun, "
        "ranges like mon-fri, or weekdays/weekends"
    )


def parse_days(value: object) -> object:
    """Weekday numbers (Monday 0) from ``mon-fri``, ``[sat, sun]``, ``weekdays``, ``"mon,wed"``."""
    if isinstance(value, str):
        items: list[object] = [p for p in re.split(r"[,\s]+", value) if p]
    elif isinstance(value, list):
        items = value
    else:
        return value
    days: set[int] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{item!r} is not a day name")
        key = item.strip().lower()
        if key in _DAY_ALIASES:
            days.update(_DAY_ALIASES[key])
        elif "-" in key:
            first, _, last = key.partition("-")
            a, b = _day(first), _day(last)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        else:
            days.add(_day(key))
    if not days:
        raise ValueError("no days given; name at least one, e.g. mon-fri")
    return sorted(days)


def parse_timezone(value: object) -> object:
    """An IANA zone name, checked now (``Europe/Berlin``, ``UTC``; ``local`` is this machine's)."""
    if isinstance(value, str) and value != "local":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like 'Europe/Berlin' or 'UTC'"
            ) from None
    return value


def zone(name: str | None) -> tzinfo:
    """The zone a rule file names; None or ``local`` is this machine's zone."""
    if name is None or name == "local":
        from tzlocal import get_localzone

        return get_localzone()
    return ZoneInfo(name)


Offset = Annotated[
    float,
    BeforeValidator(parse_offset),
    AfterValidator(check_seconds),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*[-+]?"}]}),
]
"""Signed seconds; ``-2s`` is before the event."""
TimeOfDay = Annotated[
    int,
    BeforeValidator(parse_time_of_day),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}:\d{2}(:\d{2})?$"}),
]
"""Seconds after midnight, written ``"HH:MM"``."""
Days = Annotated[
    list[int],
    BeforeValidator(parse_days),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "examples": ["mon-fri", "weekends", "mon,wed,fri"]},
                {"type": "array", "items": {"type": "string", "enum": list(WEEKDAYS)}},
            ]
        }
    ),
]
"""Weekday numbers, Monday 0."""
TimeZoneName = Annotated[
    str,
    BeforeValidator(parse_timezone),
    WithJsonSchema({"type": "string", "examples": ["local", "UTC", "Europe/Berlin"]}),
]
