"""Classes with the interfaces of the seed scripts, for code written against them."""

from engine.compat.event_recorder import EventRecorder

__all__ = ["EventRecorder"]
