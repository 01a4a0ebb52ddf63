"""``from event_recorder import EventRecorder``: PurpleDrop's documented import, kept working.

PurpleDrop's documentation has scripts save its ``EventRecorder`` class as
``event_recorder.py`` beside them; cuecap's class keeps its interface. See
docs/coming-from-scripts.md.
"""

from engine.compat.event_recorder import EventRecorder

__all__ = ["EventRecorder"]
