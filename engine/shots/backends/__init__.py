"""Camera backends: http snapshots, commands (ffmpeg), stream frames, Python callables."""

from __future__ import annotations

from concurrent.futures import Executor

from pydantic import TypeAdapter

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.core.validation import settings_checked
from engine.errors import InvalidArgument, UnsupportedType
from engine.shots.backends.base import BaseCamera, Camera, CaptureError, CaptureRequest
from engine.shots.config import (
    CameraConfig,
    CommandCameraConfig,
    HttpCameraConfig,
    PythonCameraConfig,
    StreamCameraConfig,
)
from engine.shots.frame_cache import FrameCache

_CAMERA_CONFIG: TypeAdapter[CameraConfig] = TypeAdapter(CameraConfig)


def camera_config(data: object) -> CameraConfig:
    """Validate a camera mapping (``{"type": "http", ...}``) into its config model.

    ``InvalidSettings`` (an ``InvalidArgument``) names what is wrong.
    """
    with settings_checked("camera"):
        return _CAMERA_CONFIG.validate_python(data)


def build_camera(
    name: str,
    config: CameraConfig | dict[str, object],
    *,
    frame_cache: FrameCache | None = None,
    executor: Executor | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Camera:
    """The camera for a config model (or a mapping, validated here)."""
    if isinstance(config, dict):
        config = camera_config(config)
    if isinstance(config, HttpCameraConfig):
        from engine.shots.backends.http import HttpCamera

        return HttpCamera(name, config, clock=clock)
    if isinstance(config, CommandCameraConfig):
        from engine.shots.backends.command import CommandCamera

        return CommandCamera(name, config, clock=clock)
    if isinstance(config, StreamCameraConfig):
        from engine.shots.backends.stream import StreamCamera

        if frame_cache is None:
            raise InvalidArgument(
                f"camera {name!r} reads frames of source {config.source!r}, but no frame cache "
                "was given (the engine passes its own)"
            )
        return StreamCamera(name, config, frame_cache, clock=clock)
    if isinstance(config, PythonCameraConfig):
        from engine.shots.backends.python import PythonCamera

        return PythonCamera(name, config=config, executor=executor, clock=clock)
    raise UnsupportedType(f"camera {name!r}: {type(config).__name__} is not a camera configuration")


__all__ = [
    "BaseCamera",
    "Camera",
    "CaptureError",
    "CaptureRequest",
    "build_camera",
    "camera_config",
]
