"""What every source is: an async iterator of frames and gaps, with counters.

The dispatcher does not care where frames come from; a websocket, a replayed
recording and the in-process simulator all look the same to recorders and
rules. Each source stamps frames with its own sequence numbers and with
receive times from the clock it was given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from engine.core.frame import Frame, Gap
from engine.events import Emit


@dataclass
class SourceStats:
    """Counters a source keeps; ``cuecap`` prints them in its summaries."""

    frames: int = 0
    bytes: int = 0
    invalid: int = 0
    reconnects: int = 0
    gaps: list[Gap] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Source(Protocol):
    """``notify`` receives ``SourceConnected`` when the source is up (the engine sets it)."""

    name: str
    stats: SourceStats
    notify: Emit

    def __aiter__(self) -> AsyncIterator[Frame | Gap]: ...

    async def aclose(self) -> None: ...
