"""Opening a recording for the log tools: refuse what is not one, stream what is.

Every tool starts here, so every tool gives the same answer for a missing
file, a folder, random bytes or a file cut short before its first record
ended. ``LogInput.frames`` streams (memory stays flat whatever the size),
filters by type without decoding and by receive time, reports progress in
bytes, and remembers what went wrong on the way (a truncated tail, records
that are not PurpleDrop events, an index that had to be estimated) so the
command can say it after doing its work.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from engine.core.fieldpath import MISSING, image_path
from engine.core.frame import Frame, FrameDecodeError
from engine.core.schema import PURPLEDROP, Schema
from engine.logtools.errors import LogToolError
from engine.logtools.timerange import EVERYTHING, TimeRange, TimeSpec, resolve_range
from engine.recording.format import (
    INDEX_ENTRY,
    INDEX_MAGIC,
    MANIFEST_FORMAT,
    RECORD_HEADER,
    RecordingError,
)
from engine.recording.mcap import McapRecordingReader
from engine.recording.reader import RecordingReader
from engine.recording.schema import is_mcap

Progress = Callable[[int], None]
"""Called with the number of bytes of the recording read so far."""

# Records looked at to decide whether a file is a recording at all.
SNIFF_RECORDS = 16
_PROGRESS_BYTES = 1 << 20  # report progress about once per MiB read


def check_kinds(
    kinds: Collection[str] | None, schema: Schema = PURPLEDROP
) -> frozenset[str] | None:
    """Validated message type names (``image``, ``active_capacitance``...), or None for all."""
    if not kinds:
        return None
    known = schema.kind_names
    unknown = sorted(set(kinds) - known)
    if unknown:
        raise LogToolError(
            f"unknown message type {', '.join(unknown)}; known types: {', '.join(sorted(known))}"
        )
    return frozenset(kinds)


def what(schema: Schema) -> str:
    """How a record of ``schema`` is called in messages: "a PurpleDrop event", "a lab.Event"."""
    return "a PurpleDrop event" if schema is PURPLEDROP else f"a {schema.name}"


class LogInput:
    """A recording opened by a log tool; iterate it with ``frames``."""

    def __init__(self, path: str | os.PathLike[str], *, schema_name: str | None = None) -> None:
        self.path = Path(path)
        self.mcap: McapRecordingReader | None = None
        self.reader: RecordingReader | McapRecordingReader
        try:
            if is_mcap(self.path):
                self.reader = self.mcap = McapRecordingReader(self.path, schema_name=schema_name)
            else:
                self.reader = RecordingReader(self.path)
        except RecordingError as exc:
            raise LogToolError(str(exc)) from None
        self.size = self.reader.size
        self.schema: Schema = self.reader.schema
        self.invalid = 0
        self.first_invalid: str | None = None
        self._first_time: float | None = None
        if self.mcap is not None:
            self._first_time = self.mcap.first_time()
            if self._first_time is None and not self.mcap.has_index:
                self._first_time = next((f.time for f in self.mcap), None)
        else:
            self._sniff()

    # -- opening ---------------------------------------------------------------

    def _sniff(self) -> None:
        """Refuse files whose first records are not PurpleDrop events."""
        if self.size == 0:
            return
        hint = self._companion_hint()
        with open(self.path, "rb") as f:
            header = f.read(RECORD_HEADER.size)
        if len(header) < RECORD_HEADER.size:
            raise LogToolError(
                f"{self.path}: {self.size} bytes, too short to hold a record; "
                f"not a recording, or cut short{hint}"
            )
        (n,) = RECORD_HEADER.unpack(header)
        if n > self.size - RECORD_HEADER.size:
            raise LogToolError(
                f"{self.path}: not a recording{hint} (its first record claims {n} bytes, "
                f"the file holds {self.size - RECORD_HEADER.size} after the length); "
                "if it is a recording cut short inside its first record, nothing in it is readable"
            )
        # A bad record is counted and skipped by every tool; it only decides that the
        # file is not a recording when nothing else says it is: no index or manifest
        # of ours beside it, no PurpleDrop event among the first records, and
        # lengths that do not chain into whole records.
        frames = iter(self.reader)
        seen = valid = 0
        try:
            for frame in frames:
                if seen == 0:
                    self._first_time = frame.time
                seen += 1
                valid += frame.valid
                if seen >= SNIFF_RECORDS:
                    break
        finally:
            frames.close()
        chained = seen >= SNIFF_RECORDS or (seen > 0 and self.reader.truncated_bytes == 0)
        if valid or chained or self._ours():
            return
        raise LogToolError(
            f"{self.path}: not a recording{hint} (its first record, {n} bytes, is not "
            f"{what(self.schema)}, the records after it do not chain, and no index or "
            "manifest is beside it)"
        )

    def _ours(self) -> bool:
        """A file cuecap wrote: its index starts with our magic, or its manifest is ours."""
        assert isinstance(self.reader, RecordingReader)  # MCAP files are never sniffed
        try:
            with open(self.reader.index_path, "rb") as f:
                if f.read(len(INDEX_MAGIC)) == INDEX_MAGIC:
                    return True
        except OSError:
            pass
        manifest = self.reader.manifest
        return manifest is not None and manifest.get("format") == MANIFEST_FORMAT

    def _companion_hint(self) -> str:
        name = self.path.name
        for suffix in (".idx", ".json"):
            if name.endswith(".bin" + suffix):
                return f"; did you mean {self.path.with_name(name[: -len(suffix)])}?"
        return ""

    # -- facts -----------------------------------------------------------------

    @property
    def manifest(self) -> dict[str, Any] | None:
        return self.reader.manifest

    @property
    def name(self) -> str:
        return self.path.name

    def first_time(self) -> float | None:
        """Receive time of the first record (None for an empty recording)."""
        return self._first_time

    def last_time(self) -> float:
        """Receive time of the last complete record: from the index when it can, else a scan."""
        if self.mcap is not None:
            last = self.mcap.last_time()
            if last is not None:
                return last
            for frame in self.reader:
                last = frame.time
            if last is None:
                raise LogToolError(f"{self.path}: holds no records")
            return last
        reader = self.reader
        assert isinstance(reader, RecordingReader)  # MCAP returned above
        last = _last_time_from_index(reader.path, reader.index_path, self.size)
        if last is not None:
            return last
        for frame in self.reader:
            last = frame.time
        if last is None:
            raise LogToolError(f"{self.path}: holds no records")
        return last

    def describe(self, time_range: TimeRange) -> str:
        """``time_range`` in this recording's own times (offsets from its first record)."""
        first = self.first_time()
        if first is None:
            return time_range.describe()
        return time_range.describe(first, self.last_time())

    def resolve(self, start: TimeSpec | None, end: TimeSpec | None) -> TimeRange:
        """The receive-time range ``--from start --to end`` means for this recording."""
        first = self.first_time()
        if first is None or (start is None and end is None):
            return EVERYTHING
        return resolve_range(start, end, first, self.last_time)

    # -- reading ---------------------------------------------------------------

    def frames(
        self,
        kinds: Collection[str] | None = None,
        time_range: TimeRange = EVERYTHING,
        progress: Progress | None = None,
    ) -> Iterator[Frame]:
        """Frames in order, optionally only some types and a receive-time range.

        Type filtering reads the first byte only; nothing is decoded here.
        Records whose type cannot be read are counted in ``invalid`` (and
        yielded when no type filter is given, so ``dump`` can show them).
        """
        wanted = check_kinds(kinds, self.schema)
        self.invalid = 0
        self.first_invalid = None
        reader = self.reader
        next_report = 0
        # MCAP: the chunk index skips the chunks outside the range.
        source = (
            self.mcap.frames_between(time_range.start, time_range.end)
            if self.mcap is not None
            else iter(reader)
        )
        for frame in source:
            if progress is not None and reader.bytes >= next_report:
                progress(reader.bytes)
                next_report = reader.bytes + _PROGRESS_BYTES
            if frame.time not in time_range:  # outside the range: not looked at, not counted
                continue
            kind = frame.kind
            if kind is None:
                self.note_invalid(frame)
                if wanted is not None:
                    continue
            elif wanted is not None and kind not in wanted:
                continue
            yield frame
        if progress is not None:
            progress(self.size)

    def messages(
        self,
        kind: str,
        time_range: TimeRange = EVERYTHING,
        progress: Progress | None = None,
    ) -> Iterator[tuple[Frame, Message]]:
        """``(frame, decoded inner message)`` of one type; records that do not decode are counted."""
        for frame in self.frames([kind], time_range, progress):
            try:
                message = frame.message
            except FrameDecodeError:
                self.note_invalid(frame)
                continue
            if message is not None:  # always: frames() gave only frames of `kind`
                yield frame, message

    def images(
        self, time_range: TimeRange = EVERYTHING, progress: Progress | None = None
    ) -> Iterator[tuple[Frame, bytes]]:
        """``(frame, image bytes)`` of the camera frames, at the schema's image field path."""
        path = image_path(self.schema)
        if path is None:
            return
        get = path.get
        for frame, message in self.messages(path.kind, time_range, progress):
            value = get(message)
            if value is not MISSING:
                yield frame, bytes(value)

    def note_invalid(self, frame: Frame) -> None:
        """Count a record that is not a PurpleDrop event (tools call it after a failed decode)."""
        self.invalid += 1
        if self.first_invalid is None:
            self.first_invalid = f"record {frame.seq} ({frame.size} bytes)"

    # -- after reading ---------------------------------------------------------

    @property
    def truncated_bytes(self) -> int:
        return self.reader.truncated_bytes

    @property
    def estimated_times(self) -> int:
        return self.reader.estimated_times

    def problems(self) -> list[str]:
        """What went wrong while reading that means records were left out."""
        out: list[str] = []
        if self.truncated_bytes and self.mcap is not None:
            out.append(
                f"{self.path}: unreadable after record {self.reader.records} (the last "
                f"{self.truncated_bytes} bytes are cut short); the rest is left out"
            )
        elif self.truncated_bytes:
            out.append(
                f"{self.path}: the last record is cut short ({self.truncated_bytes} bytes left out, "
                f"after byte {self.reader.bytes}); `cuecap log repair {self.path}` fixes the file"
            )
        if self.invalid:
            out.append(
                f"{self.path}: {self.invalid} record(s) are not {what(self.schema)[2:]}s and were "
                f"left out (first: {self.first_invalid})"
            )
        return out

    def notes(self) -> list[str]:
        """Facts worth a warning that lose nothing (estimated receive times)."""
        if not self.estimated_times:
            return []
        why = self.reader.index_problem or "no index"
        return [
            f"{self.path}: {why}; {self.estimated_times} receive time(s) estimated from message "
            "timestamps (`cuecap log repair` rebuilds the index)"
        ]


def _last_time_from_index(data_path: Path, index_path: Path, size: int) -> float | None:
    """The receive time of the last complete record, read off the index's tail.

    Looks at the last few entries only, checking that each one's record is
    complete in the data file; None when the index cannot tell (then callers scan).
    """
    try:
        index_size = index_path.stat().st_size
    except OSError:
        return None
    entries = (index_size - len(INDEX_MAGIC)) // INDEX_ENTRY.size
    if entries <= 0:
        return None
    try:
        with open(index_path, "rb") as index, open(data_path, "rb") as data:
            if index.read(len(INDEX_MAGIC)) != INDEX_MAGIC:
                return None
            for i in range(entries - 1, max(entries - 8, 0) - 1, -1):
                index.seek(len(INDEX_MAGIC) + i * INDEX_ENTRY.size)
                offset: int
                time: float
                offset, time = INDEX_ENTRY.unpack(index.read(INDEX_ENTRY.size))
                data.seek(offset)
                header = data.read(RECORD_HEADER.size)
                if len(header) < RECORD_HEADER.size:
                    continue
                (n,) = RECORD_HEADER.unpack(header)
                if offset + RECORD_HEADER.size + n <= size:
                    return time
    except (OSError, struct.error):
        return None
    return None
