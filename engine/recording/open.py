"""Opening a recording of either layout: a ``.bin`` (pdrecord) file or an MCAP file."""

from __future__ import annotations

import os

from engine.recording.mcap import McapRecordingReader
from engine.recording.reader import RecordingReader
from engine.recording.schema import is_mcap


def open_reader(
    path: str | os.PathLike[str], source: str | None = None
) -> RecordingReader | McapRecordingReader:
    """A reader of the recording at ``path``, whichever layout it has (by its first bytes)."""
    if is_mcap(path):
        return McapRecordingReader(path, source=source)
    return RecordingReader(path, source=source)
