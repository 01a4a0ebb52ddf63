"""Cameras that are Python callables, for everything the other backends do not do.

The callable gets the ``CaptureRequest`` (plus the camera's ``options`` as
keyword arguments) and returns JPEG bytes or a Pillow image. A coroutine
function runs on the loop and is cancelled on timeout; a plain function runs
on the saver's worker threads, at most ``pool_size`` at once: a hung function
cannot be stopped, but it holds a worker, so it cannot push the number of
concurrent shots past the limit either.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.errors import InvalidArgument
from engine.shots.backends.base import BaseCamera, CaptureError, CaptureRequest
from engine.shots.config import CameraCommon, PythonCameraConfig
from engine.shots.jpeg import to_jpeg

CameraFunction = Callable[..., Any]


def import_callable(spec: str) -> CameraFunction:
    """``"package.module:function"`` -> the function; a clear error if it is not there."""
    module_name, _, attr = spec.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgument(
            f"cannot import {module_name!r} for camera function {spec!r}: {exc}"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InvalidArgument(
                f"{module_name!r} has no {attr!r} (camera function {spec!r})"
            ) from None
    if not callable(obj):
        raise InvalidArgument(f"camera function {spec!r} is not callable")
    return obj


class PythonCamera(BaseCamera):
    kind = "python"

    def __init__(
        self,
        name: str,
        function: CameraFunction | None = None,
        config: CameraCommon | None = None,
        *,
        executor: Executor | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        config = config if config is not None else CameraCommon()
        super().__init__(name, config, clock=clock)
        if function is None:
            if not isinstance(config, PythonCameraConfig):
                raise InvalidArgument(f"camera {name!r}: a python camera needs a function")
            function = import_callable(config.function)
        self.function = function
        self.options: dict[str, Any] = dict(getattr(config, "options", {}))
        self.executor = executor
        self._is_async = inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
            getattr(function, "__call__", None)  # noqa: B004
        )

    async def capture(self, request: CaptureRequest) -> bytes:
        if self._is_async:
            result = await self.function(request, **self.options)
        else:
            loop = asyncio.get_running_loop()
            call = functools.partial(self.function, request, **self.options)
            result = await loop.run_in_executor(self.executor, call)
        if isinstance(result, bytes):
            return result
        if isinstance(result, bytearray | memoryview):
            return bytes(result)
        if result is None:
            raise CaptureError(f"camera function of {self.name!r} returned nothing")
        try:
            return to_jpeg(result)
        except TypeError as exc:
            raise CaptureError(
                f"camera function of {self.name!r}: {exc}", retryable=False
            ) from None
