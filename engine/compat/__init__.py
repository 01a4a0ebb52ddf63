"""Classes with the interfaces of the seed scripts, for code written against them."""

from engine.compat.event_recorder import EventRecorder
from engine.compat.shot_saver import ShotSaver

__all__ = ["EventRecorder", "ShotSaver"]
