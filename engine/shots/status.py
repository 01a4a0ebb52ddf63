"""The status contract of a shot, as the seed's callbacks know it.

Per task, in order: ``in_queue`` once, ``saving`` once per try, then exactly
one of ``success`` or ``error``. Callbacks receive ``(task_guid, state)``;
``state`` compares equal to ``status.success`` and friends (it is a string),
and carries the details the seed never gave: the reason of an error, the path,
the try number.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from engine.errors import CuecapError


class ShotStatus(StrEnum):
    in_queue = "in_queue"
    saving = "saving"
    success = "success"
    error = "error"


status = ShotStatus
"""The seed's name: ``status.in_queue``, ``status.saving``, ``status.success``, ``status.error``."""

FINAL = frozenset({ShotStatus.success, ShotStatus.error})


class StatusUpdate(str):
    """A status string with details: ``state == status.error and state.reason``."""

    task: str
    camera: str
    path: Path | None
    try_number: int
    reason: str
    time: float

    def __new__(
        cls,
        state: ShotStatus,
        *,
        task: str,
        camera: str,
        path: Path | None,
        try_number: int,
        reason: str,
        time: float,
    ) -> StatusUpdate:
        self = super().__new__(cls, state.value)
        self.task = task
        self.camera = camera
        self.path = path
        self.try_number = try_number
        self.reason = reason
        self.time = time
        return self

    @property
    def status(self) -> ShotStatus:
        return ShotStatus(str(self))

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def __repr__(self) -> str:
        extra = f", reason={self.reason!r}" if self.reason else ""
        return f"StatusUpdate({str(self)!r}, task={self.task!r}, try={self.try_number}{extra})"


class ShotFailed(CuecapError):
    """A shot ended in ``error``; what ``get()`` delivers instead of bytes."""

    def __init__(self, task: str, camera: str, reason: str) -> None:
        super().__init__(f"shot {task} from camera {camera!r} failed: {reason}")
        self.task = task
        self.camera = camera
        self.reason = reason


class ShotRejected(CuecapError):
    """A shot request refused at once; nothing was queued."""


class QueueFull(ShotRejected):
    """The bounded queue is full: too many shots waiting."""


class Throttled(ShotRejected):
    """The camera took a shot less than ``min_interval`` ago (throttle: skip)."""


class UnknownCamera(ShotRejected, KeyError):
    """No camera of that name is configured."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown camera"


class SaverClosed(ShotRejected):
    """The saver is closing or closed."""


class NoCallback(ShotRejected, OSError):
    """``get()`` with no callback and no saver callback: nowhere to deliver the image.

    An ``OSError`` because the original documented ``EnvironmentError`` here.
    """
