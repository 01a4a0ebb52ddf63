"""What a running engine remembers of its recent past, for its status and metrics.

The engine's parts know their present (a recorder's state, a source's
counters); what the status page shows beside it is the recent past: the last
firings of each rule with why they fired, each camera's last shot and last
error, the errors and reloads of the run. ``RunHistory`` keeps those from the
engine's events, in bounded deques so a run of months stays flat in memory;
counts go on beyond the bounds.

It is fed on the loop thread by ``Engine.subscribe`` and does no I/O: one
dictionary update per event, and events are rare beside frames.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from engine.events import (
    Event,
    RecordingErrored,
    RecordingStarted,
    RecordingStopped,
    ReloadApplied,
    ReloadRefused,
    RuleFired,
    ShotErrored,
    ShotSaved,
    SourceClosed,
    SourceConnected,
    SourceGap,
)

FIRINGS_PER_RULE = 10
ERRORS_KEPT = 100
RELOADS_KEPT = 20
SHOTS_KEPT = 50


@dataclass(frozen=True, slots=True)
class Note:
    """One line of the run's log of errors or reloads."""

    time: float
    text: str


@dataclass(slots=True)
class CameraHistory:
    ok: int = 0
    failed: int = 0
    retries: int = 0
    last_shot: ShotSaved | None = None
    last_error: ShotErrored | None = None


@dataclass(slots=True)
class SourceHistory:
    connected: bool = False
    closed: str = ""  # why it ended, once it has
    last_gap: SourceGap | None = None


class RunHistory:
    """The recent past of one run, fed with every event (``on_event``)."""

    def __init__(self) -> None:
        self.firings: dict[str, deque[RuleFired]] = {}
        self.cameras: dict[str, CameraHistory] = {}
        self.sources: dict[str, SourceHistory] = {}
        self.shots: deque[ShotSaved] = deque(maxlen=SHOTS_KEPT)
        self.started: dict[str, RecordingStarted] = {}  # each recorder's latest start
        self.errors: deque[Note] = deque(maxlen=ERRORS_KEPT)
        self.reloads: deque[Note] = deque(maxlen=RELOADS_KEPT)
        self.error_count = 0
        self.reload_count = 0
        self.written: dict[str, int] = {}  # bytes of closed segments, per recorder
        self._handlers: dict[type[Event], Callable[[Event], None]] = {
            RuleFired: self._fired,  # type: ignore[dict-item]
            RecordingStopped: self._stopped,  # type: ignore[dict-item]
            ShotSaved: self._saved,  # type: ignore[dict-item]
            ShotErrored: self._shot_error,  # type: ignore[dict-item]
            RecordingStarted: self._recording,  # type: ignore[dict-item]
            RecordingErrored: self._recording_error,  # type: ignore[dict-item]
            SourceConnected: self._connected,  # type: ignore[dict-item]
            SourceGap: self._gap,  # type: ignore[dict-item]
            SourceClosed: self._closed,  # type: ignore[dict-item]
            ReloadApplied: self._reloaded,  # type: ignore[dict-item]
            ReloadRefused: self._refused,  # type: ignore[dict-item]
        }

    def on_event(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def error(self, time: float, text: str) -> None:
        self.error_count += 1
        self.errors.append(Note(time, text))

    # -- by kind ---------------------------------------------------------------

    def _fired(self, event: RuleFired) -> None:
        kept = self.firings.get(event.rule)
        if kept is None:
            kept = self.firings[event.rule] = deque(maxlen=FIRINGS_PER_RULE)
        kept.append(event)

    def camera(self, name: str) -> CameraHistory:
        found = self.cameras.get(name)
        if found is None:
            found = self.cameras[name] = CameraHistory()
        return found

    def _saved(self, event: ShotSaved) -> None:
        camera = self.camera(event.camera)
        camera.ok += 1
        camera.retries += max(0, event.tries - 1)
        camera.last_shot = event
        self.shots.append(event)

    def _shot_error(self, event: ShotErrored) -> None:
        camera = self.camera(event.camera)
        camera.failed += 1
        camera.retries += max(0, event.tries - 1)
        camera.last_error = event
        self.error(event.time, f"camera {event.camera}: {event.reason}")

    def _recording(self, event: RecordingStarted) -> None:
        self.started[event.recorder] = event

    def _stopped(self, event: RecordingStopped) -> None:
        self.written[event.recorder] = self.written.get(event.recorder, 0) + event.bytes

    def _recording_error(self, event: RecordingErrored) -> None:
        self.error(event.time, f"recorder {event.recorder}: {event.error}")

    def source(self, name: str) -> SourceHistory:
        found = self.sources.get(name)
        if found is None:
            found = self.sources[name] = SourceHistory()
        return found

    def _connected(self, event: SourceConnected) -> None:
        source = self.source(event.source)
        source.connected = True
        source.closed = ""

    def _gap(self, event: SourceGap) -> None:
        self.source(event.source).last_gap = event

    def _closed(self, event: SourceClosed) -> None:
        source = self.source(event.source)
        source.connected = False
        source.closed = event.reason or "closed"
        if event.reason.startswith("failed"):
            self.error(event.time, f"source {event.source} {event.reason}")

    def _reloaded(self, event: ReloadApplied) -> None:
        self.reload_count += 1
        changed = ", ".join(f"{kind}: {', '.join(names)}" for kind, names in event.changes.items())
        self.reloads.append(Note(event.time, f"applied ({changed or 'no changes'})"))

    def _refused(self, event: ReloadRefused) -> None:
        self.reload_count += 1
        self.reloads.append(Note(event.time, "refused: " + "; ".join(event.errors)))
        self.error(event.time, "reload refused: " + "; ".join(event.errors))
