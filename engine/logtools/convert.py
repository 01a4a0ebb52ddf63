"""``log convert``: a recording to MCAP and back, nothing lost either way.

To MCAP, every record goes over as it is (undecodable ones too, on their own
channel) with its receive time, and the manifest rides along as metadata.
Back from MCAP, the records come out in the file's order with the same bytes
and receive times, and the manifest's story (recorder, source, reasons,
activity, gaps) is restored, so ``pdrecord -> MCAP -> pdrecord`` gives the
same ``.bin`` byte for byte. An MCAP written elsewhere converts too when its
channels share one protobuf schema (or ``--schema`` picks one).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.logtools.errors import LogToolError
from engine.logtools.inputs import LogInput, Progress
from engine.recording.format import RecordingError, companion_paths, remove_recording
from engine.recording.mcap import (
    DEFAULT_CHUNK_SIZE,
    MCAP_SUFFIX,
    Compression,
    McapRecordingWriter,
)
from engine.recording.writer import Manifest, RecordingWriter


@dataclass
class ConvertResult:
    out: Path
    records: int
    bytes: int
    to_mcap: bool


def _make_room(out: Path, force: bool) -> None:
    """Refuse an existing output, or (``force``) remove it and its companions."""
    existing = [p for p in companion_paths(out) if p.exists()]
    if existing and not force:
        raise LogToolError(f"{existing[0]}: already exists; use -f/--force to replace it")
    try:
        remove_recording(out)
    except OSError as exc:
        raise LogToolError(f"{out}: cannot replace: {exc.strerror or exc}") from None


def convert(
    log: LogInput,
    out: str | os.PathLike[str],
    *,
    compression: Compression = Compression.ZSTD,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    force: bool = False,
    progress: Progress | None = None,
) -> ConvertResult:
    """Write ``log`` to ``out``: MCAP when ``out`` ends in .mcap, else a cuecap/pdrecord file."""
    out = Path(out)
    to_mcap = out.suffix == MCAP_SUFFIX
    if to_mcap and log.mcap is not None:
        raise LogToolError(f"{log.path} is MCAP already; convert it to a .bin recording")
    if not to_mcap and log.mcap is None:
        raise LogToolError(
            f"{out}: converting a {log.path.suffix or 'cuecap'} recording needs an {MCAP_SUFFIX} "
            "output (or an MCAP input)"
        )
    if out.resolve() == log.path.resolve():
        raise LogToolError(f"{out}: is the input; write somewhere else")
    _make_room(out, force)
    source = Manifest.from_dict(log.manifest or {"path": str(log.path)})
    options: dict[str, Any] = {
        "recorder": source.recorder,
        "source": source.source,
        "opened_at": source.opened_at,
        "start_reason": source.start_reason,
        "extra": source.extra,
        "schema": log.schema,
        # Offline: no flushes by receive time (an MCAP flush would end a chunk early).
        "flush_interval": math.inf,
    }
    try:
        writer: McapRecordingWriter | RecordingWriter
        if to_mcap:
            writer = McapRecordingWriter(
                out, compression=compression, chunk_size=chunk_size, **options
            )
        else:
            writer = RecordingWriter(out, **options)
        with writer:
            write = writer.write_frame
            for frame in log.frames(progress=progress):
                write(frame)
            m = writer.manifest
            m.gaps = [dict(g) for g in source.gaps]
            m.first_activity, m.last_activity = source.first_activity, source.last_activity
            closed = writer.close(
                stop_reason=source.stop_reason,
                closed_at=source.closed_at if source.closed_at is not None else m.last_time,
            )
    except RecordingError as exc:
        raise LogToolError(str(exc)) from None
    if not source.complete:
        closed.complete = False
    return ConvertResult(out=out, records=closed.records, bytes=out.stat().st_size, to_mcap=to_mcap)
