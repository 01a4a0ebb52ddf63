"""``log dump``: one JSON object per record, for ``jq``, scripts and eyes.

The fields are protobuf's own JSON mapping (``MessageToDict``) with the
``.proto`` field names and every field shown, zeros included, so that a row
always has the same keys for its type. Camera bytes are replaced by their
size: a dump is for reading, ``log frames`` is for images.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TextIO

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from engine.core.fieldpath import image_path
from engine.core.frame import Frame, FrameDecodeError
from engine.logtools.inputs import LogInput, what


def frame_row(frame: Frame) -> dict[str, object]:
    """The dump row of one frame: receive time, seq, type, timestamp and the message's fields.

    A record that is not a message of the recording's schema (or names no
    kind) gets ``type: null`` and an ``error``. Image bytes are shown by size.
    """
    row: dict[str, object] = {
        "time": frame.time,
        "seq": frame.seq,
        "type": frame.kind,
        "size": frame.size,
    }
    try:
        event = frame.event
    except FrameDecodeError as exc:
        row["error"] = str(exc)
        return row
    schema = frame.schema
    kind = schema.kind_of(event)
    if kind is None:
        row["type"] = None
        row["error"] = f"record {frame.seq} ({frame.size} bytes) is not {what(schema)}"
        return row
    row["type"] = kind
    row["timestamp"] = frame.timestamp
    message = schema.message_of(event, kind)
    if not isinstance(message, Message):  # a oneof member that is a plain value
        row[kind] = message if not isinstance(message, bytes) else {"size": len(message)}
        return row
    fields = MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )
    image = image_path(schema)
    if image is not None and image.kind == kind and len(image.text.split(".")) == 2:
        name = image.text.split(".")[1]
        fields[name] = {"size": len(getattr(message, name))}
    row[kind] = fields
    return row


def dump_rows(log: LogInput, frames: Iterable[Frame]) -> Iterator[dict[str, object]]:
    """Rows for ``frames``, counting the records that do not decode in ``log.invalid``."""
    for frame in frames:
        row = frame_row(frame)
        if "error" in row and frame.kind is not None:
            log.note_invalid(frame)
        yield row


def write_jsonl(rows: Iterable[dict[str, object]], out: TextIO) -> int:
    """Write rows as JSON lines; returns how many."""
    n = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for row in rows:
        out.write(dumps(row))
        out.write("\n")
        n += 1
    return n
