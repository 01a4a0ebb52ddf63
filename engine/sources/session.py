"""One recording session: a source poured into a writer until told to stop.

``cuecap record`` and the ingest benchmark run ``record_stream``; ``EventRecorder``
runs ``run_session`` with an engine recorder in place of the bare writer, so
what is measured is what users run. The loop does the least per
message (one ``write``); everything else happens on the side: a timer flushes
the writer while the stream is idle, so a crash loses under a second even when
nothing arrives, and the stop conditions (duration, record count, a stop event,
the source giving up, a write error) all end in ``writer.close`` with the
reason in the manifest. Nothing already written is lost on any of those paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, NoReturn

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.core.frame import Frame, Gap
from engine.core.humanize import format_bytes
from engine.errors import InvalidArgument
from engine.recording.format import RecordingError
from engine.recording.writer import Manifest, RecordingWriter
from engine.sources.base import Pourable, Source, SourceStats

log = logging.getLogger(__name__)

STOP_REQUESTED = "stopped"
STOP_DURATION = "duration"
STOP_COUNT = "count"
STOP_SOURCE_ENDED = "source ended"
STOP_SOURCE_LOST = "source lost"
STOP_WRITE_ERROR = "write error"
STOP_ERROR = "error"
STOP_CANCELLED = "cancelled"


@dataclass
class RecordingSummary:
    """What a session recorded and why it stopped; the CLI prints it."""

    path: str
    records: int
    bytes: int
    counts: dict[str, int]
    started_at: float
    stopped_at: float
    stop_reason: str
    reconnects: int = 0
    invalid: int = 0
    gaps: list[Gap] = field(default_factory=list)  # the newest (SourceStats.KEPT)
    error: str | None = None
    manifest: Manifest | None = None
    gap_count: int | None = None  # every gap, also those ``gaps`` no longer holds
    gap_seconds: float | None = None

    @classmethod
    def of(
        cls,
        manifest: Manifest,
        stats: SourceStats,
        *,
        started_at: float,
        stopped_at: float,
        stop_reason: str,
        error: str | None = None,
    ) -> RecordingSummary:
        """The summary of a closed recording (``manifest``) of a source with ``stats``."""
        return cls(
            path=manifest.path,
            records=manifest.records,
            bytes=manifest.bytes,
            counts=dict(manifest.counts),
            started_at=started_at,
            stopped_at=stopped_at,
            stop_reason=stop_reason,
            reconnects=stats.reconnects,
            invalid=stats.invalid,
            gaps=list(stats.gaps),
            gap_count=stats.gap_count,
            gap_seconds=stats.gap_seconds,
            error=error,
            manifest=manifest,
        )

    @property
    def seconds(self) -> float:
        return self.stopped_at - self.started_at

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "records": self.records,
            "bytes": self.bytes,
            "counts": dict(self.counts),
            "seconds": round(self.seconds, 6),
            "stop_reason": self.stop_reason,
            "reconnects": self.reconnects,
            "invalid": self.invalid,
            "gaps": [
                {
                    "start": g.start,
                    "end": g.end,
                    "seconds": round(g.duration, 6),
                    "reason": g.reason,
                }
                for g in self.gaps
            ],
            "error": self.error,
        }

    def lines(self) -> list[str]:
        """A short human summary, one fact a line."""
        out = [
            f"{self.path}: {self.records} records, {format_bytes(self.bytes)} "
            f"in {self.seconds:.1f} s (stopped: {self.stop_reason})"
        ]
        width = max((len(kind) for kind in self.counts), default=0)
        out.extend(
            f"  {kind:<{width}}  {count}"
            for kind, count in sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        )
        count = len(self.gaps) if self.gap_count is None else self.gap_count
        lost = (
            sum(gap.duration for gap in self.gaps) if self.gap_seconds is None else self.gap_seconds
        )
        out.append(
            f"reconnects: {self.reconnects}, gaps: {count} ({lost:.1f} s without data), "
            f"invalid frames: {self.invalid}"
        )
        if self.error:
            out.append(f"error: {self.error}")
        return out


async def _pour(source: Source, writer: RecordingWriter, max_records: int | None) -> str:
    """The hot loop: frames to the writer. Returns why it ended."""
    if isinstance(source, Pourable):
        done = await source.pour_raw(writer.write, writer.note_gap, max_records)
        return STOP_COUNT if done else STOP_SOURCE_ENDED
    write = writer.write
    left = max_records if max_records is not None else -1
    async for item in source:
        if isinstance(item, Frame):  # Frame, or another schema's frame (a subclass)
            write(item.raw, item.time)
            left -= 1
            if left == 0:
                return STOP_COUNT
        else:
            writer.note_gap(item)
    return STOP_SOURCE_ENDED


async def _tick_every(tick: Callable[[float], None], clock: Clock, period: float) -> NoReturn:
    while True:
        await asyncio.sleep(period)
        tick(clock.time())


async def run_session(
    pour: Coroutine[Any, Any, str],
    tick: Callable[[float], None],
    *,
    clock: Clock,
    period: float,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
) -> tuple[str, str | None]:
    """Run ``pour`` with ``tick(now)`` every ``period`` s until the first stop condition.

    ``pour`` moves a source's frames somewhere and returns why it ended; the
    tick keeps flushing while the stream is idle. Returns ``(reason, error)``:
    the pour's reason or its failure, a failed tick, ``stop`` being set, or
    ``duration`` passing. Everything it started is finished before it returns;
    a cancellation propagates (after that cleanup).
    """
    pouring = asyncio.ensure_future(pour)
    ticker = asyncio.ensure_future(_tick_every(tick, clock, period))
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    tasks = [t for t in (pouring, ticker, stopper) if t is not None]
    try:
        done, _ = await asyncio.wait(tasks, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
        if pouring in done:
            return _outcome(pouring)
        if ticker in done:
            return _outcome(ticker)
        if stopper is not None and stopper in done:
            return STOP_REQUESTED, None
        return STOP_DURATION, None
    finally:
        for task in tasks:
            # A task already being cancelled (the loop shutting down cancels every task) is
            # left to finish its cleanup: cancelling it again would interrupt that cleanup,
            # e.g. a websocket close handshake, and leave the connection open.
            if not task.done() and not task.cancelling():
                task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


async def close_source(source: Source) -> None:
    """Close ``source``; a failure is logged, never raised (it must not cost the recording)."""
    try:
        await source.aclose()
    except Exception as exc:
        log.warning("closing %s failed: %s", source.name, exc)


def session_extra(stats: SourceStats, error: str | None) -> dict[str, object]:
    """What a session adds to its manifest's ``extra``: the source's troubles, the error."""
    extra: dict[str, object] = {
        "reconnects": stats.reconnects,
        "invalid": stats.invalid,
        "source_errors": list(stats.errors),
    }
    if error:
        extra["error"] = error
    return extra


async def record_stream(
    source: Source,
    writer: RecordingWriter,
    *,
    clock: Clock = SYSTEM_CLOCK,
    duration: float | None = None,
    max_records: int | None = None,
    stop: asyncio.Event | None = None,
    flush_period: float | None = None,
) -> RecordingSummary:
    """Record ``source`` into ``writer`` until a stop condition; always closes both.

    ``duration`` is in seconds of the event loop's time (real seconds, also when
    ``clock`` is virtual); ``stop`` ends the session when set from the loop
    (use ``loop.call_soon_threadsafe(stop.set)`` from another thread). The
    flush timer runs every ``flush_period`` seconds (default: half the
    writer's ``flush_interval``) and flushes once that interval has passed.
    """
    if max_records is not None and max_records < 1:
        raise InvalidArgument(f"max_records must be >= 1, got {max_records}")
    if duration is not None and duration < 0:
        raise InvalidArgument(f"duration must be >= 0, got {duration}")
    started_at = clock.time()
    period = flush_period if flush_period is not None else max(writer.flush_interval / 2, 0.01)
    reason: str = STOP_CANCELLED
    error: str | None = None
    try:
        reason, error = await run_session(
            _pour(source, writer, max_records),
            writer.maybe_flush,
            clock=clock,
            period=period,
            duration=duration,
            stop=stop,
        )
    finally:
        await close_source(source)
        stopped_at = clock.time()
        writer.manifest.extra.update(session_extra(source.stats, error))
        try:
            manifest = writer.close(stop_reason=reason, closed_at=stopped_at)
        except RecordingError as exc:
            error = f"{error}; {exc}" if error else str(exc)
            manifest = writer.manifest
    if error:
        log.error("recording %s stopped: %s", writer.path, error)
    return RecordingSummary.of(
        manifest,
        source.stats,
        started_at=started_at,
        stopped_at=stopped_at,
        stop_reason=reason,
        error=error,
    )


def _outcome(task: asyncio.Future[str] | asyncio.Future[NoReturn]) -> tuple[str, str | None]:
    exc = task.exception()
    if exc is None:
        return task.result(), None
    if isinstance(exc, RecordingError):
        return STOP_WRITE_ERROR, str(exc)
    if isinstance(exc, ConnectionError):
        return STOP_SOURCE_LOST, str(exc)
    return STOP_ERROR, f"{type(exc).__name__}: {exc}"
