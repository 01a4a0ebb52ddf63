"""Screenshots: bounded, retried shots from cameras, checked and saved atomically.

``ShotService`` runs inside the engine's event loop; ``ShotSaver`` is the
seed-compatible synchronous interface with its own background loop.

The names load on first use: ``engine.shots.config`` (which every rule file
needs) must not pull in the cameras, the saver and their libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Loaded at once (it is small): the function ``status`` shares its name with the
# module ``engine.shots.status``, which would otherwise shadow it once imported.
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

# name -> module that defines it, imported on first access
_LAZY: dict[str, str] = {
    "BaseCamera": "engine.shots.backends.base",
    "Camera": "engine.shots.backends.base",
    "CameraCommon": "engine.shots.config",
    "CameraConfig": "engine.shots.config",
    "CaptureError": "engine.shots.backends.base",
    "CaptureRequest": "engine.shots.backends.base",
    "CommandCameraConfig": "engine.shots.config",
    "FrameCache": "engine.shots.frame_cache",
    "HttpAuth": "engine.shots.config",
    "HttpCameraConfig": "engine.shots.config",
    "PythonCamera": "engine.shots.backends.python",
    "PythonCameraConfig": "engine.shots.config",
    "RetentionConfig": "engine.shots.config",
    "ShotSaver": "engine.shots.saver",
    "ShotService": "engine.shots.service",
    "ShotStats": "engine.shots.service",
    "ShotsConfig": "engine.shots.config",
    "ShotsFile": "engine.shots.config",
    "StreamCameraConfig": "engine.shots.config",
    "apply_retention": "engine.shots.retention",
    "build_camera": "engine.shots.backends",
    "camera_config": "engine.shots.backends",
    "check_template": "engine.shots.config",
    "plan_retention": "engine.core.retention",
}

__all__ = [
    "BaseCamera",
    "Camera",
    "CameraCommon",
    "CameraConfig",
    "CaptureError",
    "CaptureRequest",
    "CommandCameraConfig",
    "FrameCache",
    "HttpAuth",
    "HttpCameraConfig",
    "PythonCamera",
    "PythonCameraConfig",
    "QueueFull",
    "RetentionConfig",
    "SaverClosed",
    "ShotFailed",
    "ShotRejected",
    "ShotSaver",
    "ShotService",
    "ShotStats",
    "ShotStatus",
    "ShotsConfig",
    "ShotsFile",
    "StatusUpdate",
    "StreamCameraConfig",
    "Throttled",
    "UnknownCamera",
    "apply_retention",
    "build_camera",
    "camera_config",
    "check_template",
    "plan_retention",
    "status",
]


def __getattr__(name: str) -> object:  # the names above are typed by the imports below
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.shots' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from engine.core.retention import plan_retention
    from engine.shots.backends import build_camera, camera_config
    from engine.shots.backends.base import BaseCamera, Camera, CaptureError, CaptureRequest
    from engine.shots.backends.python import PythonCamera
    from engine.shots.config import (
        CameraCommon,
        CameraConfig,
        CommandCameraConfig,
        HttpAuth,
        HttpCameraConfig,
        PythonCameraConfig,
        RetentionConfig,
        ShotsConfig,
        ShotsFile,
        StreamCameraConfig,
        check_template,
    )
    from engine.shots.frame_cache import FrameCache
    from engine.shots.retention import apply_retention
    from engine.shots.saver import ShotSaver
    from engine.shots.service import ShotService, ShotStats
