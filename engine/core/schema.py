"""Schemas: which protobuf message a stream carries, and what its "kind" is.

Detectors, conditions and log tools dispatch on a frame's *kind*: a short name
that says what the message is about. A schema says how to find it:

- ``oneof``: the set member of the message's top-level ``oneof`` (PurpleDrop's
  ``PurpleDropEvent.msg``: ``active_capacitance``, ``image``...). Field paths
  start at the member: ``active_capacitance.calibrated``.
- ``field``: the value name of an enum field of the message (``kind: status``
  on a message whose ``status`` is ``IDLE``, ``RUNNING``...). Every kind has
  the whole message's fields: ``RUNNING.temperature``.
- ``message``: the message's own name, one kind for every frame
  (``CompressedImage.format``).

A schema is made from a serialized ``FileDescriptorSet`` (what ``protoc
--descriptor_set_out --include_imports`` writes and what MCAP embeds), so it
travels with a recording as bytes. PurpleDrop's built-in schema (``PURPLEDROP``)
keeps its compiled message class and the one-byte kind peek the hot path uses.

This module is pure: it reads no files (``engine.schema_files`` does).
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.message import DecodeError, Message

from engine.errors import CuecapError
from engine.proto.purpledrop_pb2 import PurpleDropEvent

if TYPE_CHECKING:
    from engine.core.frame import Frame

SCHEMA_FORMAT = "cuecap-schema/1"
TIMESTAMP_TYPE = "google.protobuf.Timestamp"
# A descriptor set larger than this is refused: schemas are kilobytes, not megabytes.
MAX_DESCRIPTOR_SET = 16 * 1024 * 1024


class SchemaError(CuecapError, ValueError):
    """A schema that cannot be used: the message says which and why."""


@dataclass(frozen=True, slots=True)
class SchemaSpec:
    """What a rule file says about a source's schema (paths as written; loaded by
    ``engine.schema_files.load_schema``)."""

    message: str
    descriptor_set: str | None = None
    proto: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    kind: str | None = None
    oneof: str | None = None
    image: str | None = None
    timestamp: str | None = None


class KindRule(enum.Enum):
    """How a frame's kind is found."""

    ONEOF = "oneof"
    FIELD = "field"
    MESSAGE = "message"


def _is_synthetic(oneof: Any) -> bool:
    """proto3 ``optional`` makes a one-member oneof named ``_field``: not a real choice."""
    fields = oneof.fields
    return len(fields) == 1 and oneof.name == f"_{fields[0].name}"


def _is_timestamp(field: FieldDescriptor) -> bool:
    """A ``google.protobuf.Timestamp``, or a look-alike (PurpleDrop's own) with seconds and nanos."""
    message_type = field.message_type
    if message_type is None or field.is_repeated:
        return False
    names = message_type.fields_by_name
    return message_type.full_name == TIMESTAMP_TYPE or ("seconds" in names and "nanos" in names)


def _file_set(descriptor: Any) -> descriptor_pb2.FileDescriptorSet:
    """The file of ``descriptor`` and every file it imports, dependencies first."""
    out = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(file: FileDescriptor) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dep in file.dependencies:
            add(dep)
        proto = out.file.add()
        file.CopyToProto(proto)

    add(descriptor.file)
    return out


def _pool_from(files: descriptor_pb2.FileDescriptorSet) -> descriptor_pool.DescriptorPool:
    """A fresh pool holding the files, added dependencies first whatever their order."""
    pool = descriptor_pool.DescriptorPool()
    by_name = {f.name: f for f in files.file}
    added: set[str] = set()

    def add(name: str, chain: tuple[str, ...]) -> None:
        if name in added:
            return
        if name in chain:
            raise SchemaError(f"import cycle: {' -> '.join((*chain, name))}")
        proto = by_name.get(name)
        if proto is None:
            raise SchemaError(
                f"{chain[-1] if chain else '?'} imports {name!r}, which the descriptor set lacks "
                "(write it with protoc --include_imports)"
            )
        for dep in proto.dependency:
            add(dep, (*chain, name))
        try:
            pool.Add(proto)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"{name}: {exc}") from None
        added.add(name)

    for name in by_name:
        add(name, ())
    return pool


def _message_names(files: descriptor_pb2.FileDescriptorSet) -> list[str]:
    names: list[str] = []

    def walk(prefix: str, messages: Any) -> None:
        for m in messages:
            full = f"{prefix}{m.name}"
            names.append(full)
            walk(f"{full}.", m.nested_type)

    for f in files.file:
        walk(f"{f.package}." if f.package else "", f.message_type)
    return names


class Schema:
    """One message type and its kind rule; ``kinds`` maps each kind to where its fields start.

    ``kinds[k]`` is the descriptor field paths of kind ``k`` walk from (None for
    a oneof member that is a plain value, not a message). ``timestamped`` holds
    the kinds whose message has a ``google.protobuf.Timestamp`` field called
    ``timestamp`` (or the field named by ``timestamp``). ``image`` is the
    default camera field path (kind first), or None.
    """

    def __init__(
        self,
        files: descriptor_pb2.FileDescriptorSet,
        message: str,
        *,
        kind: str | None = None,
        oneof: str | None = None,
        image: str | None = None,
        timestamp: str | None = None,
        origin: str = "",
        message_class: type[Message] | None = None,
    ) -> None:
        self.files = files
        self.name = message
        self.kind_field = kind
        self.oneof_name = oneof
        self.origin = origin
        if message_class is None:
            pool = _pool_from(files)
            try:
                root = pool.FindMessageTypeByName(message)
            except KeyError:
                known = _message_names(files)
                listing = ", ".join(known[:40]) + (" ..." if len(known) > 40 else "")
                raise SchemaError(
                    f"no message {message!r} in the schema; its messages are: {listing or 'none'}"
                ) from None
            message_class = message_factory.GetMessageClass(root)
        self.message_class = message_class
        self.descriptor: Any = message_class.DESCRIPTOR  # upb's Descriptor, or the stubs' one
        self.decode: Callable[[bytes], Message] = message_class.FromString
        self.kinds: dict[str, Descriptor | None] = {}
        self._kind_path: tuple[str, ...] = ()
        self._enum_names: dict[int, str] = {}
        self.rule = self._choose_rule(kind, oneof)
        self.kind_names: frozenset[str] = frozenset(self.kinds)
        ts_field = timestamp or "timestamp"
        self.timestamp_field = ts_field
        self.timestamped: frozenset[str] = frozenset(
            k
            for k, d in self.kinds.items()
            if d is not None
            and (f := d.fields_by_name.get(ts_field)) is not None
            and _is_timestamp(f)
        )
        if timestamp is not None and not self.timestamped:
            raise SchemaError(
                f"timestamp: no kind of {message} has a timestamp message field {timestamp!r} "
                f"({TIMESTAMP_TYPE}, or any message with seconds and nanos)"
            )
        self.image = image if image is not None else self._default_image()
        self.frame_class: type[Frame] | None = None  # set by engine.core.frame.frame_class
        self._empty: dict[str, Message] = {}

    # -- the kind rule ----------------------------------------------------------

    def _choose_rule(self, kind: str | None, oneof: str | None) -> KindRule:
        d = self.descriptor
        if kind is not None:
            if oneof is not None:
                raise SchemaError("give kind or oneof, not both")
            return self._field_rule(kind)
        real = [o for o in d.oneofs if not _is_synthetic(o)]
        if oneof is not None:
            chosen = d.oneofs_by_name.get(oneof)
            if chosen is None:
                names = ", ".join(o.name for o in real) or "none"
                raise SchemaError(f"{d.full_name} has no oneof {oneof!r}; its oneofs: {names}")
            real = [chosen]
        elif len(real) > 1:
            names = ", ".join(o.name for o in real)
            raise SchemaError(
                f"{d.full_name} has several oneofs ({names}); name the one that says the kind "
                "with oneof:"
            )
        if real:
            for f in real[0].fields:
                self.kinds[f.name] = (
                    f.message_type if f.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE else None
                )
            self.oneof_name = real[0].name
            return KindRule.ONEOF
        self.kinds[d.name] = d
        return KindRule.MESSAGE

    def _field_rule(self, path: str) -> KindRule:
        current: Descriptor = self.descriptor
        steps = path.split(".")
        field: FieldDescriptor | None = None
        for i, step in enumerate(steps):
            field = current.fields_by_name.get(step)
            if field is None:
                names = ", ".join(f.name for f in current.fields)
                raise SchemaError(
                    f"kind: {current.name} has no field {step!r}; its fields: {names}"
                )
            if field.is_repeated:
                raise SchemaError(f"kind: {step} is a list; the kind field is one enum value")
            if i < len(steps) - 1:
                if field.cpp_type != FieldDescriptor.CPPTYPE_MESSAGE:
                    raise SchemaError(
                        f"kind: {step} is not a message; it has no field {steps[i + 1]!r}"
                    )
                assert field.message_type is not None
                current = field.message_type
        assert field is not None
        if field.cpp_type != FieldDescriptor.CPPTYPE_ENUM:
            raise SchemaError(
                f"kind: {path} is not an enum; the kind field must be an enum, so that every kind "
                "is known when rules load"
            )
        self._kind_path = tuple(steps)
        assert field.enum_type is not None
        for value in field.enum_type.values:
            self._enum_names[value.number] = value.name
            self.kinds[value.name] = self.descriptor
        return KindRule.FIELD

    def _default_image(self) -> str | None:
        """``kind.field`` of the first bytes field called data/image_data in a kind, if any."""
        for kind, d in self.kinds.items():
            if d is None:
                continue
            for name in ("image_data", "data"):
                f = d.fields_by_name.get(name)
                if f is not None and f.type == FieldDescriptor.TYPE_BYTES and not f.is_repeated:
                    if self.rule is KindRule.FIELD:
                        return None  # every kind has it: the rule must say which
                    return f"{kind}.{name}"
        return None

    # -- reading frames -----------------------------------------------------------

    @property
    def builtin(self) -> bool:
        """True for PurpleDrop's compiled schema (first-byte kind peek)."""
        return self is PURPLEDROP

    def kind_of(self, event: Message) -> str | None:
        """The kind of a decoded message (None: no oneof member set)."""
        rule = self.rule
        if rule is KindRule.MESSAGE:
            return str(self.descriptor.name)
        if rule is KindRule.ONEOF:
            member: str | None = event.WhichOneof(self.oneof_name)
            return member
        value: Any = event
        for step in self._kind_path:
            value = getattr(value, step)
        return self._enum_names.get(value, str(value))

    def kind_of_raw(self, raw: bytes) -> str | None:
        """The kind of serialized bytes; None when they do not decode or name no kind."""
        if self.rule is KindRule.MESSAGE:
            return str(self.descriptor.name)
        try:
            return self.kind_of(self.decode(raw))
        except DecodeError:
            return None

    def message_of(self, event: Message, kind: str) -> Any:
        """The part of ``event`` that field paths of ``kind`` start at."""
        if self.rule is KindRule.ONEOF:
            return getattr(event, kind)
        return event

    def empty(self, kind: str) -> Message:
        """A message of ``kind`` with every field at its default."""
        message = self._empty.get(kind)
        if message is None:
            message = self._empty[kind] = self.message_of(self.message_class(), kind)
        return message

    def timestamp_of(self, message: Any, kind: str | None) -> float | None:
        """The message's own time in epoch seconds, for kinds that carry one."""
        if kind not in self.timestamped:
            return None
        name = self.timestamp_field
        if not message.HasField(name):
            return None
        stamp = getattr(message, name)
        return float(stamp.seconds + stamp.nanos * 1e-9)

    # -- travelling ---------------------------------------------------------------

    def descriptor_set(self) -> bytes:
        """The serialized ``FileDescriptorSet`` (what MCAP embeds as a protobuf schema)."""
        return bytes(self.files.SerializeToString(deterministic=True))

    def to_dict(self) -> dict[str, Any]:
        """What a recording's manifest keeps, so tools decode it without being told."""
        out: dict[str, Any] = {"format": SCHEMA_FORMAT, "message": self.name}
        if self.kind_field is not None:
            out["kind"] = self.kind_field
        elif self.rule is KindRule.ONEOF:
            out["oneof"] = self.oneof_name
        if self.image is not None:
            out["image"] = self.image
        if self.timestamp_field != "timestamp":
            out["timestamp"] = self.timestamp_field
        out["descriptor_set"] = base64.b64encode(self.descriptor_set()).decode("ascii")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "") -> Schema:
        if data.get("format") != SCHEMA_FORMAT:
            raise SchemaError(
                f"{origin}: schema format {data.get('format')!r} is not {SCHEMA_FORMAT}"
            )
        try:
            blob = base64.b64decode(str(data["descriptor_set"]), validate=True)
            message = str(data["message"])
        except (KeyError, ValueError) as exc:
            raise SchemaError(f"{origin}: unreadable schema: {exc}") from None
        return from_descriptor_set(
            blob,
            message,
            kind=data.get("kind"),
            oneof=data.get("oneof"),
            image=data.get("image"),
            timestamp=data.get("timestamp"),
            origin=origin,
        )

    def same_as(self, other: Schema) -> bool:
        return self is other or (
            self.name == other.name
            and self.rule is other.rule
            and self.kind_field == other.kind_field
            and self.oneof_name == other.oneof_name
            and self.descriptor_set() == other.descriptor_set()
        )

    # A schema is immutable: copies are itself, pickles rebuild it from its bytes.
    def __copy__(self) -> Schema:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Schema:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        if self is PURPLEDROP:
            return (_purpledrop, ())
        return (Schema.from_dict, (self.to_dict(), self.origin))

    def __repr__(self) -> str:
        return f"Schema({self.name!r}, rule={self.rule.value}, kinds={len(self.kinds)})"


def from_descriptor_set(
    blob: bytes,
    message: str,
    *,
    kind: str | None = None,
    oneof: str | None = None,
    image: str | None = None,
    timestamp: str | None = None,
    origin: str = "",
) -> Schema:
    """A schema from serialized ``FileDescriptorSet`` bytes; PurpleDrop's gives ``PURPLEDROP``."""
    if len(blob) > MAX_DESCRIPTOR_SET:
        raise SchemaError(f"{origin}: descriptor set of {len(blob)} bytes is over 16 MiB")
    files = descriptor_pb2.FileDescriptorSet()
    try:
        files.ParseFromString(blob)
    except DecodeError as exc:
        raise SchemaError(f"{origin}: not a protobuf descriptor set: {exc}") from None
    if not files.file:
        raise SchemaError(f"{origin}: the descriptor set holds no .proto file")
    schema = Schema(
        files, message, kind=kind, oneof=oneof, image=image, timestamp=timestamp, origin=origin
    )
    if PURPLEDROP.same_as(schema) and image in (None, PURPLEDROP.image) and timestamp is None:
        return PURPLEDROP
    return schema


def _purpledrop() -> Schema:
    return PURPLEDROP


def for_message_class(cls: type[Message], **options: Any) -> Schema:
    """A schema for a compiled message class (e.g. one of a published schema package)."""
    return Schema(_file_set(cls.DESCRIPTOR), cls.DESCRIPTOR.full_name, message_class=cls, **options)


PURPLEDROP: Schema = Schema(
    _file_set(PurpleDropEvent.DESCRIPTOR),
    PurpleDropEvent.DESCRIPTOR.full_name,
    origin="built-in",
    message_class=PurpleDropEvent,
)
"""PurpleDrop's ``PurpleDropEvent``, compiled in: the default of every source and file."""
