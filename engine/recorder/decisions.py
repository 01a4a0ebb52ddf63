"""The decision core: when a recorder starts, extends, rotates and stops. Pure, no I/O.

The policy sees every frame with its receive time and whether a detector
fired, and answers with a small bit set of actions. Almost always the answer is
``WRITE`` (recording) or nothing (idle, the frame went into the pre-roll); the
rare answers that change state are what the state machine is triggered with.
Time only ever comes from receive times and ``on_tick(now)``, so replaying a
stream reproduces exactly what a live run decided.

Boundary semantics (all windows are inclusive):

- A recording triggered by activity at ``first`` holds every record received
  at or after ``first - pre_roll`` that is still in the pre-roll (the byte
  bound can make it shorter) and was not already written by the previous
  recording, so overlapping windows never repeat a record.
- With ``min_activity = N``, the recording starts at the N-th hit within
  ``activity_window`` seconds (``[t - window, t]``), and ``first`` is the
  oldest of those hits: the first hit's pre-roll still counts.
- Activity at ``t`` extends the recording when ``t <= last + post_roll``; a
  record received at ``t <= last + post_roll`` is written; the first record
  (or tick) after ``last + post_roll`` ends it. That record is not written;
  it goes to the pre-roll, so a new hit on it starts a new recording at once.
- A segment rotates before a record that would make it exceed
  ``max_segment_bytes`` (records counted with their 4-byte header) or that is
  received ``max_segment_seconds`` or more after the segment's first record.
  A segment always holds at least one record, so nothing is lost or repeated.
- ``recording`` means activity within the last ``min(activity_window,
  post_roll)`` seconds; ``cooling_down`` is the rest of the post-roll.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable, Iterable

from engine.core.frame import Frame
from engine.errors import CuecapError, InvalidArgument
from engine.recorder.preroll import PreRoll


class RecorderState(enum.StrEnum):
    """A recorder's state (the machine in machine.py has the same names)."""

    IDLE = "idle"
    RECORDING = "recording"
    COOLING_DOWN = "cooling_down"
    DISABLED = "disabled"
    ERROR = "error"
    CLOSED = "closed"


class StopReason(enum.StrEnum):
    """Why a segment starts or stops; manifests and events carry these names."""

    ACTIVITY = "activity"
    MANUAL = "manual"
    ROTATION = "rotation"
    POST_ROLL = "post_roll"
    MAX_SECONDS = "max_segment_seconds"
    MAX_BYTES = "max_segment_bytes"
    DISABLED = "disabled"
    ERROR = "error"
    SHUTDOWN = "shutdown"


IDLE = RecorderState.IDLE
RECORDING = RecorderState.RECORDING
COOLING_DOWN = RecorderState.COOLING_DOWN
DISABLED = RecorderState.DISABLED
ERROR = RecorderState.ERROR
CLOSED = RecorderState.CLOSED
STATES = tuple(RecorderState)
OPEN_STATES = frozenset({RECORDING, COOLING_DOWN})

# Actions, applied in this order when several are set.
RECOVER = 1 << 0  # error -> idle
STOP = 1 << 1  # close the open recording (stop_reason says why)
START = 1 << 2  # open a recording; write take_pre_roll()
HOLD = 1 << 3  # a manual start while already recording: keep it open until stop
RESUME = 1 << 4  # cooling_down -> recording
QUIET = 1 << 5  # recording -> cooling_down
ROTATE = 1 << 6  # close the segment, open the next (rotate_reason says why)
WRITE = 1 << 7  # write this frame to the open segment

REASON_ACTIVITY = StopReason.ACTIVITY
REASON_MANUAL = StopReason.MANUAL
REASON_ROTATION = StopReason.ROTATION
REASON_POST_ROLL = StopReason.POST_ROLL
REASON_MAX_SECONDS = StopReason.MAX_SECONDS
REASON_MAX_BYTES = StopReason.MAX_BYTES
REASON_DISABLED = StopReason.DISABLED
REASON_ERROR = StopReason.ERROR
REASON_SHUTDOWN = StopReason.SHUTDOWN

RECORD_OVERHEAD = 4  # the <I length before every record


class RecorderStateError(CuecapError, RuntimeError):
    """An operation the recorder's current state does not allow (e.g. start while disabled)."""


class RecordingPolicy:
    """Start/extend/stop/rotate decisions for one recorder, from receive times alone."""

    __slots__ = (
        "_cools",
        "_ends",
        "_exclude",
        "_hits",
        "_limits",
        "activity_window",
        "cut",
        "failed_at",
        "first_activity",
        "keep",
        "last_activity",
        "manual",
        "max_segment_bytes",
        "max_segment_seconds",
        "min_activity",
        "post_roll",
        "pre_roll",
        "preroll",
        "quiet",
        "retry_after",
        "rotate_reason",
        "seg_bytes",
        "seg_first",
        "seg_records",
        "start_reason",
        "state",
        "stop_reason",
    )

    def __init__(
        self,
        *,
        pre_roll: float = 2.0,
        pre_roll_bytes: int = 64 * 1024 * 1024,
        post_roll: float = 5.0,
        min_activity: int = 1,
        activity_window: float = 1.0,
        max_segment_seconds: float | None = None,
        max_segment_bytes: int | None = None,
        exclude: Iterable[str] = (),
        enabled: bool = True,
        retry_after: float | None = 30.0,
    ) -> None:
        if pre_roll < 0 or post_roll < 0:
            raise InvalidArgument(
                f"pre_roll and post_roll must not be negative ({pre_roll}, {post_roll})"
            )
        if min_activity < 1 or not activity_window > 0:
            raise InvalidArgument(
                f"min_activity must be >= 1 and activity_window > 0 ({min_activity}, {activity_window})"
            )
        self.pre_roll = pre_roll
        self.post_roll = post_roll
        self.min_activity = min_activity
        self.activity_window = activity_window
        self.quiet = min(activity_window, post_roll)
        self.max_segment_seconds = max_segment_seconds
        self.max_segment_bytes = max_segment_bytes
        self.retry_after = retry_after
        self._exclude = frozenset(exclude) or None
        self._limits = max_segment_seconds is not None or max_segment_bytes is not None
        # The first hit of a min_activity group may be a whole window before the start.
        horizon = pre_roll + (activity_window if min_activity > 1 else 0.0)
        self.preroll = PreRoll(horizon, pre_roll_bytes)
        # What an idle frame that is no activity needs, and all it needs: into the pre-roll.
        self.keep: Callable[[Frame], None] = (
            self.preroll.keep if self._exclude is None else self._keep_unless_excluded
        )
        self._hits: deque[float] = deque()
        self.state = IDLE if enabled else DISABLED
        self.manual = False
        self.first_activity: float | None = None
        self.last_activity = -math.inf
        self.cut = math.inf
        self._ends = math.inf  # receive time after which the open recording ends
        self._cools = math.inf  # receive time after which recording turns to cooling_down
        self.start_reason = ""
        self.stop_reason = ""
        self.rotate_reason = ""
        self.failed_at = -math.inf
        self.seg_first = 0.0
        self.seg_bytes = 0
        self.seg_records = 0

    @property
    def open(self) -> bool:
        """True while a recording is open (recording or cooling down)."""
        return self.state in OPEN_STATES

    @property
    def deadline(self) -> float | None:
        """Receive time after which the open recording ends (None: no end planned)."""
        if self.state not in OPEN_STATES or self._ends == math.inf:
            return None
        return self._ends

    # -- the hot path ----------------------------------------------------------

    def on_frame(self, frame: Frame, hit: bool) -> int:
        """Decide what happens with one frame; ``hit`` says whether a detector fired on it."""
        state = self.state
        t = frame.time
        code = 0
        if state is IDLE:  # almost every frame, in a real experiment
            pass
        elif state is RECORDING or state is COOLING_DOWN:
            if t <= self._ends:
                if hit:
                    self.last_activity = t
                    if not self.manual:
                        self._ends = t + self.post_roll
                        self._cools = t + self.quiet
                    if state is COOLING_DOWN:
                        self.state = RECORDING
                        code = RESUME
                elif t > self._cools:
                    self.state = COOLING_DOWN
                    self._cools = math.inf
                    code = QUIET
                exclude = self._exclude
                if exclude is not None and frame.kind in exclude:
                    return code
                if self._limits and self.account(t, len(frame.raw)):
                    code |= ROTATE
                return code | WRITE
            self._end(REASON_POST_ROLL)
            code = STOP
        else:
            return 0
        self.keep(frame)
        if not hit:
            return code
        first = t
        if self.min_activity > 1:
            hits = self._hits
            hits.append(t)
            horizon = t - self.activity_window
            while hits[0] < horizon:
                hits.popleft()
            if len(hits) < self.min_activity:
                return code
            first = hits[0]
            hits.clear()
        self._begin(REASON_ACTIVITY, first - self.pre_roll)
        self.first_activity = first
        self.last_activity = t
        self._ends = t + self.post_roll
        self._cools = t + self.quiet
        return code | START

    def _keep_unless_excluded(self, frame: Frame) -> None:
        # the keeper only when _exclude is set (see __init__); no re-check per frame
        if frame.kind not in self._exclude:  # type: ignore[operator]
            self.preroll.keep(frame)

    def account(self, time: float, size: int) -> bool:
        """Count one record into the open segment; True: rotate to a new segment before it."""
        if not self._limits:
            return False
        size += RECORD_OVERHEAD
        if self.seg_records:
            max_bytes = self.max_segment_bytes
            max_seconds = self.max_segment_seconds
            if max_bytes is not None and self.seg_bytes + size > max_bytes:
                self.rotate_reason = REASON_MAX_BYTES
            elif max_seconds is not None and time - self.seg_first >= max_seconds:
                self.rotate_reason = REASON_MAX_SECONDS
            else:
                self.seg_bytes += size
                self.seg_records += 1
                return False
            self.seg_first, self.seg_bytes, self.seg_records = time, size, 1
            return True
        self.seg_first, self.seg_bytes, self.seg_records = time, size, 1
        return False

    def take_pre_roll(self) -> list[tuple[float, bytes]]:
        """The pre-roll records of the recording just started, oldest first (empties the ring)."""
        return self.preroll.take(self.cut)

    # -- time passing without frames ---------------------------------------------

    def on_tick(self, now: float) -> int:
        """Decisions due at ``now`` when no frame arrives: end of post-roll, cooling, retry."""
        state = self.state
        if state is RECORDING or state is COOLING_DOWN:
            if now > self._ends:
                self._end(REASON_POST_ROLL)
                return STOP
            if now > self._cools:
                self.state = COOLING_DOWN
                self._cools = math.inf
                return QUIET
        elif (
            state is ERROR
            and self.retry_after is not None
            and now >= self.failed_at + self.retry_after
        ):
            self.state = IDLE
            return RECOVER
        return 0

    # -- commands ----------------------------------------------------------------

    def manual_start(self, now: float, pre_roll: bool = True) -> int:
        """Start recording until ``manual_stop``; from an error, try again first."""
        state = self.state
        if state is DISABLED or state is CLOSED:
            raise RecorderStateError(f"cannot start a recorder that is {state}")
        code = 0
        if state is ERROR:
            self.state = IDLE
            code = RECOVER
        elif state is RECORDING or state is COOLING_DOWN:
            self.manual = True
            self.state = RECORDING
            self._ends = self._cools = math.inf
            return HOLD
        self._begin(REASON_MANUAL, now - self.pre_roll if pre_roll else math.inf)
        self.manual = True
        return code | START

    def manual_stop(self, now: float) -> int:
        if self.state in OPEN_STATES:
            self._end(REASON_MANUAL)
            return STOP
        return 0

    def disable(self) -> int:
        """Stop recording (if open) and ignore frames until ``enable``."""
        if self.state is CLOSED:
            raise RecorderStateError("cannot disable a closed recorder")
        code = 0
        if self.state in OPEN_STATES:
            self._end(REASON_DISABLED)
            code = STOP
        self.state = DISABLED
        self._forget()
        return code

    def enable(self) -> bool:
        """Back to idle; True if the state changed."""
        if self.state is CLOSED:
            raise RecorderStateError("cannot enable a closed recorder")
        if self.state is DISABLED:
            self.state = IDLE
            return True
        return False

    def fail(self, now: float) -> None:
        """Writing failed: drop to the error state (frames are ignored until a retry)."""
        self.state = ERROR
        self.failed_at = now
        self.manual = False
        self._forget()

    def recover(self) -> bool:
        if self.state is ERROR:
            self.state = IDLE
            return True
        return False

    def close(self, reason: str = REASON_SHUTDOWN) -> int:
        code = 0
        if self.state in OPEN_STATES:
            self._end(reason)
            code = STOP
        self.state = CLOSED
        self._forget()
        return code

    # -- internals ---------------------------------------------------------------

    def _begin(self, reason: str, cut: float) -> None:
        self.state = RECORDING
        self.start_reason = reason
        self.cut = cut
        self.first_activity = None
        self.manual = False
        self._ends = self._cools = math.inf  # until activity sets them
        self.seg_first, self.seg_bytes, self.seg_records = 0.0, 0, 0

    def _end(self, reason: str) -> None:
        self.state = IDLE
        self.stop_reason = reason
        self.manual = False
        self._hits.clear()

    def _forget(self) -> None:
        self.preroll.clear()
        self._hits.clear()
