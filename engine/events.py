"""The engine's events: one typed model that every consumer publishes unchanged.

Recorders, the shot service, sources and the engine itself report what
happened as one of the frozen dataclasses below. The rules react to them
(``when: [{type: event, event: recording.started}]``), the CLI summary counts
them, and the adapters that face the outside world (the status page and its
API, MQTT, NATS) publish their JSON form as it is, so a consumer written
against one of them reads the others too.

The JSON form is stable and versioned::

    {"v": 1, "kind": "recording.started", "time": 1733070000.25,
     "recorder": "bursts", "source": "board", "path": "...", ...}

``v`` changes only when a field changes meaning or disappears; new fields may
be added within a version, so readers ignore fields they do not know.
``Event.from_json`` reads any kind back into its class.

Producers get an ``Emit`` callable, not a bus object, so the pure parts stay
free of wiring and tests can pass ``list.append``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeAlias

from engine.errors import CuecapError

SCHEMA_VERSION = 1


class EventKind(enum.StrEnum):
    """Every kind of event, by the name rule files and JSON use."""

    ENGINE_STARTED = "engine.started"
    ENGINE_STOPPING = "engine.stopping"
    RELOAD_APPLIED = "reload.applied"
    RELOAD_REFUSED = "reload.refused"
    SOURCE_CONNECTED = "source.connected"
    SOURCE_GAP = "source.gap"
    SOURCE_CLOSED = "source.closed"
    RECORDING_STARTED = "recording.started"
    RECORDING_STOPPED = "recording.stopped"
    RECORDING_ERROR = "recording.error"
    SHOT_QUEUED = "shot.queued"
    SHOT_SAVING = "shot.saving"
    SHOT_SUCCESS = "shot.success"
    SHOT_ERROR = "shot.error"
    RULE_FIRED = "rule.fired"
    SEND_SUCCESS = "send.success"
    SEND_ERROR = "send.error"


# Kinds a rule may react to. ``rule.fired`` is not among them (a rule reacting to
# firings could feed itself), nor the per-try shot kinds (one firing per shot is what
# rules want: its final status).
TRIGGER_KINDS: tuple[EventKind, ...] = (
    EventKind.ENGINE_STARTED,
    EventKind.ENGINE_STOPPING,
    EventKind.RELOAD_APPLIED,
    EventKind.RELOAD_REFUSED,
    EventKind.SOURCE_CONNECTED,
    EventKind.SOURCE_GAP,
    EventKind.SOURCE_CLOSED,
    EventKind.RECORDING_STARTED,
    EventKind.RECORDING_STOPPED,
    EventKind.RECORDING_ERROR,
    EventKind.SHOT_SUCCESS,
    EventKind.SHOT_ERROR,
    EventKind.SEND_SUCCESS,
    EventKind.SEND_ERROR,
)


class EventFormatError(CuecapError, ValueError):
    """A JSON form that is not an event of this version: what is wrong, by field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """What every event has: its kind (per class) and when it happened (engine clock)."""

    kind: ClassVar[EventKind]
    time: float

    @property
    def name(self) -> str:
        """The rule-file name of the kind (``recording.started``)."""
        return self.kind.value

    @property
    def data(self) -> Mapping[str, Any]:
        """The event's facts by name, for rule conditions and templates (``{path}``...).

        Shot events carry the fields of the firing that asked for them
        (``extra``); the event's own facts win over those of the same name.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "time":
                continue
            value = getattr(self, f.name)
            if f.name == "extra":
                out = {**value, **out}
            else:
                out[f.name] = value
        return out

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form: ``v``, ``kind``, ``time`` and the event's own fields."""
        out: dict[str, Any] = {"v": SCHEMA_VERSION, "kind": self.kind.value, "time": self.time}
        for f in dataclasses.fields(self):
            if f.name != "time":
                out[f.name] = _jsonable(getattr(self, f.name))
        return out

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any]) -> Self:
        """This kind of event from a mapping of facts; names it does not have are left out.

        Producers that gather facts as they go (a recorder's segment, a shot's
        outcome) build their event with it; ``time`` must be among the facts.
        """
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))
        return cls(**{k: v for k, v in facts.items() if k in names})

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> AnyEvent:
        """The event a JSON form describes; unknown fields are ignored, as the format promises."""
        if not isinstance(data, Mapping):
            raise EventFormatError(f"an event is a JSON object, not {type(data).__name__}")
        version = data.get("v")
        if version != SCHEMA_VERSION:
            raise EventFormatError(f"event version {version!r} is not {SCHEMA_VERSION}")
        kind = data.get("kind")
        cls = _BY_KIND.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise EventFormatError(f"unknown event kind {kind!r}")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                values[f.name] = _read_field(cls, f.name, data[f.name])
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise EventFormatError(f"{kind} event without its {f.name!r} field")
        time = values.get("time")
        if not isinstance(time, int | float) or isinstance(time, bool) or not math.isfinite(time):
            raise EventFormatError(f"{kind} event: 'time' must be a number, not {time!r}")
        event: AnyEvent = cls(**values)
        return event


_FIELD_NAMES: dict[type[Event], frozenset[str]] = {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity: a reader would refuse the whole event
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # paths, datetimes in user fields: their text


def _read_field(cls: type[Event], name: str, value: Any) -> Any:
    """Tuples come back as tuples and mappings stay mappings: the classes' own types."""
    if isinstance(value, list):
        if name == "changes":
            raise EventFormatError(f"{cls.kind} event: 'changes' must be an object")
        return tuple(value)
    if name == "changes":
        if not isinstance(value, Mapping) or not all(
            isinstance(v, list) and all(isinstance(n, str) for n in v) for v in value.values()
        ):
            raise EventFormatError(f"{cls.kind} event: 'changes' maps kinds to lists of names")
        return {str(k): tuple(v) for k, v in value.items()}
    return value


# -- the engine ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineStarted(Event):
    kind = EventKind.ENGINE_STARTED


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineStopping(Event):
    kind = EventKind.ENGINE_STOPPING
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadApplied(Event):
    """Rule files changed and the new rules run; ``changes``: names by kind (``rules``...)."""

    kind = EventKind.RELOAD_APPLIED
    changes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadRefused(Event):
    """Rule files changed but do not load; the old rules keep running."""

    kind = EventKind.RELOAD_REFUSED
    errors: tuple[str, ...]


# -- sources ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceConnected(Event):
    kind = EventKind.SOURCE_CONNECTED
    source: str
    reconnect: int = 0  # 0 for the first connection


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceGap(Event):
    """A source was away from ``start`` to ``end``: nothing can have been received then."""

    kind = EventKind.SOURCE_GAP
    source: str
    start: float
    end: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceClosed(Event):
    """A source ended (end of a replay, gave up reconnecting, or the engine stopping)."""

    kind = EventKind.SOURCE_CLOSED
    source: str
    reason: str


# -- recorders -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingStarted(Event):
    kind = EventKind.RECORDING_STARTED
    recorder: str
    source: str
    path: str
    reason: str
    activity: float | None = None  # receive time of the activity that started it
    recording: int = 0  # this recorder's recordings so far
    seq: int = 0  # this recorder's segments so far (rotation makes several per recording)
    part: int = 0  # the segment's number within its recording


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingStopped(Event):
    """A segment is complete on disk; its counts are what the file holds."""

    kind = EventKind.RECORDING_STOPPED
    recorder: str
    source: str
    path: str
    reason: str
    start_reason: str = ""
    records: int = 0
    bytes: int = 0
    first_time: float | None = None
    last_time: float | None = None
    first_activity: float | None = None
    last_activity: float | None = None
    recording: int | None = None
    seq: int | None = None
    part: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingErrored(Event):
    kind = EventKind.RECORDING_ERROR
    recorder: str
    error: str
    source: str = ""
    path: str | None = None
    retry_after: float | None = None  # seconds before it tries to record again


# -- shots -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _ShotEvent(Event):
    camera: str
    task: str
    path: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # the asking firing's fields


@dataclass(frozen=True, slots=True, kw_only=True)
class ShotQueued(_ShotEvent):
    kind = EventKind.SHOT_QUEUED


@dataclass(frozen=True, slots=True, kw_only=True)
class ShotSaving(_ShotEvent):
    kind = EventKind.SHOT_SAVING
    tries: int = 1  # this try's number


@dataclass(frozen=True, slots=True, kw_only=True)
class ShotSaved(_ShotEvent):
    kind = EventKind.SHOT_SUCCESS
    tries: int = 1
    shot_time: float | None = None  # the moment the image shows
    live: bool = True
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ShotErrored(_ShotEvent):
    kind = EventKind.SHOT_ERROR
    reason: str
    tries: int = 0
    shot_time: float | None = None
    live: bool = True


# -- rules -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleFired(Event):
    """A rule fired; ``trigger`` says by what (schedule, message, event) and ``detail`` why."""

    kind = EventKind.RULE_FIRED
    rule: str
    trigger: str
    event: str
    source: str = ""
    count: int = 0
    detail: str = ""


# -- notifications ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _SendEvent(Event):
    target: str  # the target's name in the rule files
    rule: str  # the rule whose send action it was
    camera: str = ""  # the shot's camera, if a shot went with it
    path: str | None = None  # the shot's file, if any
    tries: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class SendSucceeded(_SendEvent):
    """A target confirmed a message (and its shot, if any)."""

    kind = EventKind.SEND_SUCCESS
    deleted: bool = False  # the shot was deleted after the send (delete_after_send)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendErrored(_SendEvent):
    """A message was given up on: every try failed, or it was refused before the first."""

    kind = EventKind.SEND_ERROR
    reason: str


AnyEvent: TypeAlias = (
    EngineStarted
    | EngineStopping
    | ReloadApplied
    | ReloadRefused
    | SourceConnected
    | SourceGap
    | SourceClosed
    | RecordingStarted
    | RecordingStopped
    | RecordingErrored
    | ShotQueued
    | ShotSaving
    | ShotSaved
    | ShotErrored
    | RuleFired
    | SendSucceeded
    | SendErrored
)

EVENT_TYPES: tuple[type[Event], ...] = (
    EngineStarted,
    EngineStopping,
    ReloadApplied,
    ReloadRefused,
    SourceConnected,
    SourceGap,
    SourceClosed,
    RecordingStarted,
    RecordingStopped,
    RecordingErrored,
    ShotQueued,
    ShotSaving,
    ShotSaved,
    ShotErrored,
    RuleFired,
    SendSucceeded,
    SendErrored,
)
_BY_KIND: dict[str, type[AnyEvent]] = {cls.kind.value: cls for cls in EVENT_TYPES}  # type: ignore[misc]

Emit = Callable[[Event], None]


def discard(event: Event) -> None:
    """An ``Emit`` for producers nobody listens to."""
