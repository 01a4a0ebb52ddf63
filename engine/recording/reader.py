"""Reading recordings back as frames, streaming, with their receive times.

Memory stays flat whatever the file size: records and index entries are read
side by side in order. A cut-short last record (a crash, a full disk) ends the
stream cleanly and is reported in ``truncated_bytes``. A recording without a
usable index (a plain ``pdrecord`` file, or an index cut short) still reads:
receive times are then estimated from the messages' own timestamps, carried
forward over the types that have none, and ``estimated_times`` says how many.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import IO, Any

from engine.core.frame import Frame, frame_class
from engine.core.schema import Schema
from engine.recording.format import (
    INDEX_ENTRY,
    INDEX_MAGIC,
    RECORD_HEADER,
    RecordingError,
    check_readable,
    companion_paths,
    read_manifest,
)
from engine.recording.schema import recording_schema

_BUFFER = 1 << 20
# Records held back while looking for the first timestamp in a file without index.
_MAX_PENDING = 100_000


class RecordingReader:
    """Iterate a recording's frames: ``for frame in RecordingReader(path): ...``.

    After iteration: ``records``, ``bytes``, ``truncated_bytes`` (size of a
    cut-short final record, 0 if none) and ``estimated_times`` (how many receive
    times came from message timestamps rather than the index).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        source: str | None = None,
        schema: Schema | None = None,
    ) -> None:
        self.path, self.index_path, self.manifest_path = companion_paths(path)
        self.size = check_readable(self.path)
        self.source = source if source is not None else self.path.name
        self.records = 0
        self.bytes = 0
        self.truncated_bytes = 0
        self.estimated_times = 0
        self.index_problem: str | None = None
        # What the records are: given, or as the manifest says (PurpleDrop's when silent).
        self.schema = schema if schema is not None else recording_schema(self.path)

    @property
    def manifest(self) -> dict[str, Any] | None:
        """The manifest beside the recording, or None when there is none or it is unreadable."""
        return read_manifest(self.manifest_path)

    @property
    def has_index(self) -> bool:
        return self.index_path.exists()

    def _open_index(self) -> IO[bytes] | None:
        try:
            f = open(self.index_path, "rb", buffering=_BUFFER)  # noqa: SIM115
        except FileNotFoundError:
            self.index_problem = "no index"
            return None
        except OSError as exc:
            self.index_problem = f"index unreadable: {exc.strerror or exc}"
            return None
        if f.read(len(INDEX_MAGIC)) != INDEX_MAGIC:
            f.close()
            self.index_problem = "index has a wrong header"
            return None
        return f

    def __iter__(self) -> Generator[Frame]:  # a generator: callers may close() it early
        try:
            data = open(self.path, "rb", buffering=_BUFFER)  # noqa: SIM115
        except OSError as exc:
            raise RecordingError(f"{self.path}: cannot open: {exc.strerror or exc}") from None
        index = self._open_index()
        self.records = self.bytes = self.truncated_bytes = self.estimated_times = 0
        source = self.source
        header_size = RECORD_HEADER.size
        entry_size = INDEX_ENTRY.size
        unpack_header = RECORD_HEADER.unpack
        unpack_entry = INDEX_ENTRY.unpack
        make = frame_class(self.schema)
        offset = 0
        last_time: float | None = None
        pending: list[Frame] = []
        try:
            while True:
                header = data.read(header_size)
                if len(header) < header_size:
                    self.truncated_bytes = len(header)
                    break
                (n,) = unpack_header(header)
                raw = data.read(n)
                if len(raw) < n:
                    self.truncated_bytes = header_size + len(raw)
                    break
                time: float | None = None
                if index is not None:
                    entry = index.read(entry_size)
                    if len(entry) == entry_size:
                        entry_offset, time = unpack_entry(entry)
                        if entry_offset != offset:
                            self.index_problem = (
                                f"index entry {self.records} points at byte {entry_offset}, "
                                f"record is at {offset}"
                            )
                            index.close()
                            index, time = None, None
                    else:
                        self.index_problem = f"index ends after {self.records} records"
                        index.close()
                        index = None
                frame = make(raw, 0.0, self.records, source)
                offset += header_size + n
                self.records += 1
                self.bytes = offset
                if time is None:
                    self.estimated_times += 1
                    stamp = _safe_timestamp(frame)
                    if stamp is not None and (last_time is None or stamp >= last_time):
                        time = stamp
                    elif last_time is not None:
                        time = last_time
                if time is None:
                    # No time known yet: hold frames until the first timestamp appears.
                    pending.append(frame)
                    if len(pending) >= _MAX_PENDING:
                        raise RecordingError(
                            f"{self.path}: no index and no timestamp in the first {_MAX_PENDING} records"
                        )
                    continue
                if pending:
                    for held in pending:
                        held.time = time
                        yield held
                    pending.clear()
                frame.time = time
                last_time = time
                yield frame
            for held in pending:  # a file with no timestamps at all: times are 0
                yield held
        finally:
            data.close()
            if index is not None:
                index.close()

    def frames(self) -> Generator[Frame]:
        return iter(self)


def _safe_timestamp(frame: Frame) -> float | None:
    try:
        return frame.timestamp
    except ValueError:
        return None


def read_frames(path: str | Path) -> list[Frame]:
    """All frames of a (small) recording, for tests and tools that need them at once."""
    return list(RecordingReader(path))
