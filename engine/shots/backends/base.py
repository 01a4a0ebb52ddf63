"""What a camera is to the saver: something that returns one JPEG when asked.

Backends only fetch bytes. Timeouts, retries, limits, checking and writing
are the saver's, so every backend gets them the same way. A backend says how
it failed with ``CaptureError``: the reason is shown to users (so it names the
cause and never a secret) and ``retryable`` tells the saver whether trying
again can help (a wrong password will not get better).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.errors import CuecapError
from engine.shots.config import CameraCommon


@dataclass(frozen=True, slots=True)
class CaptureRequest:
    """One try of one shot, as a backend sees it."""

    camera: str
    task: str
    time: float | None  # the requested moment (epoch seconds); None: now
    live: bool  # False: the moment is past the live window, ask the archive
    figures: bool
    timeout: float

    def format_values(self, now: float) -> dict[str, object]:
        """Values for archive URLs and command arguments: ``{time:%Y%m%d}``, ``{epoch}``..."""
        when = self.time if self.time is not None else now
        return {
            "time": datetime.fromtimestamp(when).astimezone(),
            "utc": datetime.fromtimestamp(when, UTC),
            "epoch": int(when),
            "epoch_ms": int(when * 1000),
            "camera": self.camera,
        }


class CaptureError(CuecapError):
    """A try failed; ``reason`` is for users and logs, ``retryable`` for the saver."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Camera(Protocol):
    name: str

    @property
    def config(self) -> CameraCommon:
        """The camera's settings (each backend has its own subclass)."""
        ...

    async def capture(self, request: CaptureRequest) -> bytes: ...

    async def aclose(self) -> None: ...


class BaseCamera:
    """Name, configuration and a no-op close, for backends to build on."""

    kind = "camera"

    def __init__(
        self,
        name: str,
        config: CameraCommon,
        *,
        clock: Clock = SYSTEM_CLOCK,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.clock = clock
        # Where secrets are read from, at each shot (so a rotated secret is picked up).
        self.environ: Mapping[str, str] = environ if environ is not None else os.environ

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    async def capture(self, request: CaptureRequest) -> bytes:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

    def no_archive(self, request: CaptureRequest, what: str) -> CaptureError:
        when = datetime.fromtimestamp(request.time or 0).astimezone().isoformat(timespec="seconds")
        return CaptureError(
            f"camera {self.name!r} has no {what}: cannot take a shot of {when}", retryable=False
        )


def fill(text: str, values: Mapping[str, object]) -> str:
    """``str.format`` of a checked template: plain names only, so no attribute can be reached."""
    return text.format_map(values)


def redact(text: str, secrets: Mapping[str, str] | list[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    values = secrets.values() if isinstance(secrets, Mapping) else secrets
    for value in values:
        if value:
            text = text.replace(value, "***")
    return text
