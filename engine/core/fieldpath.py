"""Field paths into a schema's messages: ``active_capacitance.calibrated``, ``x.y[0]``.

Detectors and conditions name fields as text in rule files. A path is checked
against the schema's protobuf descriptor once, when the rule file loads, so a typo is an
error with its column rather than a detector that silently never fires. The
parsed path then reads values off a decoded frame with plain ``getattr`` calls.

Values follow proto3: an unset message reads as its defaults, but an index past
the end of a repeated field is *missing* (``MISSING``), because there is no
value to compare against.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final, TypeAlias

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from engine.core.frame import Frame
from engine.core.schema import PURPLEDROP, Schema
from engine.errors import CuecapError, UnknownName, UnsupportedType

_NUMERIC_CPP = frozenset(
    {
        FieldDescriptor.CPPTYPE_INT32,
        FieldDescriptor.CPPTYPE_INT64,
        FieldDescriptor.CPPTYPE_UINT32,
        FieldDescriptor.CPPTYPE_UINT64,
        FieldDescriptor.CPPTYPE_FLOAT,
        FieldDescriptor.CPPTYPE_DOUBLE,
        FieldDescriptor.CPPTYPE_BOOL,
        FieldDescriptor.CPPTYPE_ENUM,
    }
)
_TYPE_NAMES = {
    FieldDescriptor.CPPTYPE_INT32: "int",
    FieldDescriptor.CPPTYPE_INT64: "int",
    FieldDescriptor.CPPTYPE_UINT32: "uint",
    FieldDescriptor.CPPTYPE_UINT64: "uint",
    FieldDescriptor.CPPTYPE_FLOAT: "float",
    FieldDescriptor.CPPTYPE_DOUBLE: "double",
    FieldDescriptor.CPPTYPE_BOOL: "bool",
    FieldDescriptor.CPPTYPE_ENUM: "enum",
    FieldDescriptor.CPPTYPE_STRING: "string",
    FieldDescriptor.CPPTYPE_MESSAGE: "message",
}
_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\s*-?\d+\s*\])*)")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()
"""The value of a path whose index runs past the end of a repeated field."""

FieldValue: TypeAlias = Any
"""A value read off a decoded message by a path from a rule file: a number, bool,
string, bytes, message, repeated container or ``MISSING``. Which one depends on
the path, known only when the rule file loads, so its static type is open."""


class FieldPathError(CuecapError, ValueError):
    """A path that does not name a field; ``column`` is 1-based within the path."""

    def __init__(self, message: str, path: str, column: int | None = None) -> None:
        self.path = path
        self.column = column
        self.reason = message
        where = f" at column {column}" if column is not None else ""
        super().__init__(f"field {path!r}{where}: {message}")


def descriptor_of(message: type[Message]) -> Descriptor:
    """A message class's descriptor, as the Python ``Descriptor`` type.

    The stubs also allow the C (upb) descriptor class, which passes this
    ``isinstance`` check at run time; the check is what tells the type checker.
    """
    descriptor = message.DESCRIPTOR
    if not isinstance(descriptor, Descriptor):
        raise UnsupportedType(f"{message.__name__}.DESCRIPTOR is a {type(descriptor).__name__}")
    return descriptor


def message_descriptor(field: FieldDescriptor) -> Descriptor:
    """The descriptor of a message field's type; ``TypeError`` for a scalar field."""
    descriptor = field.message_type
    if descriptor is None:
        raise UnsupportedType(f"field {field.name!r} is a scalar, not a message")
    return descriptor


def kind_descriptor(kind: str, schema: Schema = PURPLEDROP) -> Descriptor:
    """The message descriptor a kind's fields start at (``"active_capacitance"``...)."""
    descriptor = schema.kinds[kind]
    if descriptor is None:
        raise UnknownName(f"{kind} is a plain value of {schema.name}, not a message")
    return descriptor


def type_name(field: FieldDescriptor, repeated: bool | None = None) -> str:
    """A short human name of a field's type, for error messages."""
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        base = message_descriptor(field).name
    elif field.type == FieldDescriptor.TYPE_BYTES:
        base = "bytes"
    else:
        base = _TYPE_NAMES.get(field.cpp_type, "value")
    is_repeated = field.is_repeated if repeated is None else repeated
    return f"repeated {base}" if is_repeated else base


def field_names(descriptor: Descriptor) -> str:
    return ", ".join(f.name for f in descriptor.fields)


def unknown_field_message(owner: str, descriptor: Descriptor, name: str) -> str:
    return f"{owner} has no field {name!r}; its fields are: {field_names(descriptor)}"


def unknown_kind_message(name: str, schema: Schema = PURPLEDROP) -> str:
    of = "" if schema is PURPLEDROP else f" of {schema.name}"
    return (
        f"{name!r} is not a message type{of}; known types: {', '.join(sorted(schema.kind_names))}"
    )


@dataclass(frozen=True, slots=True)
class _Step:
    name: str
    indexes: tuple[int, ...]


class FieldPath:
    """A checked path from a frame's message type down to one field.

    ``kind`` is the message type the path starts at; ``leaf`` the descriptor of
    the last field; ``repeated`` whether the value read is a whole repeated
    field (the last step has no index); ``numeric`` whether it is a single
    number (or bool), which thresholds and steps need.
    """

    __slots__ = (
        "_plain",
        "_steps",
        "get",
        "kind",
        "leaf",
        "numeric",
        "repeated",
        "schema",
        "text",
    )

    def __init__(self, text: str, schema: Schema = PURPLEDROP) -> None:
        self.text = text
        self.schema = schema
        stripped = text.strip()
        if not stripped:
            raise FieldPathError("empty path; write e.g. active_capacitance.calibrated", text)
        offset = text.index(stripped[0])
        pieces = stripped.split(".")
        steps: list[_Step] = []
        columns: list[int] = []
        column = offset + 1
        for piece in pieces:
            match = _STEP.fullmatch(piece)
            if match is None:
                what = "an empty name" if not piece else f"{piece!r} is not a name"
                raise FieldPathError(
                    f"{what}; a path is names joined by '.', with optional [index]", text, column
                )
            indexes = tuple(int(i) for i in _INDEX.findall(match.group(2)))
            steps.append(_Step(match.group(1), indexes))
            columns.append(column)
            column += len(piece) + 1
        head = steps[0]
        if head.name not in schema.kinds:
            raise FieldPathError(unknown_kind_message(head.name, schema), text, columns[0])
        if head.indexes:
            raise FieldPathError(
                f"{head.name} is a message, not a list; it cannot be indexed", text, columns[0]
            )
        self.kind = head.name
        descriptor: Descriptor | None = schema.kinds[head.name]
        if descriptor is None:
            raise FieldPathError(
                f"{head.name} is a plain value of {schema.name}, not a message with fields",
                text,
                columns[0],
            )
        owner = head.name
        leaf: FieldDescriptor | None = None
        repeated = False
        for step, col in zip(steps[1:], columns[1:], strict=True):
            if descriptor is None:
                assert leaf is not None
                raise FieldPathError(
                    f"{owner} is a {type_name(leaf, repeated)}; it has no field {step.name!r}",
                    text,
                    col,
                )
            if repeated:
                raise FieldPathError(
                    f"{owner} is a list; pick one element with [index] before .{step.name}",
                    text,
                    col,
                )
            field = descriptor.fields_by_name.get(step.name)
            if field is None:
                raise FieldPathError(unknown_field_message(owner, descriptor, step.name), text, col)
            leaf = field
            repeated = field.is_repeated
            if step.indexes:
                if not repeated:
                    raise FieldPathError(
                        f"{step.name} is a {type_name(field)}, not a list; it cannot be indexed",
                        text,
                        col,
                    )
                if len(step.indexes) > 1:
                    raise FieldPathError(
                        f"{step.name} is a list of single values; use one [index]", text, col
                    )
                repeated = False
            descriptor = (
                field.message_type if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE else None
            )
            owner = step.name
        self._steps = tuple(steps[1:])
        if not any(step.indexes for step in self._steps) and self._steps:
            # No index anywhere: one C-level attrgetter walks the whole path.
            self._plain: attrgetter[FieldValue] | None = attrgetter(
                ".".join(step.name for step in self._steps)
            )
            self.get: Callable[[Message], FieldValue] = self._plain
        else:
            self._plain = None
            self.get = self._walk
        self.leaf = leaf
        self.repeated = repeated
        self.numeric = leaf is not None and not repeated and leaf.cpp_type in _NUMERIC_CPP

    def __repr__(self) -> str:
        return f"FieldPath({self.text!r})"

    def __str__(self) -> str:
        return self.text

    @property
    def type_name(self) -> str:
        if self.leaf is None:
            return kind_descriptor(self.kind, self.schema).name
        return type_name(self.leaf, self.repeated)

    def _walk(self, message: Message) -> FieldValue:
        """The value at this path in ``message`` (a message of type ``kind``), or ``MISSING``.

        ``get`` is this, or an ``attrgetter`` doing the same when no step is indexed.
        """
        value: FieldValue = message
        for step in self._steps:
            value = getattr(value, step.name)
            for index in step.indexes:
                try:
                    value = value[index]
                except IndexError:
                    return MISSING
        return value

    def read(self, frame: Frame) -> FieldValue:
        """The value in ``frame``; ``MISSING`` if the frame is of another type or undecodable."""
        if frame.kind != self.kind:
            return MISSING
        try:
            message = frame.message
        except ValueError:
            return MISSING
        if message is None:  # a frame without a kind, ruled out above
            return MISSING
        return self.get(message)


def comparable(value: FieldValue) -> object:
    """A value that compares by content and holds no reference to its frame.

    Repeated fields become tuples, messages their deterministic serialization,
    so ``electrode_state.drive_groups`` compares by value.
    """
    if isinstance(value, Message):
        return value.SerializeToString(deterministic=True)
    if isinstance(value, (int, float, str, bytes, bool)) or value is MISSING or value is None:
        return value
    try:
        items = list(value)
    except TypeError:
        return value
    return tuple(comparable(item) for item in items)


_IMAGE_PATHS: dict[int, FieldPath | None] = {}


def image_path(schema: Schema) -> FieldPath | None:
    """The checked path of the camera image bytes in ``schema`` (``image.image_data``...)."""
    key = id(schema)
    if key not in _IMAGE_PATHS:
        _IMAGE_PATHS[key] = FieldPath(schema.image, schema) if schema.image else None
    return _IMAGE_PATHS[key]


def image_bytes(frame: Frame) -> bytes | None:
    """The camera image a frame carries, or None when it is not an image frame.

    Raises ``FrameDecodeError`` when it should be one and does not decode.
    """
    path = image_path(frame.schema)
    if path is None or frame.kind != path.kind:
        return None
    message = frame.message
    if message is None:
        return None
    value = path.get(message)
    return bytes(value) if isinstance(value, bytes) else None
