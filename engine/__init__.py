"""cuecap: a trigger-driven automation engine for event streams and cameras.

The public API is re-exported here. The core names load at once; the rest load
on first use, so ``import engine`` (and every ``cuecap`` command) stays fast and
does not pull in websockets, httpx or transitions unless they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

# name -> module that defines it, imported on first access
_LAZY: dict[str, str] = {
    # seed-compatible classes
    "EventRecorder": "engine.compat.event_recorder",
    "ShotSaver": "engine.shots.saver",
    "status": "engine.shots.status",
    # screenshots
    "ShotService": "engine.shots.service",
    "ShotStatus": "engine.shots.status",
    "StatusUpdate": "engine.shots.status",
    "ShotFailed": "engine.shots.status",
    "ShotRejected": "engine.shots.status",
    "QueueFull": "engine.shots.status",
    "Throttled": "engine.shots.status",
    "UnknownCamera": "engine.shots.status",
    "SaverClosed": "engine.shots.status",
    "FrameCache": "engine.shots.frame_cache",
    "CaptureError": "engine.shots.backends.base",
    "CaptureRequest": "engine.shots.backends.base",
    "PythonCamera": "engine.shots.backends.python",
    "CameraConfig": "engine.shots.config",
    "ShotsConfig": "engine.shots.config",
    "RetentionConfig": "engine.shots.config",
    # recorders
    "Recorder": "engine.recorder.recorder",
    "RecorderStateError": "engine.recorder.decisions",
    "RecorderConfig": "engine.recorder.config",
    "DetectorConfig": "engine.recorder.config",
    "PreRoll": "engine.recorder.preroll",
    "Condition": "engine.core.condition",
    "ConditionError": "engine.core.condition",
    # sources
    "WebSocketSource": "engine.sources.websocket",
    "LogSource": "engine.sources.log",
    "SimulatorSource": "engine.sources.simulator",
    "record_stream": "engine.sources.session",
    # simulator
    "SimWorld": "engine.sim.world",
    "SimConfig": "engine.sim.world",
    "start_sim_server": "engine.sim.server",
    "run_sim_in_thread": "engine.sim.server",
    # rules and the engine
    "load_rules": "engine.rules.loader",
    "RuleSet": "engine.rules.loader",
    "RuleFileError": "engine.rules.errors",
    "Schedule": "engine.rules.schedule",
    "Engine": "engine.runtime.engine",
    "Summary": "engine.runtime.summary",
    "replay": "engine.runtime.replay",
    # log tools
    "LogInput": "engine.logtools.inputs",
    "LogToolError": "engine.logtools.errors",
}

__all__ = sorted(
    {
        "Clock",
        "Frame",
        "FrameDecodeError",
        "Gap",
        "ManualClock",
        "Manifest",
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
        *_LAZY,
    }
)


def __getattr__(name: str) -> Any:
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
    from engine.core.condition import Condition, ConditionError
    from engine.logtools.errors import LogToolError
    from engine.logtools.inputs import LogInput
    from engine.recorder.config import DetectorConfig, RecorderConfig
    from engine.recorder.decisions import RecorderStateError
    from engine.recorder.preroll import PreRoll
    from engine.recorder.recorder import Recorder
    from engine.rules.errors import RuleFileError
    from engine.rules.loader import RuleSet, load_rules
    from engine.rules.schedule import Schedule
    from engine.runtime.engine import Engine
    from engine.runtime.replay import replay
    from engine.runtime.summary import Summary
    from engine.shots.backends.base import CaptureError, CaptureRequest
    from engine.shots.backends.python import PythonCamera
    from engine.shots.config import CameraConfig, RetentionConfig, ShotsConfig
    from engine.shots.frame_cache import FrameCache
    from engine.shots.saver import ShotSaver
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
    from engine.sim.world import SimConfig, SimWorld
    from engine.sources.log import LogSource
    from engine.sources.session import record_stream
    from engine.sources.simulator import SimulatorSource
    from engine.sources.websocket import WebSocketSource
