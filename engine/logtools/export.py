"""``log export``: the numeric fields of one message type as a CSV time series.

Columns: ``time`` (receive time), ``seq``, ``timestamp`` (the server's, when
the type has one), then every numeric field in ``.proto`` order. Repeated
fields become ``name_0``, ``name_1``...; repeated messages flatten per item
(``measurements_0_capacitance``, ``measurements_0_drop_present``...); bools
are 0/1; bytes become ``<name>_size``; strings are left out. A repeated field
that is shorter in some rows leaves those cells empty.

Two streaming passes: the first finds how long each repeated field gets (so
the header is known before the first row), the second writes. Values are the
ones ``log dump`` shows: float32 fields are written in their shortest form
that reads back as the same float32, as protobuf's JSON mapping does.
"""

from __future__ import annotations

import csv
import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from engine.core.frame import Frame, FrameDecodeError
from engine.logtools.errors import LogToolError
from engine.logtools.inputs import LogInput, Progress
from engine.logtools.timerange import EVERYTHING, TimeRange
from engine.proto.purpledrop_pb2 import PurpleDropEvent

_F = FieldDescriptor
_INTS = {
    _F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_UINT32, _F.TYPE_UINT64, _F.TYPE_SINT32,
    _F.TYPE_SINT64, _F.TYPE_FIXED32, _F.TYPE_FIXED64, _F.TYPE_SFIXED32, _F.TYPE_SFIXED64,
    _F.TYPE_ENUM,
}  # fmt: skip
_FLOAT32 = struct.Struct("<f")


def shortest_float32(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (0.1, not 0.10000000149)."""
    if not math.isfinite(value):
        return value
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if _FLOAT32.unpack(_FLOAT32.pack(candidate))[0] == value:
            return candidate
    return value


def _is_timestamp(field: FieldDescriptor) -> bool:
    return field.type == _F.TYPE_MESSAGE and field.message_type.name == "Timestamp"


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.type == _F.TYPE_FLOAT:
        return shortest_float32(value)
    if field.type == _F.TYPE_BOOL:
        return int(value)
    if field.type == _F.TYPE_BYTES:
        return len(value)
    return value


def _exported(field: FieldDescriptor) -> bool:
    """Whether a field yields columns: numbers, bools, bytes (as size), messages of those."""
    if field.type == _F.TYPE_STRING or _is_timestamp(field):
        return False
    if field.type == _F.TYPE_MESSAGE:
        return any(_exported(f) for f in field.message_type.fields)
    return field.type in _INTS or field.type in (
        _F.TYPE_FLOAT,
        _F.TYPE_DOUBLE,
        _F.TYPE_BOOL,
        _F.TYPE_BYTES,
    )


def _name(prefix: str, field: FieldDescriptor) -> str:
    name = f"{prefix}{field.name}"
    return f"{name}_size" if field.type == _F.TYPE_BYTES else name


def flatten(message: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """The columns of one message: ``{column name: value}``, defaults included."""
    if out is None:
        out = {}
    for field in message.DESCRIPTOR.fields:
        if not _exported(field):
            continue
        value = getattr(message, field.name)
        if field.type == _F.TYPE_MESSAGE:
            if field.is_repeated:
                for i, item in enumerate(value):
                    flatten(item, f"{prefix}{field.name}_{i}_", out)
            else:
                flatten(value, f"{prefix}{field.name}_", out)
        elif field.is_repeated:
            for i, item in enumerate(value):
                out[f"{prefix}{field.name}_{i}"] = _scalar(field, item)
        else:
            out[_name(prefix, field)] = _scalar(field, value)
    return out


def measure(
    message: Any, prefix: str = "", lengths: dict[str, int] | None = None
) -> dict[str, int]:
    """Longest length seen of each repeated field (keyed by column prefix), updated in place."""
    if lengths is None:
        lengths = {}
    for field in message.DESCRIPTOR.fields:
        if not _exported(field):
            continue
        value = getattr(message, field.name)
        key = f"{prefix}{field.name}"
        if field.is_repeated:
            if len(value) > lengths.get(key, 0):
                lengths[key] = len(value)
            if field.type == _F.TYPE_MESSAGE:
                for i, item in enumerate(value):
                    measure(item, f"{key}_{i}_", lengths)
        elif field.type == _F.TYPE_MESSAGE:
            measure(value, f"{key}_", lengths)
    return lengths


def columns(descriptor: Descriptor, lengths: dict[str, int], prefix: str = "") -> list[str]:
    """Column names in ``.proto`` order for the repeated lengths seen."""
    out: list[str] = []
    for field in descriptor.fields:
        if not _exported(field):
            continue
        key = f"{prefix}{field.name}"
        if field.type == _F.TYPE_MESSAGE:
            if field.is_repeated:
                for i in range(lengths.get(key, 0)):
                    out.extend(columns(field.message_type, lengths, f"{key}_{i}_"))
            else:
                out.extend(columns(field.message_type, lengths, f"{key}_"))
        elif field.is_repeated:
            out.extend(f"{key}_{i}" for i in range(lengths.get(key, 0)))
        else:
            out.append(_name(prefix, field))
    return out


@dataclass
class ExportResult:
    rows: int
    columns: list[str]


def _decoded(log: LogInput, frames: Iterable[Frame]) -> Iterator[tuple[Frame, Any]]:
    for frame in frames:
        try:
            message = frame.message
        except FrameDecodeError:
            log.note_invalid(frame)
            continue
        yield frame, message


def export_csv(
    log: LogInput,
    kind: str,
    out: TextIO,
    time_range: TimeRange = EVERYTHING,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the ``kind`` messages of ``log`` in ``time_range`` as CSV to ``out``.

    ``progress`` sees both passes: bytes read go from 0 to twice the file size.
    """
    field = PurpleDropEvent.DESCRIPTOR.fields_by_name.get(kind)
    if field is None or field.containing_oneof is None:
        raise LogToolError(f"unknown message type {kind!r}")
    size = log.size
    first_pass = progress
    second_pass = None if progress is None else (lambda n: progress(size + n))
    lengths: dict[str, int] = {}
    rows = 0
    for _, message in _decoded(log, log.frames([kind], time_range, first_pass)):
        measure(message, "", lengths)
        rows += 1
    if rows == 0:
        raise LogToolError(f"{log.path}: no {kind} messages in {time_range.describe()}")
    has_timestamp = "timestamp" in field.message_type.fields_by_name
    header = [
        "time",
        "seq",
        *(["timestamp"] if has_timestamp else []),
        *columns(field.message_type, lengths),
    ]
    writer = csv.DictWriter(out, header, restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    written = 0
    for frame, message in _decoded(log, log.frames([kind], time_range, second_pass)):
        row = flatten(message)
        row["time"] = frame.time
        row["seq"] = frame.seq
        if has_timestamp:
            stamp = frame.timestamp
            row["timestamp"] = "" if stamp is None else stamp
        writer.writerow(row)
        written += 1
    return ExportResult(written, header)
