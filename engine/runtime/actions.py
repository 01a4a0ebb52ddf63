"""What a rule does when it fires: shots, recorder control, commands, log lines, messages.

Each action kind is one small coroutine. Shots go to the shot service and are
awaited until their final status, so a rule that takes a shot and then runs a
command finds the file in place. Commands run without a shell, with a
timeout after which they are killed. In a dry run (``cuecap replay`` without
``--execute``) shots and commands are only noted; recorder control still
happens, because it decides what would have been recorded.

``publish`` hands a message to the MQTT adapter and ``send`` to the
notifier; both queue and return at once. A ``send`` with ``shot: true``
attaches the shots the rule's earlier ``shot`` actions saved in this run (or
the shot a ``shot.success`` trigger reports).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any, Protocol

from engine.core.templates import render
from engine.errors import UnsupportedType
from engine.notify.message import Notification, default_text
from engine.processes import kill_tree, spawn_options
from engine.rules.model import (
    LogAction,
    PublishAction,
    RecordAction,
    Rule,
    RunAction,
    SendAction,
    ShotAction,
    env_name,
)
from engine.runtime.rulebook import Firing

log = logging.getLogger("engine.rules")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR
_FINAL = ("success", "error")


class RecorderControl(Protocol):
    """The part of a recorder that rules drive."""

    async def start(self, reason: str = ...) -> Any: ...

    async def stop(self, reason: str = ...) -> Any: ...

    def enable(self) -> Any: ...

    def disable(self) -> Any: ...


class Publisher(Protocol):
    """Where ``publish`` actions go (the MQTT adapter)."""

    def publish(
        self, topic: str, payload: bytes, *, retain: bool = ..., qos: int = ...
    ) -> None: ...


class Sender(Protocol):
    """Where ``send`` actions go (the notifier)."""

    def submit(self, target: str, note: Notification) -> bool: ...


def text_values(firing: Firing, tz: tzinfo) -> dict[str, Any]:
    """The values ``{rule}``, ``{time:%H:%M}``... of log lines and command arguments."""
    facts = firing.facts
    values: dict[str, Any] = {
        "rule": firing.rule,
        "trigger": firing.trigger,
        "event": firing.event,
        "time": datetime.fromtimestamp(firing.time, tz),
        "epoch": firing.time,
        "source": firing.source or facts.get("source") or "",
        "count": firing.count,
    }
    for key in ("recorder", "camera", "path", "reason", "seq", "topic", "payload", "target"):
        value = facts.get(key)
        values[key] = "" if value is None else value
    for key in ("records", "bytes"):
        values[key] = facts.get(key, "")
    first, last = facts.get("first_time"), facts.get("last_time")
    both = isinstance(first, int | float) and isinstance(last, int | float)
    values["duration"] = round(last - first, 3) if both else ""  # type: ignore[operator]
    return values


def command_environment(values: Mapping[str, Any]) -> dict[str, str]:
    """``CUECAP_RULE``, ``CUECAP_PATH``...: the values as a command's environment.

    A script reads its values here rather than having them spliced into its
    text, so no value can become shell code.
    """
    out: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, datetime):
            out[env_name(name)] = value.isoformat()
        else:
            out[env_name(name)] = "" if value is None else str(value)
    return out


class ActionRunner:
    """Performs a rule's actions for a firing; ``note`` collects what they do.

    ``exact_time``: shots ask for the trigger's time even without an offset
    (virtual time, where "now" has moved on by the time a shot is taken).
    """

    def __init__(
        self,
        *,
        shots: Any | None,
        recorders: Mapping[str, RecorderControl],
        tz: tzinfo,
        dry_run: bool = False,
        note: Callable[[Firing, str], None] | None = None,
        exact_time: bool = False,
        on_refused: Callable[[str, str], None] | None = None,
    ) -> None:
        self.shots = shots
        self.recorders = recorders
        self.tz = tz
        self.dry_run = dry_run
        self._note = note
        self.exact_time = exact_time
        # A shot refused before it was queued is a failed shot: (camera, why).
        self._on_refused = on_refused
        self.commands = 0
        self.command_failures = 0
        self.shot_requests = 0
        self.shot_refusals = 0
        self.mqtt: Publisher | None = None  # set by the MQTT adapter while it runs
        self.sender: Sender | None = None  # set by the notifier while it runs

    def note(self, firing: Firing, what: str) -> None:
        if self._note is not None:
            self._note(firing, what)

    async def run(self, rule: Rule, firing: Firing) -> None:
        """Every action of ``rule`` in order; one that fails is logged and the next runs."""
        taken: list[tuple[str, str]] = []  # (camera, path) of the shots saved in this run
        for action in rule.do:
            try:
                await self.perform(action, firing, taken)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("rule %s: %s action failed: %s", firing.rule, action.type, exc)

    async def perform(
        self, action: Any, firing: Firing, taken: list[tuple[str, str]] | None = None
    ) -> None:
        if isinstance(action, ShotAction):
            await self._shot(action, firing, taken)
        elif isinstance(action, PublishAction):
            self._publish(action, firing, taken or [])
        elif isinstance(action, SendAction):
            self._send(action, firing, taken or [])
        elif isinstance(action, RecordAction):
            await self._record(action, firing)
        elif isinstance(action, RunAction):
            await self._run(action, firing)
        elif isinstance(action, LogAction):
            line = render(action.message, text_values(firing, self.tz))
            self.note(firing, f"log: {line}")
            log.log(_LEVELS[action.level], "%s", line)
        else:  # pragma: no cover - the model admits no other kind
            raise UnsupportedType(f"unknown action {action!r}")

    # -- shots -------------------------------------------------------------

    async def _shot(
        self, action: ShotAction, firing: Firing, taken: list[tuple[str, str]] | None = None
    ) -> None:
        # Live, "now" is the trigger's time; in virtual time it must be said.
        exact = action.offset != 0 or self.exact_time
        dt = firing.time + action.offset if exact else None
        when = "live" if dt is None else f"at {datetime.fromtimestamp(dt, self.tz):%H:%M:%S.%f}"
        if self.dry_run or self.shots is None:
            for camera in action.cameras:
                self.note(firing, f"shot {camera} ({when})")
            return
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[str]] = []
        fields = {"rule": firing.rule, "source": firing.source, "event": firing.event}
        paths: dict[str, str] = {}
        for camera in action.cameras:
            done: asyncio.Future[str] = loop.create_future()

            def track(_guid: str, state: Any, done: asyncio.Future[str] = done) -> None:
                value = str(state)
                if value in _FINAL and not done.done():
                    done.set_result(value)

            def keep(done: asyncio.Future[str], camera: str = camera) -> None:
                path = paths.get(camera)
                if taken is not None and path is not None and done.result() == "success":
                    taken.append((camera, path))

            done.add_done_callback(keep)

            self.shot_requests += 1
            try:
                _, path = self.shots.submit(
                    camera,
                    dt=dt,
                    file_name=action.file_name,
                    folder=action.folder,
                    fields=fields,
                    callback=track,
                    on_exists=action.on_exists,
                )
            except Exception as exc:  # QueueFull, Throttled, SaverClosed...
                self.shot_refusals += 1
                log.warning("rule %s: shot from %s refused: %s", firing.rule, camera, exc)
                if self._on_refused is not None:
                    self._on_refused(camera, f"refused: {exc}")
                continue
            self.note(firing, f"shot {camera} ({when}) -> {path}")
            if path is not None:
                paths[camera] = str(path)
            pending.append(done)
        if pending:
            await asyncio.gather(*pending)

    # -- messages ------------------------------------------------------------

    def _values(self, firing: Firing, taken: list[tuple[str, str]]) -> dict[str, Any]:
        """Template values; ``{camera}``/``{path}`` the trigger does not give: the last shot's."""
        values = text_values(firing, self.tz)
        if taken:
            camera, path = taken[-1]
            values["camera"] = values["camera"] or camera
            values["path"] = values["path"] or path
        return values

    def _publish(self, action: PublishAction, firing: Firing, taken: list[tuple[str, str]]) -> None:
        values = self._values(firing, taken)
        topic = render(action.topic, values)
        payload = render(action.payload, values)
        self.note(firing, f"publish {topic}: {payload}")
        if self.dry_run:
            return
        if self.mqtt is None:
            log.warning("rule %s: publish to %s: MQTT is not running", firing.rule, topic)
            return
        self.mqtt.publish(topic, payload.encode(), retain=action.retain, qos=action.qos)

    def _send(self, action: SendAction, firing: Firing, taken: list[tuple[str, str]]) -> None:
        values = self._values(firing, taken)
        shots: list[tuple[str, str | None]] = []
        if action.shot:
            shots = list(taken)
            path = firing.facts.get("path")
            if not shots and firing.event == "shot.success" and path:
                shots = [(str(firing.facts.get("camera") or ""), str(path))]
            if not shots and not self.dry_run:
                log.warning("rule %s: send: no shot to attach; the message goes alone", firing.rule)
        if not shots:
            shots = [(str(values["camera"]), None)]
        for camera, path in shots:  # one message per shot, each with its own camera and path
            shot_values = {**values, "camera": camera or values["camera"],
                           "path": path or values["path"]}  # fmt: skip
            text = (
                render(action.message, shot_values) if action.message else default_text(shot_values)
            )
            for target in action.to:
                self.note(firing, f"send {target}: {text}" + (f" + {path}" if path else ""))
                if self.dry_run:
                    continue
                if self.sender is None:
                    log.warning("rule %s: send to %s: the notifier is not running", firing.rule,
                                target)  # fmt: skip
                    continue
                note = Notification(
                    rule=firing.rule, text=text, values=shot_values, facts=firing.facts,
                    camera=camera, path=path, time=firing.time,
                )  # fmt: skip
                self.sender.submit(target, note)

    # -- recorders ---------------------------------------------------------

    async def _record(self, action: RecordAction, firing: Firing) -> None:
        recorder = self.recorders.get(action.recorder)
        self.note(firing, f"record {action.action} {action.recorder}")
        if recorder is None:
            log.warning("rule %s: recorder %s is not running", firing.rule, action.recorder)
            return
        reason = f"rule {firing.rule}"
        if action.action == "start":
            await recorder.start(reason)
        elif action.action == "stop":
            await recorder.stop(reason)
        elif action.action == "enable":
            recorder.enable()
        else:
            recorder.disable()

    # -- commands ----------------------------------------------------------

    async def _run(self, action: RunAction, firing: Firing) -> None:
        values = text_values(firing, self.tz)
        argv = [render(arg, values) for arg in action.argv]
        self.note(firing, "run " + " ".join(argv))
        if self.dry_run:
            return
        self.commands += 1
        env = {**os.environ, **action.env, **command_environment(values)}
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=action.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                **spawn_options(),  # a timeout kills what the command started, too
            )
        except OSError as exc:
            self.command_failures += 1
            log.error("rule %s: cannot run %s: %s", firing.rule, argv[0], exc.strerror or exc)
            return
        try:
            async with asyncio.timeout(action.timeout):
                out, err = await process.communicate()
        except TimeoutError:
            await kill_tree(process)
            self.command_failures += 1
            log.error(
                "rule %s: %s ran longer than %gs and was killed",
                firing.rule,
                argv[0],
                action.timeout,
            )
            return
        except asyncio.CancelledError:
            await kill_tree(process)
            raise
        if process.returncode != 0:
            self.command_failures += 1
            tail = err.decode(errors="replace").strip().splitlines()[-3:]
            log.error(
                "rule %s: %s exited with %s%s",
                firing.rule,
                argv[0],
                process.returncode,
                (": " + " | ".join(tail)) if tail else "",
            )
        elif out.strip():
            log.info("rule %s: %s: %s", firing.rule, argv[0], out.decode(errors="replace").strip())
