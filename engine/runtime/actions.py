"""What a rule does when it fires: shots, recorder control, commands, log lines.

Each action kind is one small coroutine. Shots go to the shot service and are
awaited until their final status, so a rule that takes a shot and then runs a
command finds the file in place. Commands run without a shell, with a
timeout after which they are killed. In a dry run (``cuecap replay`` without
``--execute``) shots and commands are only noted; recorder control still
happens, because it decides what would have been recorded.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any, Protocol

from engine.processes import kill_tree, spawn_options
from engine.rules.model import LogAction, RecordAction, Rule, RunAction, ShotAction
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
    for key in ("recorder", "camera", "path", "reason", "seq"):
        value = facts.get(key)
        values[key] = "" if value is None else value
    return values


def render(text: str, values: Mapping[str, Any]) -> str:
    """Fill a checked template; a value that does not fit its format spec is shown as is."""
    try:
        return text.format_map(values)
    except (ValueError, TypeError):
        plain = {k: (v if isinstance(v, datetime) else str(v)) for k, v in values.items()}
        try:
            return text.format_map(plain)
        except (ValueError, TypeError):
            return text


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
    ) -> None:
        self.shots = shots
        self.recorders = recorders
        self.tz = tz
        self.dry_run = dry_run
        self._note = note
        self.exact_time = exact_time
        self.commands = 0
        self.command_failures = 0
        self.shot_requests = 0
        self.shot_refusals = 0

    def note(self, firing: Firing, what: str) -> None:
        if self._note is not None:
            self._note(firing, what)

    async def run(self, rule: Rule, firing: Firing) -> None:
        """Every action of ``rule`` in order; one that fails is logged and the next runs."""
        for action in rule.do:
            try:
                await self.perform(action, firing)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("rule %s: %s action failed: %s", firing.rule, action.type, exc)

    async def perform(self, action: Any, firing: Firing) -> None:
        if isinstance(action, ShotAction):
            await self._shot(action, firing)
        elif isinstance(action, RecordAction):
            await self._record(action, firing)
        elif isinstance(action, RunAction):
            await self._run(action, firing)
        elif isinstance(action, LogAction):
            line = render(action.message, text_values(firing, self.tz))
            self.note(firing, f"log: {line}")
            log.log(_LEVELS[action.level], "%s", line)
        else:  # pragma: no cover - the model admits no other kind
            raise TypeError(f"unknown action {action!r}")

    # -- shots -------------------------------------------------------------

    async def _shot(self, action: ShotAction, firing: Firing) -> None:
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
        for camera in action.cameras:
            done: asyncio.Future[str] = loop.create_future()

            def track(_guid: str, state: Any, done: asyncio.Future[str] = done) -> None:
                value = str(state)
                if value in _FINAL and not done.done():
                    done.set_result(value)

            self.shot_requests += 1
            try:
                _, path = self.shots.submit(
                    camera,
                    dt=dt,
                    file_name=action.file_name,
                    folder=action.folder,
                    fields=fields,
                    callback=track,
                )
            except Exception as exc:  # QueueFull, Throttled, SaverClosed...
                self.shot_refusals += 1
                log.warning("rule %s: shot from %s refused: %s", firing.rule, camera, exc)
                continue
            self.note(firing, f"shot {camera} ({when}) -> {path}")
            pending.append(done)
        if pending:
            await asyncio.gather(*pending)

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
        env = {**os.environ, **action.env} if action.env else None
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
