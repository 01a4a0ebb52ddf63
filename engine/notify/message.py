"""What a ``send`` action says: the message, its facts and its shot, decided without I/O.

A ``Notification`` is built once per send action and target-independent; each
target renders it its own way (an e-mail subject, a JSON body, a photo
caption). The default text says what happened in one line, so a rule may
send without writing a template: a stopped recording gets its summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_PAYLOAD_TEXT = 200  # characters of an MQTT payload quoted in a default message


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for one or more targets; ``path`` is the shot to attach, if any."""

    rule: str
    text: str
    values: Mapping[str, Any]  # template values ({rule}, {camera}, {time:%H:%M}...)
    facts: Mapping[str, Any] = field(default_factory=dict)  # the trigger's, for JSON bodies
    camera: str = ""
    path: str | None = None
    time: float = 0.0


def size_text(count: Any) -> str:
    if not isinstance(count, int | float):
        return "?"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def default_text(values: Mapping[str, Any]) -> str:
    """One line for what happened, from the template values of the firing."""
    event = str(values.get("event", ""))
    rule = values.get("rule", "")
    when = values.get("time")
    at = f" at {when:%H:%M:%S}" if isinstance(when, datetime) else ""
    if event == "recording.stopped":
        return (
            f"{values.get('recorder')}: recording stopped{at} ({values.get('reason')}): "
            f"{values.get('records')} messages, {size_text(values.get('bytes'))}, "
            f"{values.get('duration')} s in {values.get('path')}"
        )
    if event == "recording.started":
        return f"{values.get('recorder')}: recording started{at} ({values.get('reason')})"
    if event in ("shot.success", "shot.error"):
        outcome = (
            "shot saved" if event == "shot.success" else f"shot failed: {values.get('reason')}"
        )
        return f"{values.get('camera')}: {outcome}{at}"
    if values.get("trigger") == "mqtt":
        payload = str(values.get("payload", ""))
        if len(payload) > MAX_PAYLOAD_TEXT:
            payload = payload[:MAX_PAYLOAD_TEXT] + "..."
        return f"{rule}: {values.get('topic')}{at}: {payload}"
    camera = values.get("camera")
    subject = f" ({camera})" if camera else ""
    return f"{rule}: {event}{subject}{at}"


def jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    """Template values as JSON: datetimes as ISO text."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        else:
            out[key] = str(value)
    return out
