"""Engine events: what recorders, the shot saver and sources tell the rules.

An event is a name, the time it happened (engine clock, epoch seconds) and a
small mapping of facts. Producers receive an ``Emit`` callable rather than a
bus object, so the core stays free of wiring and tests can pass ``list.append``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Names the engine emits; rules may react to any of them.
RECORDING_STARTED = "recording.started"
RECORDING_STOPPED = "recording.stopped"
RECORDING_ERROR = "recording.error"
SHOT_SUCCESS = "shot.success"
SHOT_ERROR = "shot.error"
ENGINE_STARTED = "engine.started"
ENGINE_STOPPING = "engine.stopping"
SOURCE_GAP = "source.gap"


@dataclass(frozen=True, slots=True)
class EngineEvent:
    name: str
    time: float
    data: Mapping[str, Any] = field(default_factory=dict)


Emit = Callable[[EngineEvent], None]


def discard(event: EngineEvent) -> None:
    """An ``Emit`` for producers nobody listens to."""
