"""JSON read from the NATS server: the one place the cluster decodes it, within stated bounds.

Records, leases, firings, shot requests and events come from a server any
client of the site can write to, so their bytes are outside input: at most
``limit`` bytes, nested no deeper than Python's stack allows (``json``
raises ``RecursionError`` past that, which no caller expects of bad input),
and no ``NaN``, ``Infinity`` or ``1e999`` (JSON has no such numbers; Python's reader would take
them and a time that is not finite poisons every comparison after it).
Every refusal is a ``PayloadError``, a ``ValueError``, which each reader
already counts or reports as a message that is not what cuecap wrote.
Pure: no I/O.
"""

from __future__ import annotations

import json
import math
from typing import Any

from engine.errors import CuecapError

MAX_PAYLOAD = 1024 * 1024  # bytes: nats-server's default max_payload, the most one message holds


class PayloadError(CuecapError, ValueError):
    """Bytes from the NATS server that are not JSON cuecap can take; says why."""


def _no_constant(name: str) -> Any:
    raise PayloadError(f"{name}, which is no JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 is valid JSON, read as infinity
        raise PayloadError(f"{text[:20]}, a number too big to be finite")
    return value


def loads(data: bytes | None, *, limit: int = MAX_PAYLOAD, empty: bytes = b"{}") -> Any:
    """``data`` decoded (``empty`` when there are none); ``PayloadError`` says what is wrong."""
    if not data:
        data = empty
    if len(data) > limit:
        raise PayloadError(f"{len(data)} bytes (at most {limit})")
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise PayloadError("nested deeper than cuecap reads") from None
    except PayloadError:
        raise
    except ValueError as exc:
        raise PayloadError(f"not JSON: {exc}") from None
