"""cuecap: a trigger-driven automation engine for event streams and cameras.

This module is the public API, and only this: the entry points a user needs,
pinned by ``tests/test_public_api.py``. Everything else stays importable from
its own module (``engine.shots.config``...) but is not promised here.

The light names (events, errors, frames, clocks) load at once; the rest load
on first use, so ``import engine`` (and every ``cuecap`` command) stays fast
and does not pull in websockets, httpx or transitions unless they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from engine.core.clock import Clock, ManualClock, SystemClock
from engine.core.frame import Frame, Gap
from engine.errors import CuecapError
from engine.events import (
    EngineStarted,
    EngineStopping,
    Event,
    EventKind,
    RecordingErrored,
    RecordingStarted,
    RecordingStopped,
    ReloadApplied,
    ReloadRefused,
    RuleFired,
    SendErrored,
    SendSucceeded,
    ShotErrored,
    ShotQueued,
    ShotSaved,
    ShotSaving,
    SourceClosed,
    SourceConnected,
    SourceGap,
)

# name -> module that defines it, imported on first access
_LAZY: dict[str, str] = {
    # the classes the project grew from, with their original calls
    "EventRecorder": "engine.compat.event_recorder",
    "ShotSaver": "engine.compat.shot_saver",
    "status": "engine.shots.status",
    # rule files and the engine
    "load_rules": "engine.rules.loader",
    "RuleSet": "engine.rules.loader",
    "Engine": "engine.runtime.engine",
    "Summary": "engine.runtime.summary",
    "replay": "engine.runtime.replay",
    "rule_adapters": "engine.runtime.adapters",  # the MQTT client and notifier rules ask for
    # screenshots
    "ShotService": "engine.shots.service",
    "ShotStatus": "engine.shots.status",
    "StatusUpdate": "engine.shots.status",
    "PythonCamera": "engine.shots.backends.python",
    "CaptureRequest": "engine.shots.backends.base",
    # recorders, sources and the recording format
    "Recorder": "engine.recorder.recorder",
    "RecorderConfig": "engine.recorder.config",
    "WebSocketSource": "engine.sources.websocket",
    "LogSource": "engine.sources.log",
    "SimulatorSource": "engine.sources.simulator",
    "record_stream": "engine.sources.session",
    "RecordingReader": "engine.recording.reader",
    "RecordingWriter": "engine.recording.writer",
    "read_frames": "engine.recording.reader",
    "LogInput": "engine.logtools.inputs",
    # the simulator, for tests and demos
    "SimWorld": "engine.sim.world",
    "start_sim_server": "engine.sim.server",
    "run_sim_in_thread": "engine.sim.server",
    # the errors a caller of the names above meets (all derive from CuecapError)
    "RuleFileError": "engine.rules.errors",
    "RecordingError": "engine.recording.format",
    "RecorderStateError": "engine.recorder.decisions",
    "CaptureError": "engine.shots.backends.base",
    "ShotFailed": "engine.shots.status",
    "ShotRejected": "engine.shots.status",
    "QueueFull": "engine.shots.status",
    "Throttled": "engine.shots.status",
    "UnknownCamera": "engine.shots.status",
    "SaverClosed": "engine.shots.status",
}

__all__ = sorted(
    {
        "Clock",
        "CuecapError",
        "EngineStarted",
        "EngineStopping",
        "Event",
        "EventKind",
        "Frame",
        "Gap",
        "ManualClock",
        "RecordingErrored",
        "RecordingStarted",
        "RecordingStopped",
        "ReloadApplied",
        "ReloadRefused",
        "RuleFired",
        "SendErrored",
        "SendSucceeded",
        "ShotErrored",
        "ShotQueued",
        "ShotSaved",
        "ShotSaving",
        "SourceClosed",
        "SourceConnected",
        "SourceGap",
        "SystemClock",
        *_LAZY,
    }
)


def __getattr__(name: str) -> object:  # the names above are typed by the imports below
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from engine.compat.event_recorder import EventRecorder
    from engine.compat.shot_saver import ShotSaver
    from engine.logtools.inputs import LogInput
    from engine.recorder.config import RecorderConfig
    from engine.recorder.decisions import RecorderStateError
    from engine.recorder.recorder import Recorder
    from engine.recording.format import RecordingError
    from engine.recording.reader import RecordingReader, read_frames
    from engine.recording.writer import RecordingWriter
    from engine.rules.errors import RuleFileError
    from engine.rules.loader import RuleSet, load_rules
    from engine.runtime.adapters import rule_adapters
    from engine.runtime.engine import Engine
    from engine.runtime.replay import replay
    from engine.runtime.summary import Summary
    from engine.shots.backends.base import CaptureError, CaptureRequest
    from engine.shots.backends.python import PythonCamera
    from engine.shots.service import ShotService
    from engine.shots.status import (
        QueueFull,
        SaverClosed,
        ShotFailed,
        ShotRejected,
        ShotStatus,
        StatusUpdate,
        Throttled,
        UnknownCamera,
        status,
    )
    from engine.sim.server import run_sim_in_thread, start_sim_server
    from engine.sim.world import SimWorld
    from engine.sources.log import LogSource
    from engine.sources.session import record_stream
    from engine.sources.simulator import SimulatorSource
    from engine.sources.websocket import WebSocketSource
