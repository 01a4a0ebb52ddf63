"""Cameras whose frames ride on an event stream (PurpleDrop ``image`` events, or the
image field of the source's schema).

No request goes out: a live shot is the newest frame the engine received from
the source (refused when older than ``max_age``, so a dead stream is not
mistaken for a still scene); a shot of a moment is the frame nearest to it,
from memory, else from the recordings folder.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.core.fieldpath import image_bytes
from engine.core.frame import Frame, FrameDecodeError
from engine.shots.backends.base import BaseCamera, CaptureError, CaptureRequest
from engine.shots.config import StreamCameraConfig
from engine.shots.frame_cache import FrameCache, find_in_recordings


class StreamCamera(BaseCamera):
    kind = "stream"
    config: StreamCameraConfig

    def __init__(
        self,
        name: str,
        config: StreamCameraConfig,
        cache: FrameCache,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(name, config, clock=clock)
        self.cache = cache

    async def capture(self, request: CaptureRequest) -> bytes:
        source = self.config.source
        if request.time is None:
            frame = self.cache.latest(source)
            if frame is None:
                raise CaptureError(f"no image received from source {source!r} yet")
            age = self.clock.time() - frame.time
            if age > self.config.max_age:
                raise CaptureError(
                    f"newest image from source {source!r} is {age:.1f} s old "
                    f"(max_age {self.config.max_age:g} s)"
                )
        else:
            frame = await self._nearest(request.time)
        return _image_bytes(frame)

    async def _nearest(self, time: float) -> Frame:
        source, tolerance = self.config.source, self.config.tolerance
        frame = self.cache.nearest(source, time, tolerance)
        if frame is None and self.config.recordings:
            frame = await asyncio.to_thread(
                find_in_recordings, self.config.recordings, source, time, tolerance
            )
        if frame is None:
            when = datetime.fromtimestamp(time).astimezone().isoformat(timespec="milliseconds")
            where = "memory" + (" or recordings" if self.config.recordings else "")
            raise CaptureError(
                f"no image from source {source!r} within {tolerance:g} s of {when} in {where}"
            )
        return frame


def _image_bytes(frame: Frame) -> bytes:
    try:
        data = image_bytes(frame)
    except FrameDecodeError as exc:
        raise CaptureError(str(exc)) from None
    if data is None:
        raise CaptureError(f"frame {frame.seq} of {frame.source!r} carries no image")
    return data
