"""Segment files: where each piece of a recording goes, and opening it safely.

Names come from the recorder's ``folder`` and ``file_name`` templates
(strftime plus ``{recorder}``, ``{source}``, ``{seq}``, ``{part}``,
``{reason}``), rendered at the receive time of the segment's first record and
joined under the recordings root with ``safe_join``, so no name escapes it. A
name that is already taken (a restart within the same second, a template
without ``{seq}``) gets ``-2``, ``-3``... before its suffix: a recording is
never overwritten.

How often an open segment is flushed is the recorder's ``flush_interval``,
and what that interval is counted in is the run's: ``FlushClock``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.core.clock import FlushClock
from engine.core.templates import Template, safe_join
from engine.recorder.config import RecorderConfig, RecordingFormat
from engine.recording.format import RecordingError, companion_paths
from engine.recording.mcap import Compression, McapRecordingWriter
from engine.recording.writer import RecordingWriter

_MAX_TRIES = 10_000


def _taken(path: Path) -> bool:
    return any(p.exists() for p in companion_paths(path))


def unique_path(path: Path) -> Path:
    """``path``, or the first free ``NAME-N.SUFFIX`` beside it."""
    if not _taken(path):
        return path
    stem, suffix = path.stem, path.suffix
    for n in range(2, _MAX_TRIES):
        candidate = path.with_name(f"{stem}-{n}{suffix}")
        if not _taken(candidate):
            return candidate
    raise RecordingError(f"{path}: {_MAX_TRIES} recordings with this name already exist")


class SegmentFiles:
    """Names and opens the segment files of one recorder."""

    def __init__(
        self,
        recorder: str,
        config: RecorderConfig,
        root: str | Path,
        flushes: FlushClock = FlushClock.RECEIVE_TIME,
    ) -> None:
        self.recorder = recorder
        self.root = Path(root)
        self.template: Template = config.path_template()
        self.tz = UTC if config.utc else None
        # Told to flush: the writers never flush by themselves on receive time.
        self.flush_interval = (
            config.flush_interval if flushes is FlushClock.RECEIVE_TIME else math.inf
        )
        self.schema = config.message_schema
        self.format = config.format
        self.mcap_compression = config.mcap_compression
        self.mcap_chunk_size = config.mcap_chunk_size

    def path_for(self, *, time: float, seq: int, part: int, reason: str, source: str) -> Path:
        """The file a segment starting at receive ``time`` goes to (not yet created)."""
        values = {
            "recorder": self.recorder,
            "source": source,
            "seq": seq,
            "part": part,
            "reason": reason,
        }
        when = datetime.fromtimestamp(time, tz=self.tz)
        return unique_path(safe_join(self.root, self.template.render(values, when)))

    def open(
        self,
        *,
        time: float,
        seq: int,
        part: int,
        reason: str,
        source: str,
        extra: dict[str, Any] | None = None,
        path: Path | None = None,
        exact: bool = False,
    ) -> RecordingWriter | McapRecordingWriter:
        """Create the segment's files; ``RecordingError`` names the file when that fails.

        ``path`` (from code, not from a rule file) overrides the templates; a
        taken name still gets ``-2``, ``-3``... rather than being overwritten,
        unless ``exact``: then a taken name is an error.
        """
        if path is not None:
            if not exact:
                path = unique_path(path)
        else:
            path = self.path_for(time=time, seq=seq, part=part, reason=reason, source=source)
        options: dict[str, Any] = {
            "recorder": self.recorder,
            "source": source,
            "opened_at": time,
            "start_reason": reason,
            "flush_interval": self.flush_interval,
            "extra": {"seq": seq, "part": part, **(extra or {})},
            "schema": self.schema,
        }
        if self.format is RecordingFormat.MCAP:
            return McapRecordingWriter(
                path,
                compression=Compression(self.mcap_compression.value),
                chunk_size=self.mcap_chunk_size,
                **options,
            )
        return RecordingWriter(path, **options)
