"""Frames: one message of an event stream, exactly as received.

A frame keeps the raw bytes (what recordings store), the receive time from the
engine's clock, and a per-source sequence number. The message type is read off
the first byte without decoding; the full protobuf decode happens lazily and at
most once per frame, however many detectors, rules and writers look at it. A
recorder that only writes bytes never pays for decoding camera frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Final, Literal

from google.protobuf.message import DecodeError, Message

from engine.core.schema import PURPLEDROP, KindRule, Schema
from engine.errors import CuecapError
from engine.proto.purpledrop_pb2 import PurpleDropEvent, Timestamp

# Field number -> oneof member name of PurpleDropEvent.msg.
KINDS: dict[int, str] = {
    field.number: field.name for field in PurpleDropEvent.DESCRIPTOR.oneofs_by_name["msg"].fields
}
KIND_NAMES: frozenset[str] = frozenset(KINDS.values())
# Message types that carry a Timestamp field called ``timestamp``.
TIMESTAMPED_KINDS: frozenset[str] = frozenset(
    field.name
    for field in PurpleDropEvent.DESCRIPTOR.oneofs_by_name["msg"].fields
    if field.message_type is not None and "timestamp" in field.message_type.fields_by_name
)
_WIRE_LEN = 2  # length-delimited wire type: every oneof member is a message
# First byte of a frame -> kind, for the one-byte tags of fields 1..15.
_TAG_KIND: dict[int, str] = {(number << 3) | _WIRE_LEN: name for number, name in KINDS.items()}


_parse = PurpleDropEvent.FromString


class _Peek(Enum):
    PEEK = 0


_PEEK: Final = _Peek.PEEK  # Frame(kind=...) not given: read it off the first byte


def peek_kind(raw: bytes) -> str | None:
    """The message type of a serialized ``PurpleDropEvent``, from its first tag byte.

    Returns None for an empty event or bytes that do not start like one. This
    is a cheap classification, not a validation: ``Frame.event`` decodes fully.
    """
    if not raw:
        return None
    return _TAG_KIND.get(raw[0])


class FrameDecodeError(CuecapError, ValueError):
    """The bytes of a frame are not a valid ``PurpleDropEvent``."""


class Frame:
    """One received message: raw bytes, receive time, sequence number, source name.

    ``kind`` is read off the first byte when the frame is made (a source that
    already looked at that byte passes it in): detectors and rules dispatch on
    it for every frame, so it is a plain attribute, not a property.
    ``Frame`` itself is PurpleDrop's (kind peeked off the first byte); frames of
    another schema are of ``frame_class(schema)``, a subclass that decodes with it.
    """

    __slots__ = ("_event", "kind", "raw", "seq", "source", "time")
    schema: ClassVar[Schema] = PURPLEDROP

    def __init__(
        self,
        raw: bytes,
        time: float,
        seq: int,
        source: str = "",
        kind: str | Literal[_Peek.PEEK] | None = _PEEK,
    ) -> None:
        self.raw = raw
        self.time = time
        self.seq = seq
        self.source = source
        if kind is _PEEK:
            kind = _TAG_KIND.get(raw[0]) if raw else None
        self.kind: str | None = kind
        self._event: PurpleDropEvent | str | None = None  # the event, or why it does not decode

    def __repr__(self) -> str:
        return (
            f"Frame(seq={self.seq}, time={self.time:.6f}, kind={self.kind!r}, "
            f"size={len(self.raw)}, source={self.source!r})"
        )

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def event(self) -> PurpleDropEvent:
        """The decoded event (decoded once). Raises ``FrameDecodeError`` if invalid."""
        event = self._event
        if event is None:
            try:
                event = self._event = _parse(self.raw)
            except DecodeError as exc:
                self._event = (
                    f"frame {self.seq} ({len(self.raw)} bytes) is not a PurpleDropEvent: {exc}"
                )
                raise FrameDecodeError(self._event) from None
        elif type(event) is str:
            raise FrameDecodeError(event)
        # `type(...) is str` (cheaper than isinstance here) narrows no else: a PurpleDropEvent
        return event  # type: ignore[return-value]

    @property
    def valid(self) -> bool:
        """True when the bytes decode to a ``PurpleDropEvent`` with a message set."""
        try:
            event = self.event
        except FrameDecodeError:
            return False
        return event.WhichOneof("msg") is not None

    @property
    def message(self) -> Message | None:
        """The inner message (e.g. the ``ActiveCapacitance``), or None."""
        event = self._event
        if event is None:  # the usual first look: decoded here, a property call less
            try:
                event = self._event = _parse(self.raw)
            except DecodeError:
                event = self.event  # raises FrameDecodeError, and keeps why for next time
        elif type(event) is str:
            raise FrameDecodeError(event)
        kind = self.kind
        return getattr(event, kind) if kind is not None else None

    @property
    def timestamp(self) -> float | None:
        """The server's own timestamp in epoch seconds, for the types that carry one."""
        kind = self.kind
        if kind not in TIMESTAMPED_KINDS:
            return None
        message = self.message
        if message is None or not message.HasField("timestamp"):
            return None
        stamp = getattr(message, "timestamp", None)
        if not isinstance(stamp, Timestamp):  # every kind in TIMESTAMPED_KINDS has one
            return None
        return stamp.seconds + stamp.nanos * 1e-9


class SchemaFrame(Frame):
    """A frame of a schema other than PurpleDrop's: the kind comes from the schema's rule.

    The kind is found when the frame is made (a full decode for the oneof and
    field rules, kept for later looks; nothing for the message-name rule).
    """

    __slots__ = ()

    def __init__(
        self,
        raw: bytes,
        time: float,
        seq: int,
        source: str = "",
        kind: str | Literal[_Peek.PEEK] | None = _PEEK,
    ) -> None:
        self.raw = raw
        self.time = time
        self.seq = seq
        self.source = source
        self._event = None
        schema = self.schema
        if kind is _PEEK:
            kind = schema.descriptor.name if schema.rule is KindRule.MESSAGE else self._classify()
        self.kind = kind

    def _classify(self) -> str | None:
        try:
            return self.schema.kind_of(self.event)
        except FrameDecodeError:
            return None

    @property
    def event(self) -> Any:
        event = self._event
        if event is None:
            try:
                event = self._event = self.schema.decode(self.raw)  # type: ignore[assignment]
            except DecodeError as exc:
                self._event = (
                    f"frame {self.seq} ({len(self.raw)} bytes) is not a {self.schema.name}: {exc}"
                )
                raise FrameDecodeError(self._event) from None
        elif type(event) is str:
            raise FrameDecodeError(event)
        return event

    @property
    def valid(self) -> bool:
        try:
            event = self.event
        except FrameDecodeError:
            return False
        return self.schema.kind_of(event) is not None

    @property
    def message(self) -> Any:
        kind = self.kind
        event = self.event
        return self.schema.message_of(event, kind) if kind is not None else None

    @property
    def timestamp(self) -> float | None:
        kind = self.kind
        if kind not in self.schema.timestamped:
            return None
        return self.schema.timestamp_of(self.message, kind)


def frame_class(schema: Schema) -> type[Frame]:
    """The frame class of ``schema`` (``Frame`` itself for PurpleDrop's), made once."""
    if schema is PURPLEDROP:
        return Frame
    cls = schema.frame_class
    if cls is None:
        name = f"Frame_{schema.descriptor.name}"
        cls = schema.frame_class = type(name, (SchemaFrame,), {"__slots__": (), "schema": schema})
    return cls


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch where a source delivered nothing because it was disconnected.

    Sources yield it between frames after a reconnect, so recorders can note
    the hole in their manifest and rules can react to it.
    """

    source: str
    start: float
    end: float
    reason: str

    @property
    def duration(self) -> float:
        return self.end - self.start


StreamItem = Frame | Gap
