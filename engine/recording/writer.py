"""Writing recordings: records, index and manifest, flushed often enough to survive a crash.

Writes go to buffered files on the calling thread: a buffered write is a memory
copy, far cheaper than a hand-off to another thread per message, and the
kernel page cache absorbs the flush. The buffers are flushed whenever
``flush_interval`` seconds of receive time have passed and on ``maybe_flush``
(which live adapters call on a timer), so a crash loses less than a second.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections import Counter
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from engine.core.frame import Frame, Gap, peek_kind
from engine.core.schema import PURPLEDROP, Schema
from engine.recording.format import (
    INDEX_ENTRY,
    INDEX_MAGIC,
    MANIFEST_FORMAT,
    RECORD_HEADER,
    RecordingError,
    companion_paths,
)

_BUFFER = 1 << 20
_pack_header = RECORD_HEADER.pack
_pack_entry = INDEX_ENTRY.pack


@dataclass
class Manifest:
    """What a recording holds and why; stored as JSON beside it."""

    path: str
    recorder: str = ""
    source: str = ""
    opened_at: float | None = None
    closed_at: float | None = None
    first_time: float | None = None
    last_time: float | None = None
    records: int = 0
    bytes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    start_reason: str = ""
    stop_reason: str = ""
    first_activity: float | None = None
    last_activity: float | None = None
    gaps: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = MANIFEST_FORMAT
    # The records' schema (engine.core.schema.Schema.to_dict); None: PurpleDrop's.
    schema: dict[str, Any] | None = None

    def to_json(self) -> str:
        # The fields as they are (no deep copy): a segment writes this twice at least.
        fields = vars(self)
        if fields["schema"] is None:  # PurpleDrop's manifests stay as they always were
            fields = {k: v for k, v in fields.items() if k != "schema"}
        return json.dumps(fields, indent=2, default=_jsonable)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _jsonable(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class RecordingWriter:
    """Appends frames to a new recording; ``close`` finishes the manifest.

    Every error is a ``RecordingError`` naming the file; what was written
    before it stays on disk and readable.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        recorder: str = "",
        source: str = "",
        opened_at: float | None = None,
        start_reason: str = "",
        flush_interval: float = 0.5,
        manifest_interval: float = 5.0,
        extra: dict[str, Any] | None = None,
        schema: Schema = PURPLEDROP,
    ) -> None:
        self.path, self.index_path, self.manifest_path = companion_paths(path)
        self.schema = schema
        self.flush_interval = flush_interval
        self.manifest_interval = manifest_interval
        self._manifest = Manifest(
            path=str(self.path),
            recorder=recorder,
            source=source,
            opened_at=opened_at,
            start_reason=start_reason,
            extra=dict(extra or {}),
            schema=None if schema is PURPLEDROP else schema.to_dict(),
        )
        self._tag_counts = [0] * 257  # by first byte; 256: empty records
        # Another schema's kinds are not in the first byte: counted by kind as written.
        self._kind_counts: Counter[str] | None = None
        if schema is not PURPLEDROP:
            self._kind_counts = Counter()
            self.write = self._write_counted  # type: ignore[method-assign]
        self._offset = 0
        self._last_time: float | None = None
        self._last_flush = opened_at
        self._last_manifest = opened_at
        # Receive time from which the next write flushes; -inf: the first write sets it up.
        self._flush_at = -math.inf
        self.closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(
                f"{self.path}: cannot create folder {self.path.parent}: {exc.strerror or exc}"
            ) from None
        try:
            self._data = open(self.path, "xb", buffering=_BUFFER)  # noqa: SIM115
        except FileExistsError:
            raise RecordingError(
                f"{self.path}: already exists; refusing to overwrite a recording"
            ) from None
        except OSError as exc:
            raise RecordingError(
                f"{self.path}: cannot create recording: {exc.strerror or exc}"
            ) from None
        try:
            self._index = open(self.index_path, "wb", buffering=_BUFFER)  # noqa: SIM115
            self._index.write(INDEX_MAGIC)
            self._write_data = self._data.write
            self._write_index = self._index.write
            self._write_manifest()
        except OSError as exc:
            self._data.close()
            raise RecordingError(
                f"{self.index_path}: cannot create index: {exc.strerror or exc}"
            ) from None

    # -- writing ---------------------------------------------------------------

    def write(self, raw: bytes, time: float) -> None:
        """Append one record received at ``time``."""
        n = len(raw)
        offset = self._offset
        try:
            write_data = self._write_data
            write_data(_pack_header(n))
            write_data(raw)
            self._write_index(_pack_entry(offset, time))
        except struct.error:
            raise RecordingError(f"{self.path}: a {n}-byte message does not fit a record") from None
        except OSError as exc:
            raise RecordingError(f"{self.path}: write failed: {exc.strerror or exc}") from None
        self._offset = offset + 4 + n
        self._last_time = time
        # Counted by first byte; records, counts and times reach the manifest when it is
        # written: the hot path stays cheap.
        self._tag_counts[raw[0] if n else 256] += 1
        if time >= self._flush_at:
            self._due(time)

    def _due(self, time: float) -> None:
        """The first record, or ``flush_interval`` has passed since the last flush."""
        m = self._manifest
        if m.first_time is None:
            m.first_time = time
            if self._last_flush is None:
                self._last_flush = self._last_manifest = time
            self._flush_at = self._last_flush + self.flush_interval
            if time < self._flush_at:
                return
        self.flush(time)

    def _write_counted(self, raw: bytes, time: float) -> None:
        RecordingWriter.write(self, raw, time)
        assert self._kind_counts is not None
        self._kind_counts[self.schema.kind_of_raw(raw) or "unknown"] += 1

    def write_frame(self, frame: Frame) -> None:
        if self._kind_counts is None:
            self.write(frame.raw, frame.time)
        else:
            RecordingWriter.write(self, frame.raw, frame.time)
            self._kind_counts[frame.kind or "unknown"] += 1

    def note_gap(self, gap: Gap) -> None:
        """Record that the source was disconnected between ``gap.start`` and ``gap.end``."""
        self._manifest.gaps.append(
            {
                "start": gap.start,
                "end": gap.end,
                "seconds": round(gap.duration, 6),
                "reason": gap.reason,
            }
        )

    def note_activity(self, time: float) -> None:
        m = self._manifest
        if m.first_activity is None:
            m.first_activity = time
        m.last_activity = time

    @property
    def records(self) -> int:
        return sum(self._tag_counts)

    @property
    def bytes(self) -> int:
        """Bytes of the recording file so far, record headers included."""
        return self._offset

    # -- durability ------------------------------------------------------------

    def flush(self, now: float | None = None) -> None:
        """Push buffered records and index entries to the OS."""
        try:
            self._data.flush()
            self._index.flush()
        except OSError as exc:
            raise RecordingError(f"{self.path}: flush failed: {exc.strerror or exc}") from None
        if now is not None:
            self._last_flush = now
            if self._last_time is not None:  # before the first record, write() sets it up
                self._flush_at = now + self.flush_interval
            if self._last_manifest is None or now - self._last_manifest >= self.manifest_interval:
                self._last_manifest = now
                self._write_manifest()

    def maybe_flush(self, now: float) -> None:
        """Flush if ``flush_interval`` has passed since the last flush (timer hook)."""
        if self._last_flush is None or now - self._last_flush >= self.flush_interval:
            self.flush(now)

    def _write_manifest(self) -> None:
        m = self._sync()
        counts: Counter[str] = Counter()
        if self._kind_counts is not None:
            counts = self._kind_counts
        else:
            for tag, count in enumerate(self._tag_counts):
                if count:
                    counts[(peek_kind(bytes((tag,))) if tag < 256 else None) or "unknown"] += count
        m.counts = dict(counts)
        try:
            _atomic_write_text(self.manifest_path, m.to_json())
        except OSError as exc:
            raise RecordingError(
                f"{self.manifest_path}: cannot write manifest: {exc.strerror or exc}"
            ) from None

    @property
    def manifest(self) -> Manifest:
        """What the recording holds so far (and, once closed, why it ended)."""
        return self._sync()

    def _sync(self) -> Manifest:
        """The manifest with the counters the hot path keeps elsewhere."""
        m = self._manifest
        m.records = sum(self._tag_counts)
        m.bytes = self._offset
        m.last_time = self._last_time
        return m

    def close(self, stop_reason: str = "", closed_at: float | None = None) -> Manifest:
        """Flush everything and write the final manifest. Safe to call twice."""
        if self.closed:
            return self._manifest
        self.closed = True
        m = self._sync()
        m.stop_reason = stop_reason
        m.closed_at = closed_at if closed_at is not None else m.last_time
        m.complete = True
        errors: list[str] = []
        for f in (self._data, self._index):
            try:
                f.close()
            except OSError as exc:
                errors.append(f"{f.name}: {exc.strerror or exc}")
        try:
            self._write_manifest()
        except RecordingError as exc:
            errors.append(str(exc))
        if errors:
            raise RecordingError("; ".join(errors))
        return m

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(stop_reason="error" if exc_info[0] else "closed")
