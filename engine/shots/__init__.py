"""Screenshots: bounded, retried shots from cameras, checked and saved atomically.

``ShotService`` runs inside the engine's event loop; ``ShotSaver`` is the
seed-compatible synchronous interface with its own background loop.
"""

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
