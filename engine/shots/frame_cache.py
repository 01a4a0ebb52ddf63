"""The newest camera frames carried by event streams, per source, in memory.

The engine calls ``update`` for every frame of every source, so it must cost
almost nothing for the frames it ignores: one byte compare. Image frames are
kept per source in a short history bounded by age and by bytes (images are
~100 KB each at up to 30 fps), so a shot "two seconds before the event" is
served from memory; older moments come from recordings on disk
(``find_in_recordings``).
"""

from __future__ import annotations

import bisect
import json
import math
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from engine.core.fieldpath import image_path
from engine.core.frame import KINDS, Frame
from engine.recording.open import open_reader

# First byte of a serialized PurpleDropEvent holding an ``image`` (field 3, length-delimited).
_IMAGE_TAG = next(number for number, name in KINDS.items() if name == "image") << 3 | 2


class _History:
    __slots__ = ("bytes", "frames", "times")

    def __init__(self) -> None:
        self.times: deque[float] = deque()
        self.frames: deque[Frame] = deque()
        self.bytes = 0


class FrameCache:
    """Image frames per source: ``latest(source)``, ``nearest(source, t)``.

    ``keep_past(False)`` keeps only the newest frame of each source, for a run
    whose shots are all live: at 30 fps of ~100 KB images, each second of
    ``max_age`` holds ~3 MB that nothing would read.
    """

    def __init__(self, max_age: float = 10.0, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.past = True
        self._sources: dict[str, _History] = {}

    def keep_past(self, keep: bool) -> None:
        """Whether to keep ``max_age`` seconds of frames (True) or the newest only."""
        self.past = keep

    def update(self, frame: Frame) -> None:
        """Offer a frame; only images are kept. Frames of a source arrive in time order."""
        raw = frame.raw
        if type(frame) is not Frame:  # another schema: its image field path says
            path = image_path(frame.schema)
            if path is None or frame.kind != path.kind:
                return
        elif not raw or raw[0] != _IMAGE_TAG:
            return
        history = self._sources.get(frame.source)
        if history is None:
            history = self._sources[frame.source] = _History()
        times, frames = history.times, history.frames
        times.append(frame.time)
        frames.append(frame)
        history.bytes += len(raw)
        oldest = frame.time - self.max_age if self.past else frame.time
        while len(frames) > 1 and (times[0] < oldest or history.bytes > self.max_bytes):
            times.popleft()
            history.bytes -= len(frames.popleft().raw)

    def feed(self, frames: Iterable[Frame]) -> None:
        for frame in frames:
            self.update(frame)

    def sources(self) -> list[str]:
        return sorted(self._sources)

    def latest(self, source: str) -> Frame | None:
        history = self._sources.get(source)
        return history.frames[-1] if history and history.frames else None

    def nearest(self, source: str, time: float, tolerance: float = math.inf) -> Frame | None:
        """The kept image frame closest in receive time to ``time``, within ``tolerance``."""
        history = self._sources.get(source)
        if history is None or not history.frames:
            return None
        times = history.times
        i = bisect.bisect_left(times, time)
        best: Frame | None = None
        best_distance = math.inf
        for j in (i - 1, i):
            if 0 <= j < len(times):
                distance = abs(times[j] - time)
                if distance < best_distance:
                    best, best_distance = history.frames[j], distance
        return best if best_distance <= tolerance else None

    def span(self, source: str) -> tuple[float, float] | None:
        """Receive times of the oldest and newest kept frames of ``source``."""
        history = self._sources.get(source)
        if history is None or not history.times:
            return None
        return history.times[0], history.times[-1]


def _covers(manifest_file: Path, source: str, time: float, tolerance: float) -> bool:
    """Whether a recording may hold ``source``'s frames near ``time``, by its manifest."""
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True  # no usable manifest: the recording itself must tell
    if not isinstance(manifest, dict):
        return True
    recorded = manifest.get("source") or ""
    if recorded and recorded != source:
        return False
    first, last = manifest.get("first_time"), manifest.get("last_time")
    if isinstance(first, int | float) and isinstance(last, int | float):
        return first - tolerance <= time <= last + tolerance
    return True


def find_in_recordings(
    folder: str | Path, source: str, time: float, tolerance: float
) -> Frame | None:
    """The image frame nearest ``time`` (within ``tolerance``) in the recordings under ``folder``.

    Manifests narrow the search to recordings of that source spanning the
    moment; blocking file I/O, so the stream backend runs it on a worker thread.
    """
    best: Frame | None = None
    best_distance = math.inf
    paths = [*Path(folder).rglob("*.bin"), *Path(folder).rglob("*.mcap")]
    for path in sorted(paths):
        if not _covers(Path(f"{path}.json"), source, time, tolerance):
            continue
        reader = open_reader(path, source=source)
        image = image_path(reader.schema)
        image_kind = image.kind if image is not None else None
        for frame in reader:
            if frame.kind == image_kind:
                distance = abs(frame.time - time)
                if distance < best_distance:
                    best, best_distance = frame, distance
                elif frame.time > time:
                    break  # times only grow from here
    return best if best_distance <= tolerance else None
