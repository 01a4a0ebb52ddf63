"""The recorder the engine runs: frames in, segment files and events out.

It wires the pure parts together: detectors say whether a frame is activity,
the policy decides, the state machine announces, segment files are written
with ``RecordingWriter``. ``feed`` is the hot path and stays synchronous: for
almost every frame it is one detector lookup, one policy call and one buffered
write. I/O errors never escape: a full disk or an unwritable folder closes what
was written (it stays readable), moves the recorder to ``error``, announces
``recording.error`` and lets the engine run on. The recorder tries again after
``retry_after`` (on ``tick``, or by itself when an event loop runs), or when
started or enabled.

Time: frames carry their receive times; ``tick(now)`` (which the engine calls
on a timer) lets a post-roll end while the stream is silent. Sources stamp a
frame and hand it over without awaiting in between, so a tick never overtakes
a frame received before it.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from engine.core.clock import Clock, FlushClock
from engine.core.frame import Frame, Gap
from engine.events import (
    Emit,
    EventKind,
    RecordingErrored,
    RecordingStarted,
    RecordingStopped,
)
from engine.recorder.config import RecorderConfig
from engine.recorder.decisions import (
    HOLD,
    IDLE,
    QUIET,
    REASON_ERROR,
    REASON_MANUAL,
    REASON_POST_ROLL,
    REASON_ROTATION,
    RECOVER,
    RESUME,
    ROTATE,
    START,
    STOP,
    WRITE,
    RecorderStateError,
    RecordingPolicy,
)
from engine.recorder.detectors import ActivityDetectors, build_detectors
from engine.recorder.machine import RecorderMachine
from engine.recorder.retention import timer_for
from engine.recorder.segments import SegmentFiles
from engine.recording.mcap import McapRecordingWriter
from engine.recording.writer import Manifest, RecordingWriter
from engine.sources.base import Pourable, Source
from engine.sources.session import STOP_COUNT, STOP_SOURCE_ENDED

log = logging.getLogger(__name__)

__all__ = ["Recorder", "RecorderStateError", "feed_source"]

SEGMENT_HISTORY = 1000


class Recorder:
    """One recorder from a rule file, fed the frames of its source.

    ``segments`` holds the manifests of the last ``SEGMENT_HISTORY`` files closed
    (bounded, so a recorder that runs for months keeps flat memory; ``seq``
    counts them all);
    ``state`` is one of idle, recording, cooling_down, disabled, error, closed.
    """

    def __init__(
        self,
        name: str,
        config: RecorderConfig,
        *,
        root: str | Path,
        emit: Emit,
        clock: Clock,
        detectors: ActivityDetectors | None = None,
        flushes: FlushClock = FlushClock.RECEIVE_TIME,
    ) -> None:
        """``flushes``: ``WHEN_TOLD`` leaves flushing to whoever calls ``flush``."""
        self.name = name
        self.config = config
        self.root = Path(root)
        self.clock = clock
        self._emit = emit
        self.detectors = (
            detectors
            if detectors is not None
            else build_detectors(config.activity, config.message_schema)
        )
        self._checks = self.detectors.checks  # by message type; most types have none
        self.policy = RecordingPolicy(
            pre_roll=config.pre_roll,
            pre_roll_bytes=config.pre_roll_bytes,
            post_roll=config.post_roll,
            min_activity=config.min_activity,
            activity_window=config.activity_window,
            max_segment_seconds=config.max_segment_seconds,
            max_segment_bytes=config.max_segment_bytes,
            exclude=config.exclude,
            enabled=config.enabled,
            retry_after=config.retry_after,
        )
        self._on_frame = self.policy.on_frame
        self._keep = self.policy.keep
        self.flushes = flushes
        self.files = SegmentFiles(name, config, self.root, flushes)
        self.machine = RecorderMachine(
            name,
            self._notify,
            initial=self.policy.state,
            retry_after=config.retry_after,
            on_retry=self.retry,
        )
        self.segments: deque[Manifest] = deque(maxlen=SEGMENT_HISTORY)
        self.recordings = 0  # recordings started (a rotated recording counts once)
        self.seq = 0  # segment files opened
        self.errors = 0
        self.last_error: str | None = None
        self._writer: RecordingWriter | McapRecordingWriter | None = None
        self._part = 0
        self._reason = ""
        self._seg_hits: dict[str, int] = {}
        self._source = config.source or ""
        self._explicit: Path | None = None  # a file name given to start(path=...)
        self._exact = False  # start(exact=True): that very name, never "-2"
        self.retention = timer_for(name, config, self.root, self._source)

    def __repr__(self) -> str:
        return f"Recorder({self.name!r}, state={self.state!r}, segments={len(self.segments)})"

    # -- public state ------------------------------------------------------------

    @property
    def state(self) -> str:
        return self.machine.state

    @property
    def recording(self) -> bool:
        """True while a segment is open."""
        return self._writer is not None

    @property
    def path(self) -> Path | None:
        """The file being written now, if any."""
        return self._writer.path if self._writer is not None else None

    @property
    def records(self) -> int:
        """Records in the open segment so far (0 when none is open)."""
        writer = self._writer
        return writer.records if writer is not None else 0

    @property
    def bytes(self) -> int:
        """Bytes of the open segment so far (0 when none is open)."""
        writer = self._writer
        return writer.bytes if writer is not None else 0

    # -- the hot path --------------------------------------------------------------

    def feed(self, frame: Frame) -> None:
        """Take one frame of this recorder's source (in receive order)."""
        check = self._checks.get(frame.kind)
        hit = None if check is None else check(frame)
        if hit is None and self.policy.state is IDLE:
            self._keep(frame)  # all an idle frame that is no activity needs
        else:
            self._decide(frame, hit)

    def _decide(self, frame: Frame, hit: str | None) -> None:
        """``feed`` for a frame that is activity or arrives while recording: ask the policy."""
        code = self._on_frame(frame, hit is not None)
        if code == WRITE:
            writer = self._writer
            try:
                # WRITE only comes while a recording is open, so there is a writer
                writer.write(frame.raw, frame.time)  # type: ignore[union-attr]
            except OSError as exc:
                self._fail(exc, frame.time)
                return
            if hit is not None:
                self._note_hit(hit, frame.time)
        elif code:
            self._apply(code, frame, hit)

    def feed_gap(self, gap: Gap) -> None:
        """The source was disconnected: the open segment's manifest records the hole,
        and detectors start afresh (a value before the hole is no previous value)."""
        self.detectors.restart()
        if self._writer is not None:
            self._writer.note_gap(gap)

    def tick(self, now: float) -> None:
        """Let time pass without frames: ends post-roll, flushes, retries after errors."""
        code = self.policy.on_tick(now)
        if code & STOP:
            self._stop_segment(self.policy.stop_reason, now, "timeout")
        elif code & QUIET:
            self.machine.fire("quiet")
        elif code & RECOVER:
            self.machine.fire("recover")
        writer = self._writer
        if writer is not None:
            try:
                writer.maybe_flush(now)
            except OSError as exc:
                self._fail(exc, now)
        if self.retention is not None:
            self.retention.tick(now, writer.path if writer is not None else None)

    def flush(self, now: float) -> None:
        """Push the open segment's records to the OS now (``FlushClock.WHEN_TOLD``'s hook)."""
        writer = self._writer
        if writer is not None:
            try:
                writer.flush(now)
            except OSError as exc:
                self._fail(exc, now)

    # -- commands ----------------------------------------------------------------

    async def start(
        self,
        reason: str = REASON_MANUAL,
        *,
        pre_roll: bool = True,
        path: str | os.PathLike[str] | None = None,
        exact: bool = False,
    ) -> Path | None:
        """Record until ``stop``, starting with the pre-roll (unless ``pre_roll=False``).

        ``path`` names the file instead of the templates (for code such as a
        seed-style ``EventRecorder.start("log.bin")``; rotated parts get
        ``-2``, ``-3``...). A taken ``path`` gets ``-2`` too, unless ``exact``:
        then opening fails. Already recording: the open recording is kept and
        now lasts until ``stop`` (``path`` is then ignored). Returns the file
        being written (None if opening it failed: the recorder is then in the
        error state, ``last_error`` says why). Raises ``RecorderStateError``
        when disabled or closed.
        """
        now = self.clock.time()
        code = self.policy.manual_start(now, pre_roll)
        if code & START:
            self._explicit = Path(path) if path is not None else None
            self._exact = exact and path is not None
        if code & RECOVER:
            self.machine.fire("recover")
        if code & HOLD:
            self.machine.fire("hold")
        elif code & START:
            self._begin(now, reason, None, "start")
        return self.path

    async def stop(
        self, reason: str = REASON_MANUAL, *, extra: Mapping[str, object] | None = None
    ) -> Manifest | None:
        """Close the open recording now (no post-roll); returns its last segment's manifest.

        ``extra`` is added to that manifest's ``extra`` (e.g. why a session ended).
        """
        now = self.clock.time()
        if self.policy.manual_stop(now) & STOP:
            return self._stop_segment(reason, now, "stop", extra)
        return None

    def enable(self) -> None:
        """Watch for activity again (also retries at once after an error)."""
        if self.policy.enable():
            self.machine.fire("enable")
        elif self.policy.recover():
            self.machine.fire("recover")

    def disable(self) -> None:
        """Close any open recording and ignore frames until ``enable``."""
        if self.state == "disabled":
            return
        now = self.clock.time()
        if self.policy.disable() & STOP:
            self.machine.fire("disable", stopped=self._close(self.policy.stop_reason, now))
        else:
            self.machine.fire("disable")

    def retry(self) -> None:
        """After an error: back to idle, so the next activity tries to write again."""
        if self.policy.recover():
            self.machine.fire("recover")

    def close(self, reason: str = "shutdown") -> None:
        """Close any open segment cleanly; the recorder then ignores frames for good."""
        if self.state == "closed":
            return
        now = self.clock.time()
        stopped = self._close(reason, now) if self.policy.close(reason) & STOP else None
        self.machine.fire("close", stopped=stopped)

    # -- internals -----------------------------------------------------------------

    def _apply(self, code: int, frame: Frame, hit: str | None) -> None:
        t = frame.time
        if not self._source:
            self._source = frame.source
        if code & STOP:
            self._stop_segment(self.policy.stop_reason, t, "timeout")
            if self.machine.state == "error":
                return
        if code & START:
            self._begin(t, self.policy.start_reason, hit, "activity")
            return  # the frame was in the pre-roll: written by _begin
        if code & RESUME:
            self.machine.fire("resume")
        elif code & QUIET:
            self.machine.fire("quiet")
        if code & ROTATE:
            self._rotate(t)
        if code & WRITE and self._writer is not None:
            try:
                self._writer.write(frame.raw, t)
            except OSError as exc:
                self._fail(exc, t)
                return
            if hit is not None:
                self._note_hit(hit, t)

    def _note_hit(self, label: str, t: float) -> None:
        # called right after a write, so there is a writer
        self._writer.note_activity(t)  # type: ignore[union-attr]
        self._seg_hits[label] = self._seg_hits.get(label, 0) + 1

    def _begin(self, now: float, reason: str, hit: str | None, trigger: str) -> None:
        """Open a recording: its first segment, then the pre-roll records."""
        records = self.policy.take_pre_roll()
        if trigger != "start":
            self._explicit = None
            self._exact = False
        self.recordings += 1
        self._part = 0
        self._reason = reason
        first = records[0][0] if records else now
        if not self._open(first, reason):
            return
        started = self._started(now, reason, hit)
        self.machine.fire(trigger, started=started)
        policy = self.policy
        for t, raw in records:
            if policy.account(t, len(raw)):
                self._rotate(t)
            writer = self._writer
            if writer is None:
                return  # failed while writing the pre-roll; the error is announced
            try:
                writer.write(raw, t)
            except OSError as exc:
                self._fail(exc, t)
                return
        if hit is not None and self._writer is not None:
            first_activity = policy.first_activity
            if first_activity is not None and first_activity != now:
                self._writer.note_activity(first_activity)
            self._note_hit(hit, now)

    def _open(self, time: float, reason: str) -> bool:
        self.seq += 1
        self._part += 1
        self._seg_hits = {}
        try:
            self._writer = self.files.open(
                time=time,
                seq=self.seq,
                part=self._part,
                reason=reason,
                source=self._source,
                extra={"recording": self.recordings},
                path=self._explicit,
                exact=self._exact and self._part == 1,
            )
        except (OSError, ValueError) as exc:
            self._fail(exc, time)
            return False
        return True

    def _rotate(self, t: float) -> None:
        stopped = self._close(self.policy.rotate_reason, t)
        if self._writer is None and self.policy.state == "error":
            return
        if not self._open(t, REASON_ROTATION):
            return
        self.machine.fire(
            "rotate", stopped=stopped, started=self._started(t, REASON_ROTATION, None)
        )

    def _stop_segment(
        self, reason: str, now: float, trigger: str, extra: Mapping[str, object] | None = None
    ) -> Manifest | None:
        closed_at = now
        if reason == REASON_POST_ROLL:
            closed_at = min(now, self.policy.last_activity + self.policy.post_roll)
        stopped = self._close(reason, closed_at, extra)
        if self.policy.state == "error":
            return None
        self.machine.fire(trigger, stopped=stopped)
        return self.segments[-1] if stopped is not None else None

    def _close(
        self, reason: str, now: float, extra: Mapping[str, object] | None = None
    ) -> dict[str, object] | None:
        """Close the open segment; its manifest joins ``segments``. A close error is announced."""
        writer = self._writer
        if writer is None:
            return None
        self._writer = None
        writer.manifest.extra["activity"] = dict(self._seg_hits)
        if extra:
            writer.manifest.extra.update(extra)
        error: OSError | None = None
        try:
            manifest = writer.close(stop_reason=reason, closed_at=now)
        except OSError as exc:
            manifest = writer.manifest
            manifest.extra["close_error"] = str(exc)
            error = exc
        self.segments.append(manifest)
        stopped = self._stopped(manifest, now)
        if error is not None:
            self._fail(error, now, stopped=stopped)
        return stopped

    def _fail(
        self, exc: BaseException, now: float, stopped: dict[str, object] | None = None
    ) -> None:
        """An I/O error: keep what is on disk, go to the error state, tell the rules."""
        message = str(exc)
        self.errors += 1
        self.last_error = message
        log.error("recorder %s: %s", self.name, message)
        path = None
        if self._writer is not None:
            writer = self._writer
            path = str(writer.path)
            self._writer = None
            writer.manifest.extra["error"] = message
            try:
                manifest = writer.close(stop_reason=REASON_ERROR, closed_at=now)
            except OSError:
                manifest = writer.manifest
            self.segments.append(manifest)
            stopped = self._stopped(manifest, now)
        self.policy.fail(now)
        if self.machine.state == "error":
            return
        self.machine.fire(
            "fail",
            stopped=stopped,
            error={
                "time": now,
                "recorder": self.name,
                "error": message,
                "path": path,
                "retry_after": self.config.retry_after,
            },
        )

    def _started(self, now: float, reason: str, hit: str | None) -> dict[str, object]:
        writer = self._writer
        assert writer is not None
        return {
            "time": now,
            "recorder": self.name,
            "source": self._source,
            "path": str(writer.path),
            "reason": reason,
            "activity": hit,
            "recording": self.recordings,
            "seq": self.seq,
            "part": self._part,
        }

    def _stopped(self, manifest: Manifest, now: float) -> dict[str, object]:
        return {
            "time": now,
            "recorder": self.name,
            "source": manifest.source,
            "path": manifest.path,
            "reason": manifest.stop_reason,
            "start_reason": manifest.start_reason,
            "records": manifest.records,
            "bytes": manifest.bytes,
            "first_time": manifest.first_time,
            "last_time": manifest.last_time,
            "first_activity": manifest.first_activity,
            "last_activity": manifest.last_activity,
            "recording": manifest.extra.get("recording"),
            "seq": manifest.extra.get("seq"),
            "part": manifest.extra.get("part"),
        }

    def _notify(self, name: str, data: Mapping[str, object]) -> None:
        facts = data if "time" in data else {**data, "time": self.clock.time()}
        self._emit(_EVENT_OF[EventKind(name)].from_facts(facts))


_EVENT_OF: dict[EventKind, type[RecordingStarted | RecordingStopped | RecordingErrored]] = {
    EventKind.RECORDING_STARTED: RecordingStarted,
    EventKind.RECORDING_STOPPED: RecordingStopped,
    EventKind.RECORDING_ERROR: RecordingErrored,
}


async def feed_source(recorder: Recorder, source: Source, *, max_frames: int | None = None) -> str:
    """Feed every item of ``source`` to ``recorder`` until it ends; returns why it ended.

    The loop of a recorder on its own source (``EventRecorder``, the ingest
    benchmark); the engine has its own, which also runs rules. Ends after
    ``max_frames`` frames if given. ``run_session`` runs it with a tick.
    """
    # Recorder.feed, inlined: a call less per frame, which shows at ~100k frames/s.
    checks = recorder._checks.get
    policy = recorder.policy
    keep = recorder._keep
    decide = recorder._decide
    idle = IDLE
    left = max_frames if max_frames is not None else -1
    if isinstance(source, Pourable):
        # The source calls in: no generator to resume per frame.
        def on_frame(item: Frame) -> None:
            nonlocal left
            check = checks(item.kind)
            hit = None if check is None else check(item)
            if hit is None and policy.state is idle:
                keep(item)
            else:
                decide(item, hit)
            left -= 1
            if left == 0:
                raise _Enough

        try:
            await source.pour(on_frame, recorder.feed_gap)
        except _Enough:
            return STOP_COUNT
        return STOP_SOURCE_ENDED
    async for item in source:
        if isinstance(item, Frame):  # Frame, or another schema's frame (a subclass)
            check = checks(item.kind)
            hit = None if check is None else check(item)
            if hit is None and policy.state is idle:
                keep(item)
            else:
                decide(item, hit)
            left -= 1
            if left == 0:
                return STOP_COUNT
        else:
            recorder.feed_gap(item)
    return STOP_SOURCE_ENDED


class _Enough(Exception):
    """``max_frames`` reached: ends a pour from inside its callback."""
