"""cuecap: a trigger-driven automation engine for event streams and cameras.

The public API is re-exported here; everything else is an implementation detail.
"""

from engine.core.clock import Clock, ManualClock, SystemClock
from engine.core.frame import Frame, FrameDecodeError, Gap, peek_kind
from engine.core.templates import (
    PathEscapeError,
    Template,
    TemplateError,
    safe_component,
    safe_join,
)
from engine.recording.format import RecordingError
from engine.recording.reader import RecordingReader, read_frames
from engine.recording.writer import Manifest, RecordingWriter

__all__ = [
    "Clock",
    "Frame",
    "FrameDecodeError",
    "Gap",
    "Manifest",
    "ManualClock",
    "PathEscapeError",
    "RecordingError",
    "RecordingReader",
    "RecordingWriter",
    "SystemClock",
    "Template",
    "TemplateError",
    "peek_kind",
    "read_frames",
    "safe_component",
    "safe_join",
]
