"""What every source is: an async iterator of frames and gaps, with counters.

The dispatcher does not care where frames come from; a websocket, a replayed
recording and the in-process simulator all look the same to recorders and
rules. Each source stamps frames with its own sequence numbers and with
receive times from the clock it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

from engine.core.frame import Frame, Gap
from engine.events import Emit

T = TypeVar("T")
KEPT = 1000  # the newest gaps and errors a source keeps; the counts cover them all


@dataclass
class SourceStats:
    """Counters a source keeps; ``cuecap`` prints them in its summaries.

    An engine left running for weeks, or a stream that loses every other
    message, must not grow a list per gap: ``gaps`` and ``errors`` keep the
    newest ``KEPT``, while ``gap_count`` and ``gap_seconds`` count every gap.
    """

    frames: int = 0
    bytes: int = 0
    invalid: int = 0
    reconnects: int = 0
    gaps: list[Gap] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    gap_count: int = 0
    gap_seconds: float = 0.0

    def note_gap(self, gap: Gap) -> None:
        self.gap_count += 1
        self.gap_seconds += gap.duration
        _keep(self.gaps, gap)

    def note_error(self, message: str) -> None:
        _keep(self.errors, message)


def _keep(items: list[T], item: T) -> None:
    items.append(item)
    if len(items) > KEPT:
        del items[0]


class Source(Protocol):
    """``notify`` receives ``SourceConnected`` when the source is up (the engine sets it)."""

    name: str
    stats: SourceStats
    notify: Emit

    def __aiter__(self) -> AsyncIterator[Frame | Gap]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Pourable(Protocol):
    """A source that can also hand its items to callbacks: no generator hop per message.

    At ~100k messages a second, resuming an async generator per message is a cost
    of its own; a source that owns its receive loop calls straight into the
    consumer instead. The items, their order and the counters are what iterating
    gives.
    """

    async def pour(
        self, on_frame: Callable[[Frame], object], on_gap: Callable[[Gap], object]
    ) -> None: ...

    async def pour_raw(
        self,
        write: Callable[[bytes, float], object],
        on_gap: Callable[[Gap], object],
        limit: int | None = None,
    ) -> bool: ...


async def unless_closed(step: Awaitable[T], closing: asyncio.Event) -> asyncio.Future[T] | None:
    """Await ``step`` unless ``closing`` is set first: its finished future, or None.

    A source's ``aclose()`` must interrupt a connection attempt or a fetch that
    may wait for seconds; the step is cancelled (and awaited) when closing wins.
    """
    task = asyncio.ensure_future(step)
    closed = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    return None if task.cancelled() else task
