"""What a running engine is doing now: one typed, JSON-able snapshot of all its parts.

``Engine.status()`` returns an ``EngineStatus``: every source, recorder,
camera and rule by name with its present state (read off the parts) and its
recent past (kept by ``RunHistory`` from the events). The status page, the
JSON API (``GET /api/status``) and anything else that asks read this one
model; ``to_json()`` gives its stable JSON form, with enums as their values
and paths as download names relative to the recordings or shots folder.

Nothing here blocks or writes: a snapshot reads counters and a few bounded
deques, so building one a second costs nothing the engine would notice.
Text that reaches it from the rule files or from errors passes through the
rule set's ``redact``, so a token given as ``${TOKEN}`` is never shown.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from engine.errors import UnknownName
from engine.events import RecordingStarted, RuleFired, ShotErrored, ShotSaved
from engine.rules.describe import action_text, trigger_text
from engine.runtime.history import Note, RunHistory

if TYPE_CHECKING:
    from engine.recording.writer import Manifest
    from engine.runtime.engine import Engine

SEGMENTS_SHOWN = 20  # per recorder, newest last
RATE_WINDOW = 10.0  # seconds over which message and byte rates are measured
_SAMPLES = 12


class RecorderState(enum.StrEnum):
    """A recorder's state as the page and API show it."""

    IDLE = "idle"
    RECORDING = "recording"
    COOLING_DOWN = "cooling_down"
    ERROR = "error"
    DISABLED = "disabled"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    type: str
    connected: bool
    closed: str  # why it ended ("" while it runs)
    frames: int
    bytes: int
    invalid: int
    reconnects: int
    gaps: int
    last_gap: str  # "" when none: "12.5 s (connection lost)"
    frame_rate: float  # messages a second over the last RATE_WINDOW
    byte_rate: float


@dataclass(frozen=True, slots=True)
class SegmentStatus:
    """One segment file; ``path`` is its download name under the recordings folder."""

    recorder: str
    path: str | None
    file: str
    start_reason: str
    stop_reason: str  # "" while it is being written
    first_time: float | None
    last_time: float | None
    records: int
    bytes: int
    open: bool


@dataclass(frozen=True, slots=True)
class RecorderStatus:
    name: str
    source: str
    state: RecorderState
    current: SegmentStatus | None
    segments: tuple[SegmentStatus, ...]  # the last SEGMENTS_SHOWN closed, oldest first
    recordings: int
    segment_count: int
    errors: int
    last_error: str


@dataclass(frozen=True, slots=True)
class ShotStatusInfo:
    """One shot; ``path`` is its download name under the shots folder (None: elsewhere)."""

    camera: str
    task: str
    time: float
    path: str | None
    ok: bool
    tries: int
    reason: str


@dataclass(frozen=True, slots=True)
class CameraStatus:
    name: str
    type: str
    ok: int
    failed: int
    retries: int
    waiting: int
    in_flight: int
    last_shot: ShotStatusInfo | None
    last_error: ShotStatusInfo | None


@dataclass(frozen=True, slots=True)
class FiringStatus:
    """One firing and its trace: what triggered it, from where, and why (``detail``)."""

    rule: str
    time: float
    trigger: str
    event: str
    source: str
    count: int
    detail: str


@dataclass(frozen=True, slots=True)
class RuleStatus:
    name: str
    description: str
    enabled: bool
    triggers: tuple[str, ...]  # as ``cuecap check`` writes them
    actions: tuple[str, ...]
    next_times: tuple[float, ...]  # the next fire time of each schedule trigger
    firings: int
    last_firings: tuple[FiringStatus, ...]  # newest first


@dataclass(frozen=True, slots=True)
class NoteStatus:
    time: float
    text: str


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """The whole engine now; ``to_json()`` for the API."""

    time: float
    started: float
    running: bool
    stop_reason: str
    virtual: bool
    dry_run: bool
    sources: tuple[SourceStatus, ...]
    recorders: tuple[RecorderStatus, ...]
    cameras: tuple[CameraStatus, ...]
    rules: tuple[RuleStatus, ...]
    errors: tuple[NoteStatus, ...]  # newest first
    error_count: int
    reloads: tuple[NoteStatus, ...]  # newest first
    shots: tuple[ShotStatusInfo, ...]  # the last shots taken, newest first

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        return out

    def source(self, name: str) -> SourceStatus:
        return _named(self.sources, name)

    def recorder(self, name: str) -> RecorderStatus:
        return _named(self.recorders, name)

    def camera(self, name: str) -> CameraStatus:
        return _named(self.cameras, name)

    def rule(self, name: str) -> RuleStatus:
        return _named(self.rules, name)


_T = TypeVar("_T")


def _named(items: Iterable[_T], name: str) -> _T:
    for item in items:
        if getattr(item, "name", None) == name:
            return item
    raise UnknownName(name)


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class Rates:
    """Message and byte rates per source from counters sampled now and then.

    Each ``sample`` keeps (time, frames, bytes) at most once a second; the rate
    is the difference across the samples of the last ``RATE_WINDOW`` seconds.
    """

    def __init__(self) -> None:
        self._samples: dict[str, deque[tuple[float, int, int]]] = {}

    def sample(self, name: str, now: float, frames: int, size: int) -> tuple[float, float]:
        samples = self._samples.get(name)
        if samples is None:
            samples = self._samples[name] = deque(maxlen=_SAMPLES)
        if not samples or now - samples[-1][0] >= 1.0:
            samples.append((now, frames, size))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW:
            samples.popleft()
        first = samples[0]
        span = now - first[0]
        if span <= 0:
            return 0.0, 0.0
        return (frames - first[1]) / span, (size - first[2]) / span


def relative_to(root: Path, path: str | Path) -> str | None:
    """``path`` as a download name under ``root``, or None when it lies elsewhere."""
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def _download(root: Path, path: str | Path | None) -> str | None:
    return relative_to(root, path) if path is not None else None


def _segment(root: Path, name: str, m: Manifest) -> SegmentStatus:
    return SegmentStatus(
        recorder=name,
        path=_download(root, m.path),
        file=Path(m.path).name,
        start_reason=m.start_reason,
        stop_reason=m.stop_reason,
        first_time=m.first_time,
        last_time=m.last_time,
        records=m.records,
        bytes=m.bytes,
        open=False,
    )


def _shot(root: Path, event: ShotSaved | ShotErrored) -> ShotStatusInfo:
    """A shot as shown; its reason may quote a camera's answer, never its password."""
    ok = isinstance(event, ShotSaved)
    return ShotStatusInfo(
        camera=event.camera,
        task=event.task,
        time=event.time,
        path=_download(root, event.path) if ok else None,
        ok=ok,
        tries=event.tries,
        reason=event.reason,
    )


def _firing(event: RuleFired, redact: Callable[[str], str]) -> FiringStatus:
    return FiringStatus(
        rule=event.rule,
        time=event.time,
        trigger=event.trigger,
        event=event.event,
        source=event.source,
        count=event.count,
        detail=redact(event.detail),
    )


def _notes(notes: Iterable[Note], redact: Callable[[str], str]) -> tuple[NoteStatus, ...]:
    return tuple(NoteStatus(n.time, redact(n.text)) for n in reversed(list(notes)))


def _state(value: Any) -> RecorderState:
    try:
        return RecorderState(str(getattr(value, "value", value)))
    except ValueError:
        return RecorderState.ERROR


def build_status(engine: Engine, history: RunHistory, rates: Rates) -> EngineStatus:
    """The snapshot of ``engine`` now (``Engine.status()`` calls this)."""
    now = engine.clock.time()
    rules = engine.rules
    redact = rules.redact
    recordings = engine.recordings_root
    shots = engine.shots
    shots_root = Path(shots.settings.folder if shots is not None else rules.settings.shots.folder)

    sources = []
    for name, source in engine.known_sources().items():
        stats = source.stats
        seen = history.source(name)
        frame_rate, byte_rate = rates.sample(name, now, stats.frames, stats.bytes)
        gap = seen.last_gap
        config = rules.sources.get(name)
        sources.append(
            SourceStatus(
                name=name,
                type=str(getattr(config, "type", type(source).__name__)),
                connected=bool(getattr(source, "connected", seen.connected)) and not seen.closed,
                closed=redact(seen.closed),
                frames=stats.frames,
                bytes=stats.bytes,
                invalid=stats.invalid,
                reconnects=stats.reconnects,
                gaps=stats.gap_count,
                last_gap=f"{gap.end - gap.start:.1f} s ({gap.reason})" if gap is not None else "",
                frame_rate=round(frame_rate, 2),
                byte_rate=round(byte_rate, 1),
            )
        )

    recorders = []
    for name, recorder in engine.recorders.items():
        current = None
        if recorder.path is not None:
            started: RecordingStarted | None = history.started.get(name)
            current = SegmentStatus(
                recorder=name,
                path=_download(recordings, recorder.path),
                file=recorder.path.name,
                start_reason=started.reason if started is not None else "",
                stop_reason="",
                first_time=started.time if started is not None else None,
                last_time=now,
                records=recorder.records,
                bytes=recorder.bytes,
                open=True,
            )
        closed = list(recorder.segments)[-SEGMENTS_SHOWN:]
        recorders.append(
            RecorderStatus(
                name=name,
                source=recorder.config.source or "",
                state=_state(recorder.state),
                current=current,
                segments=tuple(_segment(recordings, name, m) for m in closed),
                recordings=recorder.recordings,
                segment_count=recorder.seq,
                errors=recorder.errors,
                last_error=redact(recorder.last_error or ""),
            )
        )

    cameras = []
    load: Mapping[str, tuple[int, int]] = shots.load() if shots is not None else {}
    for name, camera_config in rules.cameras.items():
        shot_history = history.camera(name)
        waiting, in_flight = load.get(name, (0, 0))
        cameras.append(
            CameraStatus(
                name=name,
                type=str(camera_config.type),
                ok=shot_history.ok,
                failed=shot_history.failed,
                retries=shot_history.retries,
                waiting=waiting,
                in_flight=in_flight,
                last_shot=_shot(shots_root, shot_history.last_shot)
                if shot_history.last_shot
                else None,
                last_error=_shot(shots_root, shot_history.last_error)
                if shot_history.last_error
                else None,
            )
        )

    next_times = engine.scheduler.next_times()
    rule_states = []
    for name, rule in rules.rules.items():
        times = sorted(
            t for (rule_name, _), t in next_times.items() if rule_name == name and t is not None
        )
        rule_states.append(
            RuleStatus(
                name=name,
                description=redact(rule.description),
                enabled=rule.enabled,
                triggers=tuple(redact(trigger_text(t)) for t in rule.when),
                actions=tuple(redact(action_text(a)) for a in rule.do),
                next_times=tuple(times),
                firings=engine.stats.firing_counts[name],
                last_firings=tuple(
                    _firing(f, redact) for f in reversed(history.firings.get(name, ()))
                ),
            )
        )

    return EngineStatus(
        time=now,
        started=engine.started_at,
        running=engine.running,
        stop_reason=engine.stop_reason,
        virtual=not engine.time.moves_by_itself,
        dry_run=engine.dry_run,
        sources=tuple(sources),
        recorders=tuple(recorders),
        cameras=tuple(cameras),
        rules=tuple(rule_states),
        errors=_notes(history.errors, redact),
        error_count=history.error_count,
        reloads=_notes(history.reloads, redact),
        shots=tuple(_shot(shots_root, s) for s in reversed(history.shots)),
    )
