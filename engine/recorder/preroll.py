"""The pre-roll: the last few seconds of stream, kept so a recording can start before its trigger.

A ring of (receive time, raw bytes) bounded two ways: by age (``seconds``
before the newest record) and by memory (``max_bytes`` of raw payload). Camera
frames make bytes the bound that bites: two seconds of 30 fps JPEGs is several
megabytes, and a recorder must never grow without limit because a camera got
busier. Only raw bytes are kept, never decoded messages, so the bound is the
real cost. Age is measured in receive times, never the wall clock.
"""

from __future__ import annotations

from collections import deque

from engine.core.frame import Frame
from engine.errors import InvalidArgument


class PreRoll:
    """Records of the last ``seconds`` (inclusive), at most ``max_bytes`` of payload.

    When the byte bound bites, the oldest records go first, so the pre-roll is
    shorter than asked but always ends at the newest record. ``dropped`` counts
    records evicted for the byte bound (the time bound is the normal case).
    """

    __slots__ = ("_items", "bytes", "dropped", "max_bytes", "seconds")

    def __init__(self, seconds: float, max_bytes: int) -> None:
        if seconds < 0 or max_bytes < 0:
            raise InvalidArgument(
                f"pre-roll bounds must not be negative (seconds={seconds}, max_bytes={max_bytes})"
            )
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._items: deque[tuple[float, bytes]] = deque()
        self.bytes = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"PreRoll({len(self._items)} records, {self.bytes} bytes, {self.seconds}s/{self.max_bytes}B)"

    @property
    def oldest(self) -> float | None:
        return self._items[0][0] if self._items else None

    @property
    def newest(self) -> float | None:
        return self._items[-1][0] if self._items else None

    def keep(self, frame: Frame) -> None:
        """Keep one frame's record and evict what fell out of either bound (the hot path)."""
        items = self._items
        time = frame.time
        raw = frame.raw
        items.append((time, raw))
        total = self.bytes + len(raw)
        horizon = time - self.seconds
        while items[0][0] < horizon:  # stops at the newest record at the latest
            total -= len(items.popleft()[1])
        if total > self.max_bytes:
            # Oldest first; a record larger than the whole budget goes too, with all before it.
            while total > self.max_bytes:
                total -= len(items.popleft()[1])
                self.dropped += 1
        self.bytes = total

    def push(self, time: float, raw: bytes) -> None:
        """Keep one record received at ``time`` (``keep`` takes a frame)."""
        self.keep(Frame(raw, time, 0, kind=None))

    def take(self, since: float) -> list[tuple[float, bytes]]:
        """The records received at or after ``since``, oldest first; the ring is emptied."""
        items = self._items
        while items and items[0][0] < since:
            items.popleft()
        out = list(items)
        self.clear()
        return out

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0
