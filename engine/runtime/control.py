"""Steering a running engine by hand: start or stop a recorder, fire a rule, take a shot.

``Engine.control`` is what the status page's buttons and ``POST /api/...``
call, and what a Python script holding the engine calls directly (on the
engine's loop)::

    await engine.control.start_recorder("moves")
    await engine.control.fire_rule("timelapse")
    await engine.control.take_shot("bench")

Each returns a ``ControlResult`` saying what was done. A name that does not
exist raises ``UnknownTarget`` (a ``KeyError``); an action the target's state
forbids (a disabled recorder, a stopped engine, a camera whose queue is full)
raises ``ControlRefused`` with the reason. Nothing here decides anything the
parts do not already decide: a recorder started by hand behaves as
``do: {type: record, action: start}`` would, and a fired rule runs under its
own mode (a ``single`` rule still running drops the firing).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import CuecapError
from engine.runtime.rulebook import Firing

if TYPE_CHECKING:
    from engine.recorder.recorder import Recorder
    from engine.runtime.engine import Engine

MANUAL = "manual"


class ControlError(CuecapError):
    """A control action that was not carried out."""


class UnknownTarget(ControlError, KeyError):
    """No recorder, rule or camera of that name."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class ControlRefused(ControlError, RuntimeError):
    """The target exists but its state forbids the action (the message says why)."""


class Action(enum.StrEnum):
    START_RECORDER = "start_recorder"
    STOP_RECORDER = "stop_recorder"
    FIRE_RULE = "fire_rule"
    TAKE_SHOT = "take_shot"


@dataclass(frozen=True, slots=True)
class ControlResult:
    """What an action did: ``path`` the file involved, ``task`` a shot's id."""

    action: Action
    target: str
    detail: str
    path: str | None = None
    task: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "action": self.action.value,
            "target": self.target,
            "detail": self.detail,
            "path": self.path,
            "task": self.task,
        }


def _unknown(kind: str, name: str, known: Iterable[str]) -> UnknownTarget:
    names = ", ".join(sorted(known)) or "none"
    return UnknownTarget(f"no {kind} named {name!r} (known: {names})")


class Control:
    """The control actions of one engine (``engine.control``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _running(self) -> None:
        if not self._engine.running:
            raise ControlRefused("the engine is not running")

    def _recorder(self, name: str) -> Recorder:
        recorder: Recorder | None = self._engine.recorders.get(name)
        if recorder is None:
            raise _unknown("recorder", name, self._engine.recorders)
        return recorder

    async def start_recorder(self, name: str) -> ControlResult:
        """Record now (with the pre-roll) until ``stop_recorder``."""
        from engine.recorder.decisions import RecorderStateError

        self._running()
        recorder = self._recorder(name)
        try:
            path = await recorder.start(MANUAL)
        except RecorderStateError as exc:
            raise ControlRefused(f"recorder {name}: {exc}") from None
        if path is None:
            raise ControlRefused(
                f"recorder {name}: {recorder.last_error or 'could not open a file'}"
            )
        return ControlResult(Action.START_RECORDER, name, f"recording to {path.name}", str(path))

    async def stop_recorder(self, name: str) -> ControlResult:
        """Close the open recording now (no post-roll)."""
        self._running()
        recorder = self._recorder(name)
        manifest = await recorder.stop(MANUAL)
        if manifest is None:
            return ControlResult(Action.STOP_RECORDER, name, "was not recording")
        return ControlResult(
            Action.STOP_RECORDER,
            name,
            f"stopped {manifest.records} messages in {Path(manifest.path).name}",
            manifest.path,
        )

    async def fire_rule(self, name: str) -> ControlResult:
        """Run the rule's actions now, as if a trigger had come (its mode still applies)."""
        self._running()
        engine = self._engine
        if name not in engine.rules.rules:
            raise _unknown("rule", name, engine.rules.rules)
        if name not in engine.rulebook.rules:
            raise ControlRefused(f"rule {name} is disabled")
        count = engine.stats.firing_counts[name] + 1
        facts = {"by": "fired by hand", "source": ""}
        firing = Firing(name, engine.clock.time(), MANUAL, -1, MANUAL, "", count, facts)
        engine.fire(firing)
        return ControlResult(Action.FIRE_RULE, name, f"fired (firing {count})")

    async def take_shot(self, camera: str) -> ControlResult:
        """Queue a shot from ``camera`` now; the result names the task and its file."""
        from engine.shots.status import ShotRejected, UnknownCamera

        self._running()
        engine = self._engine
        if camera not in engine.rules.cameras:
            raise _unknown("camera", camera, engine.rules.cameras)
        shots = engine.shots
        if shots is None:
            raise ControlRefused("shots are off in a dry run")
        try:
            task, path = shots.submit(camera, fields={"rule": "", "event": MANUAL, "source": ""})
        except UnknownCamera:
            raise _unknown("camera", camera, engine.rules.cameras) from None
        except (ShotRejected, ValueError) as exc:
            raise ControlRefused(f"camera {camera}: {exc}") from None
        return ControlResult(
            Action.TAKE_SHOT, camera, "shot queued", str(path) if path else None, task
        )
