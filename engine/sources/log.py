"""Replaying a recording as a source, in virtual time or paced like the original.

As fast as possible (``speed=None``), frames keep their recorded receive times:
this is virtual time, and everything computed from frame times (pre-roll,
post-roll, gaps) comes out exactly as in the live run. A ``ManualClock`` passed
as ``clock`` is moved to each frame's time before the frame is handed out, so
schedulers reading that clock follow the replay.

Paced (``speed=X``), frames are handed out with the original spacing divided by
X and stamped with the clock's time at delivery, like a live source: the rest
of the engine, which runs on the same clock, sees a stream, not a log.

Gaps noted in the recording's manifest are replayed as ``Gap`` items at the
point where they happened.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from engine.core.clock import SYSTEM_CLOCK, Clock, ManualClock
from engine.core.frame import Frame, Gap
from engine.errors import InvalidArgument
from engine.events import Emit, SourceConnected, discard
from engine.recording.mcap import McapRecordingReader
from engine.recording.open import open_reader
from engine.recording.reader import RecordingReader
from engine.sources.base import SourceStats

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[object]]


def _manifest_gaps(reader: RecordingReader | McapRecordingReader, source: str) -> list[Gap]:
    manifest = reader.manifest or {}
    gaps = []
    for entry in manifest.get("gaps") or []:
        try:
            gaps.append(
                Gap(
                    source, float(entry["start"]), float(entry["end"]), str(entry.get("reason", ""))
                )
            )
        except (KeyError, TypeError, ValueError):
            log.warning("%s: ignoring a malformed gap in the manifest: %r", reader.path, entry)
    gaps.sort(key=lambda gap: gap.start)
    return gaps


class LogSource:
    """Frames of a recording file; ``async for item in LogSource(path)``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        speed: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if speed is not None and not speed > 0:
            raise InvalidArgument(f"replay speed must be > 0, got {speed}")
        self.path = Path(path)
        self.name = name if name is not None else self.path.name
        self.reader = open_reader(self.path, source=self.name)
        self.speed = speed
        self.clock = clock
        self.stats = SourceStats()
        self.notify: Emit = discard
        self._announced = False
        self._sleep = sleep
        self._gaps = _manifest_gaps(self.reader, self.name)
        self._frames: Iterator[Frame] | None = None
        self._closed = False
        # Paced mode: (first original time, clock time it maps to).
        self._anchor: tuple[float, float] | None = None
        self._held: Frame | None = None

    def __repr__(self) -> str:
        return f"LogSource({str(self.path)!r}, speed={self.speed}, frames={self.stats.frames})"

    def __aiter__(self) -> LogSource:
        if not self._announced:
            self._announced = True
            self.notify(SourceConnected(time=self.clock.time(), source=self.name))
        return self

    async def __anext__(self) -> Frame | Gap:
        if self._closed:
            raise StopAsyncIteration
        frame = self._held
        self._held = None
        if frame is None:
            if self._frames is None:
                self._frames = iter(self.reader)
            frame = next(self._frames, None)
            if frame is None:
                self._finish()
                raise StopAsyncIteration
        gaps = self._gaps
        if gaps and gaps[0].end <= frame.time:
            self._held = frame
            return self._deliver_gap(gaps.pop(0))
        if self.speed is None:
            self._follow(frame.time)
        else:
            frame.time = await self._pace(frame.time, self.speed)
        stats = self.stats
        stats.frames += 1
        stats.bytes += len(frame.raw)
        if frame.kind is None:
            stats.invalid += 1
        return frame

    def _deliver_gap(self, gap: Gap) -> Gap:
        self.stats.note_gap(gap)
        if self.speed is None:
            self._follow(gap.end)
            return gap
        anchor = self._anchor
        if anchor is None:
            return gap
        first, start = anchor
        scale = 1.0 / self.speed
        return Gap(
            gap.source,
            start + (gap.start - first) * scale,
            start + (gap.end - first) * scale,
            gap.reason,
        )

    def _follow(self, time: float) -> None:
        clock = self.clock
        if isinstance(clock, ManualClock) and time > clock.time():
            clock.set(time)

    async def _pace(self, original: float, speed: float) -> float:
        now = self.clock.time()
        if self._anchor is None:
            self._anchor = (original, now)
            return now
        first, start = self._anchor
        due = start + (original - first) / speed
        # Pacing from a fixed anchor rather than frame to frame keeps errors from adding up.
        if due > now:
            await self._sleep(due - now)
            now = self.clock.time()
        return max(now, due)

    def _finish(self) -> None:
        reader = self.reader
        if reader.truncated_bytes:
            message = (
                f"{self.path}: the last record is cut short ({reader.truncated_bytes} bytes "
                "ignored)"
            )
            self.stats.note_error(message)
            log.warning("%s", message)
        if reader.index_problem and reader.estimated_times:
            log.warning(
                "%s: %s; %d receive times estimated from message timestamps",
                self.path,
                reader.index_problem,
                reader.estimated_times,
            )
        self._closed = True

    async def aclose(self) -> None:
        self._closed = True
        frames = self._frames
        if frames is not None and hasattr(frames, "close"):
            frames.close()  # closes the recording files now, not at garbage collection
        self._frames = None
