"""Writing recordings: records, index and manifest, flushed often enough to survive a crash.

Writes go to buffered files on the calling thread: a buffered write is a memory
copy, far cheaper than a hand-off to another thread per message, and the
kernel page cache absorbs the flush. The buffers are flushed whenever
``flush_interval`` seconds of receive time have passed and on ``maybe_flush``
(which live adapters call on a timer), so a crash loses less than a second.

A write that fails (a full disk, a file-size limit) must not leave figures
that claim more than the disk holds. The writer remembers the last point at
which both files were flushed whole, and the receive times written since; on
failure ``close`` looks at what actually reached the disk past that point,
cuts a partial last record, makes the index hold exactly the complete records
(never more), and finishes the manifest with the real counts and the error.
Writing the manifest on a full disk falls back to overwriting the existing
one in place (its blocks are already allocated); temporary files are never
left behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
from collections import Counter
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from engine.core.clock import due
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
# Bytes of index entries held until their records are flushed, at most (65536
# entries): a long flush_interval cannot grow memory.
_MAX_PENDING = INDEX_ENTRY.size << 16
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

    def note_gap(self, gap: Gap) -> None:
        """The source was away from ``gap.start`` to ``gap.end`` (every format keeps these)."""
        self.gaps.append(
            {
                "start": gap.start,
                "end": gap.end,
                "seconds": round(gap.duration, 6),
                "reason": gap.reason,
            }
        )

    def note_activity(self, time: float) -> None:
        if self.first_activity is None:
            self.first_activity = time
        self.last_activity = time

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
    """``text`` to ``path`` through a temporary beside it; on failure the temporary is gone.

    On a full disk the temporary cannot be written; an existing ``path`` is
    then overwritten in place, which needs no new blocks when the new text is
    not much longer (a manifest's size hardly changes).
    """
    tmp = path.with_name(path.name + ".tmp")
    data = text.encode("utf-8")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if not path.exists():
            raise
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()


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
        self.failed: str | None = None  # the first write or flush error, once one happened
        # The last point where data and index were both flushed whole, and what was
        # written since: what a failure has to check against the disk.
        # offset, counts by first byte, last receive time
        self._durable: tuple[int, list[int], float | None] = (0, list(self._tag_counts), None)
        # Index entries written after that point, kept here until the data they point at is
        # flushed: the index file never gets ahead of the data.
        self._pending = bytearray()
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
            self._index.flush()
            self._write_data = self._data.write
            self._write_manifest()
        except OSError as exc:
            # Nothing was recorded yet: leave no empty files (they would also push the
            # next attempt's name to "-2").
            for f in (self._data, getattr(self, "_index", None)):
                if f is not None:
                    with contextlib.suppress(OSError):
                        f.close()
            for path in (self.path, self.index_path, self.manifest_path):
                with contextlib.suppress(OSError):
                    path.unlink()
            what = str(exc) if isinstance(exc, RecordingError) else (exc.strerror or str(exc))
            raise RecordingError(f"{self.path}: cannot create recording: {what}") from None

    # -- writing ---------------------------------------------------------------

    def write(self, raw: bytes, time: float) -> None:
        """Append one record received at ``time``."""
        n = len(raw)
        offset = self._offset
        try:
            write_data = self._write_data
            write_data(_pack_header(n))
            write_data(raw)
        except struct.error:
            raise RecordingError(f"{self.path}: a {n}-byte message does not fit a record") from None
        except OSError as exc:
            raise self._failure(f"{self.path}: write failed: {exc.strerror or exc}") from None
        pending = self._pending
        pending += _pack_entry(offset, time)
        self._offset = offset + 4 + n
        self._last_time = time
        # Counted by first byte; records, counts and times reach the manifest when it is
        # written: the hot path stays cheap.
        self._tag_counts[raw[0] if n else 256] += 1
        if time >= self._flush_at or len(pending) >= _MAX_PENDING:
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
        self._manifest.note_gap(gap)

    def note_activity(self, time: float) -> None:
        self._manifest.note_activity(time)

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
        if self.failed is not None:
            raise RecordingError(self.failed)
        try:
            self._data.flush()
            self._index.write(self._pending)
            self._index.flush()
        except OSError as exc:
            raise self._failure(f"{self.path}: flush failed: {exc.strerror or exc}") from None
        self._durable = (self._offset, list(self._tag_counts), self._last_time)
        self._pending.clear()
        if now is not None:
            self._last_flush = now
            if self._last_time is not None:  # before the first record, write() sets it up
                self._flush_at = now + self.flush_interval
            if due(self._last_manifest, now, self.manifest_interval):
                self._last_manifest = now
                self._write_manifest()

    def maybe_flush(self, now: float) -> None:
        """Flush if ``flush_interval`` has passed since the last flush (timer hook)."""
        if due(self._last_flush, now, self.flush_interval):
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
        """Flush everything and write the final manifest. Safe to call twice.

        After a failed write or flush (or one met here) the manifest holds what
        the disk holds, not what was handed to ``write``; its ``extra["error"]``
        says what went wrong, and the error is raised once the files are finished.
        """
        if self.closed:
            return self._manifest
        self.closed = True
        # Errors new here are raised; one ``write``/``flush`` already raised is not again.
        errors: list[str] = []
        if self.failed is None:
            try:
                self.flush()  # the data first, then the index entries that point into it
            except OSError as exc:
                errors.append(str(exc))
        for f in (self._data, self._index):
            try:
                f.close()
            except OSError as exc:
                errors.append(f"{f.name}: {exc.strerror or exc}")
        if errors or self.failed is not None:
            try:
                self._salvage()
            except OSError as exc:
                errors.append(f"{self.path}: cannot check what reached the disk: {exc}")
        m = self._sync()
        m.stop_reason = stop_reason
        m.closed_at = closed_at if closed_at is not None else m.last_time
        m.complete = True
        first = self.failed or (errors[0] if errors else None)
        if first is not None:
            m.extra.setdefault("error", first)
        try:
            self._write_manifest()
        except RecordingError as exc:
            errors.append(str(exc))
        if errors:
            raise RecordingError("; ".join(errors))
        return m

    def _failure(self, message: str) -> RecordingError:
        """Remember the first write error: from now on the figures must be checked."""
        if self.failed is None:
            self.failed = message
        return RecordingError(message)

    def _salvage(self) -> None:
        """Make the files and counters hold exactly the complete records on disk.

        Everything up to the last whole flush is known good; past it, the
        records that reached the disk complete are found by walking their
        lengths, a partial last one is cut off, and the index is rewritten to
        the same records (or left shorter, never longer, if even that fails).
        """
        start, counts, last_time = self._durable
        written = list(INDEX_ENTRY.iter_unpack(self._pending))  # (offset, time) since then
        size = os.path.getsize(self.path)
        kept: list[tuple[int, float]] = []
        end = start
        with open(self.path, "rb") as f:
            for offset, time in written:
                f.seek(offset)
                head = f.read(RECORD_HEADER.size + 1)
                if len(head) < RECORD_HEADER.size:
                    break
                (n,) = RECORD_HEADER.unpack_from(head)
                if offset + RECORD_HEADER.size + n > size:
                    break  # cut short: the rest of it never reached the disk
                counts[head[RECORD_HEADER.size] if n else 256] += 1
                kept.append((offset, time))
                end = offset + RECORD_HEADER.size + n
        if size > end:
            os.truncate(self.path, end)
        durable = len(INDEX_MAGIC) + (sum(counts) - len(kept)) * INDEX_ENTRY.size
        try:
            # A flush may have failed after part of the pending entries reached the index.
            os.truncate(self.index_path, durable)
            with open(self.index_path, "ab") as index:
                index.write(b"".join(_pack_entry(o, t) for o, t in kept))
        except OSError:
            with contextlib.suppress(OSError):  # shorter than the data is fine, longer never
                os.truncate(self.index_path, durable)
        self._pending.clear()
        self._tag_counts = counts
        self._offset = end
        self._last_time = kept[-1][1] if kept else last_time

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(stop_reason="error" if exc_info[0] else "closed")
