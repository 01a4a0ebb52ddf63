"""``log export``: the numeric fields of one message type as a CSV time series.

Columns: ``time`` (receive time), ``seq``, ``timestamp`` (the server's, when
the type has one), then every numeric field in ``.proto`` order. Repeated
fields become ``name_0``, ``name_1``...; repeated messages flatten per item
(``measurements_0_capacitance``, ``measurements_0_drop_present``...); bools
are 0/1; bytes become ``<name>_size``; strings are left out. A repeated field
that is shorter in some rows leaves those cells empty.

One streaming pass; the header, which depends on how long repeated fields
get, is written when it is known (see ``export_csv``). Values are the ones
``log dump`` shows: float32 fields are written in their shortest form that
reads back as the same float32, as protobuf's JSON mapping does.
"""

from __future__ import annotations

import csv
import json
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TextIO

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from engine.core.fieldpath import FieldValue, descriptor_of, message_descriptor
from engine.core.frame import Frame
from engine.logtools.errors import LogToolError
from engine.logtools.inputs import LogInput, Progress
from engine.logtools.timerange import EVERYTHING, TimeRange

_F = FieldDescriptor
_INTS = {
    _F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_UINT32, _F.TYPE_UINT64, _F.TYPE_SINT32,
    _F.TYPE_SINT64, _F.TYPE_FIXED32, _F.TYPE_FIXED64, _F.TYPE_SFIXED32, _F.TYPE_SFIXED64,
    _F.TYPE_ENUM,
}  # fmt: skip
_FLOAT32 = struct.Struct("<f")


_pack, _unpack = _FLOAT32.pack, _FLOAT32.unpack


def shortest_float32(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (0.1, not 0.10000000149).

    Most float32 values need 7 or 8 digits; 9 always suffice. A shorter
    decimal is further from the value, so if 7 digits miss, 6 miss too.
    """
    eight = float(f"{value:.8g}")
    if _unpack(_pack(eight))[0] != value:  # also NaN, which equals nothing
        return float(f"{value:.9g}")
    seven = float(f"{value:.7g}")
    if _unpack(_pack(seven))[0] != value:
        return eight
    six = float(f"{value:.6g}")
    return six if _unpack(_pack(six))[0] == value else seven


def _is_timestamp(field: FieldDescriptor) -> bool:
    return field.type == _F.TYPE_MESSAGE and message_descriptor(field).name == "Timestamp"


def _exported(field: FieldDescriptor) -> bool:
    """Whether a field yields columns: numbers, bools, bytes (as size), messages of those."""
    if field.type == _F.TYPE_STRING or _is_timestamp(field):
        return False
    if field.type == _F.TYPE_MESSAGE:
        return any(_exported(f) for f in message_descriptor(field).fields)
    return field.type in _INTS or field.type in (
        _F.TYPE_FLOAT,
        _F.TYPE_DOUBLE,
        _F.TYPE_BOOL,
        _F.TYPE_BYTES,
    )


Cell = float | int | str
"""What a CSV column holds for one message."""

_CONVERT: dict[int, Callable[[FieldValue], Cell]] = {
    _F.TYPE_FLOAT: shortest_float32,
    _F.TYPE_BOOL: int,
    _F.TYPE_BYTES: len,
}


@dataclass(frozen=True, slots=True)
class _Step:
    """How one exported field becomes columns (worked out once per message type)."""

    name: str
    column: str  # the column (stem) name: the field name, ``<name>_size`` for bytes
    repeated: bool
    message: Descriptor | None  # the nested message type, None for scalars
    convert: Callable[[FieldValue], Cell] | None
    deep: bool  # the nested message has repeated fields somewhere: measuring must descend


_PLANS: dict[str, tuple[_Step, ...]] = {}
_CLASS_PLANS: dict[type[Message], tuple[_Step, ...]] = {}


def _plan(descriptor: Descriptor) -> tuple[_Step, ...]:
    plan = _PLANS.get(descriptor.full_name)
    if plan is None:
        steps = []
        for field in descriptor.fields:
            if not _exported(field):
                continue
            nested = message_descriptor(field) if field.type == _F.TYPE_MESSAGE else None
            column = f"{field.name}_size" if field.type == _F.TYPE_BYTES else field.name
            deep = nested is not None and _has_repeated(nested)
            steps.append(
                _Step(field.name, column, field.is_repeated, nested, _CONVERT.get(field.type), deep)
            )
        plan = _PLANS[descriptor.full_name] = tuple(steps)
    return plan


def _message_plan(message: Message) -> tuple[_Step, ...]:
    """``_plan`` of a message's type, looked up by its class (once per message)."""
    cls = type(message)
    plan = _CLASS_PLANS.get(cls)
    if plan is None:
        plan = _CLASS_PLANS[cls] = _plan(descriptor_of(cls))
    return plan


def _has_repeated(descriptor: Descriptor) -> bool:
    return any(step.repeated or step.deep for step in _plan(descriptor))


def flatten(
    message: Message, prefix: str = "", out: dict[str, Cell] | None = None
) -> dict[str, Cell]:
    """The columns of one message: ``{column name: value}``, defaults included."""
    if out is None:
        out = {}
    for step in _message_plan(message):
        value = getattr(message, step.name)
        if step.message is not None:
            if step.repeated:
                for i, item in enumerate(value):
                    flatten(item, f"{prefix}{step.name}_{i}_", out)
            else:
                flatten(value, f"{prefix}{step.name}_", out)
        elif step.repeated:
            base = f"{prefix}{step.name}_"
            convert = step.convert
            if convert is None:
                for i, item in enumerate(value):
                    out[f"{base}{i}"] = item
            else:
                for i, item in enumerate(value):
                    out[f"{base}{i}"] = convert(item)
        else:
            out[prefix + step.column] = value if step.convert is None else step.convert(value)
    return out


def measure(
    message: Message, prefix: str = "", lengths: dict[str, int] | None = None
) -> dict[str, int]:
    """Longest length seen of each repeated field (keyed by column prefix), updated in place."""
    if lengths is None:
        lengths = {}
    for step in _message_plan(message):
        if not (step.repeated or step.deep):
            continue
        value = getattr(message, step.name)
        key = f"{prefix}{step.name}"
        if step.repeated:
            if len(value) > lengths.get(key, 0):
                lengths[key] = len(value)
            if step.deep:
                for i, item in enumerate(value):
                    measure(item, f"{key}_{i}_", lengths)
        else:
            measure(value, f"{key}_", lengths)
    return lengths


def columns(descriptor: Descriptor, lengths: dict[str, int], prefix: str = "") -> list[str]:
    """Column names in ``.proto`` order for the repeated lengths seen."""
    out: list[str] = []
    for step in _plan(descriptor):
        key = f"{prefix}{step.name}"
        if step.message is not None:
            if step.repeated:
                for i in range(lengths.get(key, 0)):
                    out.extend(columns(step.message, lengths, f"{key}_{i}_"))
            else:
                out.extend(columns(step.message, lengths, f"{key}_"))
        elif step.repeated:
            out.extend(f"{key}_{i}" for i in range(lengths.get(key, 0)))
        else:
            out.append(prefix + step.column)
    return out


@dataclass
class ExportResult:
    rows: int
    columns: list[str]


def _row(frame: Frame, message: Message, has_timestamp: bool) -> dict[str, Cell]:
    row = flatten(message)
    row["time"] = frame.time
    row["seq"] = frame.seq
    if has_timestamp:
        stamp = frame.timestamp
        row["timestamp"] = "" if stamp is None else stamp
    return row


def export_csv(
    log: LogInput,
    kind: str,
    out: TextIO,
    time_range: TimeRange = EVERYTHING,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the ``kind`` messages of ``log`` in ``time_range`` as CSV to ``out``.

    The recording is read once. For types with repeated fields the columns
    are known only at the end, so their rows wait in a temporary file (as
    JSON lines: floats keep every bit) rather than in memory.
    """
    if kind not in log.schema.kinds:
        raise LogToolError(f"unknown message type {kind!r}")
    message_type = log.schema.kinds[kind]
    if message_type is None:
        raise LogToolError(f"{kind} is a plain value, not a message with fields to export")
    has_timestamp = "timestamp" in message_type.fields_by_name
    lengths: dict[str, int] = {}
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        rows: Iterator[dict[str, Cell]]
        if _has_repeated(message_type):
            dumps = json.JSONEncoder(separators=(",", ":")).encode
            for frame, message in log.messages(kind, time_range, progress):
                measure(message, "", lengths)
                spool.write(dumps(_row(frame, message, has_timestamp)))
                spool.write("\n")
            spool.seek(0)
            rows = map(json.loads, spool)
        else:
            rows = (_row(f, m, has_timestamp) for f, m in log.messages(kind, time_range, progress))
        header = [
            "time",
            "seq",
            *(["timestamp"] if has_timestamp else []),
            *columns(message_type, lengths),
        ]
        writer = csv.DictWriter(out, header, restval="", extrasaction="ignore", lineterminator="\n")
        written = 0
        for row in rows:
            if written == 0:
                writer.writeheader()
            writer.writerow(row)
            written += 1
    if written == 0:
        raise LogToolError(f"{log.path}: no {kind} messages in {log.describe(time_range)}")
    return ExportResult(written, header)
