"""Durations and sizes as people write them: ``"500ms"``, ``"2min"``, ``"64MiB"``, ``"10MB"``.

One parser for every place that takes a duration or a size (rule files,
camera settings, command-line options), so a form accepted in one place is
accepted in all of them. Pure: text in, a number or a ``ValueError`` out.
The annotated types plug the parsers into pydantic models and publish a JSON
Schema that lets editors accept both numbers and text.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, overload

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

# The largest duration and size anything takes (stated in docs/rules.md): beyond them
# a typo's number would overflow dates ("every: 1e308") or 64-bit counters.
MAX_SECONDS = 10 * 365 * 86400.0
MAX_BYTES = 1 << 62  # what 64-bit counters and file offsets hold

_DURATION = re.compile(
    r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?\d+)?)\s*(ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)?\s*\Z"
)
_DURATION_UNITS = {
    None: 1.0,
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}
_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]i?[bB]?|[bB])?\s*\Z")
_SIZE_POWERS = {"k": 1, "m": 2, "g": 3, "t": 4}


@overload
def parse_duration(value: str) -> float: ...
@overload
def parse_duration(value: object) -> object: ...
def parse_duration(value: object) -> object:
    """Seconds from a number or text like ``"500ms"``, ``"2s"``, ``"1.5min"``, ``"1h"``.

    Anything that is neither text nor a bool passes through unchanged, so the
    model's own type and bounds checks report it.
    """
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '2s', not true/false")
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(
                f"{value!r} is not a duration; write seconds (2.5) or e.g. '500ms', '2s', '1min', '1h'"
            )
        return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    return value


@overload
def parse_size(value: str) -> int: ...
@overload
def parse_size(value: object) -> object: ...
def parse_size(value: object) -> object:
    """Bytes from a number or text like ``"64MiB"``, ``"10MB"``, ``"512k"`` (k = 1000, Ki = 1024).

    Like ``parse_duration``, other values pass through for the model to check.
    """
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or text like '64MiB', not true/false")
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match is None:
            raise ValueError(
                f"{value!r} is not a size; write bytes (1000000) or e.g. '512KiB', '64MiB', '1GB'"
            )
        number = float(match.group(1))
        unit = match.group(2) or ""
        if unit.lower() in ("", "b"):
            return int(number)
        base = 1024 if "i" in unit.lower() else 1000
        return int(number * base ** _SIZE_POWERS[unit[0].lower()])
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def check_seconds(value: float) -> float:
    """A duration or offset no longer than ``MAX_SECONDS`` either way (ten years)."""
    if math.isfinite(value) and abs(value) > MAX_SECONDS:
        raise ValueError(f"{value:g} s is more than ten years ({MAX_SECONDS:g} s), the longest")
    return value


def check_bytes(value: int) -> int:
    if value > MAX_BYTES:
        raise ValueError(f"{value} bytes is more than 4 EiB ({MAX_BYTES}), the largest size")
    return value


_NUMBER_OR_TEXT = WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}]})
Duration = Annotated[
    float, BeforeValidator(parse_duration), AfterValidator(check_seconds), _NUMBER_OR_TEXT
]
"""Seconds; rule files may write ``2.5`` or ``"2.5s"``, ``"500ms"``, ``"1min"``."""
ByteSize = Annotated[int, BeforeValidator(parse_size), AfterValidator(check_bytes), _NUMBER_OR_TEXT]
"""Bytes; rule files may write ``1000000`` or ``"1MB"``, ``"64MiB"``."""
