"""Activity detectors: small, pure classes that say whether one frame is activity.

Each detector declares the message types it looks at (``kinds``); the
``ActivityDetectors`` set indexes them by type once, so a frame of any other
type (temperatures, HV, camera frames) costs one dict lookup and is never
decoded. That is also why background traffic never counts as activity unless
a detector names its type. Stateful detectors (changed, threshold, step, rate)
see every frame of their types, even when another detector already fired, so
their memory of the previous value stays right.

Decoding errors are counted per detector (``errors``), never raised: one bad
message must not stop a recording.

After a ``Gap`` (the source reconnected) ``restart`` forgets the previous
values: a detector comparing with the last value before the hole would see
every reconnect as a change or a step, and start a recording for nothing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Protocol

from engine.core.condition import Condition
from engine.core.fieldpath import MISSING, FieldPath, FieldValue, comparable
from engine.core.frame import Frame, FrameDecodeError
from engine.core.schema import PURPLEDROP, Schema
from engine.errors import InvalidArgument, UnsupportedType
from engine.recorder.config import (
    ChangedDetectorConfig,
    DetectorConfig,
    MessageDetectorConfig,
    RateDetectorConfig,
    StepDetectorConfig,
    ThresholdDetectorConfig,
    WhereDetectorConfig,
)

_UNSET: Final = object()  # ChangedDetector before its first value


class Detector(Protocol):
    label: str

    @property
    def kinds(self) -> frozenset[str] | None:
        """The message types the detector looks at; None: every frame."""
        ...

    def hit(self, frame: Frame) -> bool: ...

    def check(self, frame: Frame) -> str | None:
        """``label`` if the detector fires on ``frame``, else None (the hot loops call this)."""
        ...

    def restart(self) -> None:
        """Forget what came before a gap in the stream (stateless detectors: nothing)."""
        ...


class _LabelOnHit:
    """``check`` for detectors whose logic lives in ``hit``."""

    __slots__ = ()
    label: str

    def hit(self, frame: Frame) -> bool:
        raise NotImplementedError

    def check(self, frame: Frame) -> str | None:
        return self.label if self.hit(frame) else None

    def restart(self) -> None:
        return None


class MessageTypeDetector:
    """Any message of the given types is activity."""

    __slots__ = ("kinds", "label")

    def __init__(self, types: Iterable[str], label: str = "message") -> None:
        self.kinds: frozenset[str] = frozenset(types)
        self.label = label

    def hit(self, frame: Frame) -> bool:
        return frame.kind in self.kinds

    def check(self, frame: Frame) -> str | None:
        return self.label if frame.kind in self.kinds else None

    def restart(self) -> None:
        return None


class _FieldDetector:
    """Shared plumbing: read one field of one message type, count decode errors.

    Subclasses judge the value (``_judge``; it may be ``MISSING``, an index
    past the end of a list); a message of another type, or one that does not
    decode, is never a hit.
    """

    __slots__ = ("_get", "errors", "kind", "kinds", "label", "path")

    def __init__(self, path: str | FieldPath, label: str) -> None:
        self.path = path if isinstance(path, FieldPath) else FieldPath(path)
        self._get = self.path.get
        self.kind = self.path.kind
        self.kinds: frozenset[str] = frozenset({self.kind})
        self.label = label
        self.errors = 0

    def check(self, frame: Frame) -> str | None:
        if frame.kind != self.kind:
            return None
        try:
            message = frame.message
        except FrameDecodeError:
            self.errors += 1
            return None
        if message is None:  # a frame without a kind, ruled out above
            return None
        return self.label if self._judge(self._get(message)) else None

    def hit(self, frame: Frame) -> bool:
        return self.check(frame) is not None

    def restart(self) -> None:
        return None  # a threshold's arming is about the level, not the last value

    def _judge(self, value: FieldValue) -> bool:
        raise NotImplementedError


class ChangedDetector(_FieldDetector):
    """The field differs from its value in the previous message of its type.

    Repeated fields and messages compare by value. The first message seen has
    nothing to differ from, so it is not a change.
    """

    __slots__ = ("_previous",)

    def __init__(self, path: str | FieldPath, label: str = "changed") -> None:
        super().__init__(path, label)
        self._previous: object = _UNSET

    def _judge(self, value: FieldValue) -> bool:
        value = comparable(value)
        previous = self._previous
        self._previous = value
        return previous is not _UNSET and value != previous

    def restart(self) -> None:
        self._previous = _UNSET


class ThresholdDetector(_FieldDetector):
    """A number crossing ``above`` (or ``below``), re-armed only past the hysteresis band.

    Above: beyond means ``value > above``; it re-arms at ``value <= above - hysteresis``.
    Below: beyond means ``value < below``; it re-arms at ``value >= below + hysteresis``.
    The detector starts armed, so a stream that starts beyond the threshold
    fires on its first message. With ``continuous``, every message from the
    crossing until re-arming is activity, not only the crossing one.
    """

    __slots__ = ("_armed", "_limit", "_rearm", "_sign", "continuous")

    def __init__(
        self,
        path: str | FieldPath,
        *,
        above: float | None = None,
        below: float | None = None,
        hysteresis: float = 0.0,
        continuous: bool = False,
        label: str = "threshold",
    ) -> None:
        super().__init__(path, label)
        # Work in "above" terms: for below, negate values and limits.
        if above is not None and below is None:
            self._sign, limit = 1.0, above
        elif below is not None and above is None:
            self._sign, limit = -1.0, -below
        else:
            raise InvalidArgument("a threshold needs exactly one of above or below")
        if hysteresis < 0:
            raise InvalidArgument(f"hysteresis must not be negative, got {hysteresis}")
        self._limit = float(limit)
        self._rearm = self._limit - hysteresis
        self.continuous = continuous
        self._armed = True

    def _judge(self, value: FieldValue) -> bool:
        if value is MISSING:
            return False
        x = self._sign * value
        if self._armed:
            if x > self._limit:
                self._armed = False
                return True
            return False
        if x <= self._rearm:
            self._armed = True
            return False
        return self.continuous


class StepDetector(_FieldDetector):
    """A number moving by more than ``delta`` since the previous message of its type."""

    __slots__ = ("_previous", "delta", "direction")

    def __init__(
        self, path: str | FieldPath, delta: float, direction: str = "any", label: str = "step"
    ) -> None:
        super().__init__(path, label)
        if not delta > 0:
            raise InvalidArgument(f"a step delta must be greater than 0, got {delta}")
        if direction not in ("any", "up", "down"):
            raise InvalidArgument(f"direction must be any, up or down, got {direction!r}")
        self.delta = delta
        self.direction = direction
        self._previous: float | None = None

    def check(self, frame: Frame) -> str | None:
        # _FieldDetector.check and _judge in one: a step detector on a field sent ~50
        # times a second is the busiest detector there is, and a call less shows.
        if frame.kind != self.kind:
            return None
        try:
            message = frame.message
        except FrameDecodeError:
            self.errors += 1
            return None
        if message is None:
            return None
        value = self._get(message)
        if value is MISSING:
            return None
        previous = self._previous
        self._previous = value
        if previous is None:
            return None
        step: float = value - previous
        direction = self.direction
        if direction == "any":
            hit = abs(step) > self.delta
        elif direction == "up":
            hit = step > self.delta
        else:
            hit = -step > self.delta
        return self.label if hit else None

    def restart(self) -> None:
        self._previous = None


class RateDetector(_LabelOnHit):
    """More than ``per_second`` messages per second over the last ``window`` seconds.

    Counts messages of ``types`` (every message when None) received in
    ``[t - window, t]``; a hit when the count exceeds ``per_second * window``.
    Only the newest ``limit + 1`` times are kept: that is enough to know whether
    the count is above the limit, so memory is bounded by the threshold.
    """

    __slots__ = ("_limit", "_times", "kinds", "label", "per_second", "window")

    def __init__(
        self,
        per_second: float,
        window: float = 1.0,
        types: Iterable[str] | None = None,
        label: str = "rate",
    ) -> None:
        if not per_second > 0 or not window > 0:
            raise InvalidArgument(
                f"rate needs per_second > 0 and window > 0 (got {per_second}, {window})"
            )
        self.per_second = per_second
        self.window = window
        self.kinds: frozenset[str] | None = frozenset(types) if types is not None else None
        self.label = label
        self._limit = math.floor(per_second * window + 1e-9)  # a hit needs more than this many
        self._times: deque[float] = deque(maxlen=self._limit + 1)

    def hit(self, frame: Frame) -> bool:
        kinds = self.kinds
        if kinds is not None and frame.kind not in kinds:
            return False
        times = self._times
        now = frame.time
        times.append(now)
        horizon = now - self.window
        while times[0] < horizon:
            times.popleft()
        return len(times) > self._limit

    def restart(self) -> None:
        return None  # messages before the gap still count within the window


class ConditionDetector(_LabelOnHit):
    """A CEL condition (``where:``) over the frame's message."""

    __slots__ = ("condition", "kinds", "label", "types")

    def __init__(
        self, condition: Condition | str, types: Iterable[str] | None = None, label: str = "where"
    ) -> None:
        self.types = frozenset(types) if types is not None else None
        if isinstance(condition, str):
            only = (
                next(iter(self.types)) if self.types is not None and len(self.types) == 1 else None
            )
            condition = Condition(condition, only)
        self.condition = condition
        self.label = label
        if self.types is not None:
            self.kinds: frozenset[str] | None = self.types
        else:
            self.kinds = condition.kinds

    @property
    def errors(self) -> int:
        return self.condition.errors

    def hit(self, frame: Frame) -> bool:
        types = self.types
        if types is not None and frame.kind not in types:
            return False
        return self.condition.evaluate(frame)


class ActivityDetectors:
    """All detectors of one recorder, indexed by message type.

    Calling the set with a frame returns the label of the first detector that
    fired, or None. Every detector that looks at the frame's type runs, so
    stateful ones keep their previous values current. ``checks`` is the same
    thing split by message type, for hot loops: ``checks.get(frame.kind)`` is
    None for a type no detector looks at (nothing to call, nothing decoded),
    else a function of the frame returning the label or None. ``hits`` counts
    the labels calling the set returned.
    """

    __slots__ = ("checks", "detectors", "hits")

    def __init__(self, detectors: Sequence[Detector], schema: Schema = PURPLEDROP) -> None:
        self.detectors = tuple(detectors)
        self.hits: dict[str, int] = {}
        self.checks: dict[str | None, Callable[[Frame], str | None]] = {}
        for kind in (*schema.kind_names, None):
            mine = tuple(
                d
                for d in self.detectors
                if d.kinds is None or (kind is not None and kind in d.kinds)
            )
            if mine:
                self.checks[kind] = self._check(mine)

    @staticmethod
    def _check(detectors: tuple[Detector, ...]) -> Callable[[Frame], str | None]:
        if len(detectors) == 1:
            return detectors[0].check
        checks = tuple(d.check for d in detectors)

        def check_all(frame: Frame) -> str | None:
            first: str | None = None
            for check in checks:
                label = check(frame)
                if first is None:
                    first = label
            return first

        return check_all

    def __len__(self) -> int:
        return len(self.detectors)

    @property
    def kinds(self) -> frozenset[str] | None:
        """The message types that can be activity (None: any)."""
        if None in self.checks:
            return None
        return frozenset(k for k in self.checks if k is not None)

    def __call__(self, frame: Frame) -> str | None:
        check = self.checks.get(frame.kind)
        label = check(frame) if check is not None else None
        if label is not None:
            self.hits[label] = self.hits.get(label, 0) + 1
        return label

    @property
    def errors(self) -> int:
        return sum(getattr(d, "errors", 0) for d in self.detectors)

    def restart(self) -> None:
        """The stream had a gap: every detector forgets its previous values."""
        for detector in self.detectors:
            restart = getattr(detector, "restart", None)  # detectors written in code may lack it
            if restart is not None:
                restart()


def build_detector(config: DetectorConfig) -> Detector:
    """The detector a rule file's ``activity:`` entry describes."""
    label = config.label
    schema = config.message_schema
    if isinstance(config, MessageDetectorConfig):
        return MessageTypeDetector(config.types, label)
    if isinstance(config, ChangedDetectorConfig):
        return ChangedDetector(FieldPath(config.field, schema), label)
    if isinstance(config, ThresholdDetectorConfig):
        return ThresholdDetector(
            FieldPath(config.field, schema),
            above=config.above,
            below=config.below,
            hysteresis=config.hysteresis,
            continuous=config.continuous,
            label=label,
        )
    if isinstance(config, StepDetectorConfig):
        return StepDetector(FieldPath(config.field, schema), config.delta, config.direction, label)
    if isinstance(config, RateDetectorConfig):
        return RateDetector(config.per_second, config.window, config.types, label)
    if isinstance(config, WhereDetectorConfig):
        return ConditionDetector(config.condition(), config.types, label)
    raise UnsupportedType(f"unknown detector configuration {config!r}")


def build_detectors(
    configs: Iterable[DetectorConfig], schema: Schema = PURPLEDROP
) -> ActivityDetectors:
    return ActivityDetectors([build_detector(c) for c in configs], schema)
