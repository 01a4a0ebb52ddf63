"""The notifier: a bounded queue and one worker per target, retries, final events.

``submit`` never waits: a message a spam period refuses is dropped (counted),
one that finds its target's queue full ends at once in ``send.error``. Each
target's worker sends in order, retrying with exponential backoff and jitter
while the failure is retryable, up to ``retries`` more tries; the outcome is a
``send.success`` or ``send.error`` event, which rules can react to.

``delete_after_send``: a shot is deleted once every target it went to is
done, if one of them asked for deletion and none failed, so a shot whose
send failed anywhere stays on disk.

Runs as an engine adapter: ``Engine(rules, adapters=[Notifier(rules.targets)])``.
A reload that changes ``targets:`` hands the new ones to ``use``: each target
keeps its queue, and the sends after the change (retries of the one under
way excepted) go with the new settings, so nothing queued is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from engine.errors import UnknownName
from engine.events import Event, SendErrored, SendSucceeded
from engine.notify.config import EmailTarget, TelegramTarget, WebhookTarget
from engine.notify.message import Notification
from engine.notify.spam import SpamPolicy
from engine.notify.targets import (
    Attachment,
    SendFailed,
    Target,
    read_attachment,
    send_email,
    send_telegram,
    send_webhook,
)
from engine.sources.backoff import Backoff

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

log = logging.getLogger("engine.notify")

CLOSE_TIMEOUT = 10.0  # seconds a stop waits for queued messages (without an engine)


@dataclass
class _Shot:
    """A shot file on its way to several targets."""

    pending: int = 0
    delete: bool = False
    failed: bool = False


class _Worker:
    def __init__(self, name: str, target: Target) -> None:
        self.name = name
        self.target = target
        self.queue: asyncio.Queue[Notification] = asyncio.Queue(maxsize=target.queue)
        self.spam = SpamPolicy(target.period, target.camera_period)
        self.task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0


class Notifier:
    def __init__(
        self,
        targets: Mapping[str, Target],
        *,
        env: Mapping[str, str] | None = None,
        draw: Callable[[], float] = random.random,
        emit: Callable[[Event], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._workers = {name: _Worker(name, t) for name, t in targets.items()}
        self._active = frozenset(targets)  # the targets the rules name now
        self._env = os.environ if env is None else env
        self._draw = draw
        self._emit = emit
        self._clock = clock
        self._shots: dict[str, _Shot] = {}
        self._client: httpx.AsyncClient | None = None
        self._engine: Engine | None = None
        self.refused = 0  # by a spam period
        self.env = self._env  # where secrets are read; a reload's new notifier reads there too

    # -- the Adapter protocol -------------------------------------------------------

    async def start(self, engine: Engine | None = None) -> None:
        if engine is not None:
            self._engine = engine
            self._emit = self._emit or engine.emit
            self._clock = self._clock or engine.clock.time
            engine.actions.sender = self
        self._client = httpx.AsyncClient()
        loop = asyncio.get_running_loop()
        for worker in self._workers.values():
            worker.task = loop.create_task(self._work(worker), name=f"send {worker.name}")

    async def aclose(self, timeout: float | None = None) -> None:
        """Send what is queued (up to ``timeout``: the rules' ``stop_timeout``), then stop.

        What is left ends in ``send.error`` ("engine stopped").
        """
        if timeout is None:
            engine = self._engine
            timeout = engine.rules.settings.stop_timeout if engine is not None else CLOSE_TIMEOUT
        if self._engine is not None and getattr(self._engine.actions, "sender", None) is self:
            self._engine.actions.sender = None
        waits = [w.queue.join() for w in self._workers.values()]
        if waits:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*waits)
        for worker in self._workers.values():
            if worker.task is not None:
                worker.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.task
            while not worker.queue.empty():
                note = worker.queue.get_nowait()
                self._finish(worker, note, ok=False, tries=0, reason="engine stopped")
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        for name, counts in self.stats().items():
            if counts["sent"] or counts["failed"] or counts["refused"]:
                log.info("send %s: %d sent, %d failed, %d within a spam period", name,
                         counts["sent"], counts["failed"], counts["refused"])  # fmt: skip

    def use(self, targets: Mapping[str, Target]) -> int:
        """Rules reloaded: new targets get a worker, changed ones their new settings.

        A removed target finishes what it holds and takes nothing new. Returns how
        many messages wait in the queues (kept: they go with the new settings).
        """
        loop = asyncio.get_running_loop()
        for name, target in targets.items():
            worker = self._workers.get(name)
            if worker is None:
                worker = self._workers[name] = _Worker(name, target)
                if self._client is not None:
                    worker.task = loop.create_task(self._work(worker), name=f"send {name}")
            elif worker.target != target:
                worker.target = target
                worker.spam.period, worker.spam.camera_period = target.period, target.camera_period
        self._active = frozenset(targets)
        return sum(worker.queue.qsize() for worker in self._workers.values())

    # -- in ---------------------------------------------------------------------

    @property
    def targets(self) -> frozenset[str]:
        return self._active

    def submit(self, target: str, note: Notification) -> bool:
        """Queue ``note`` for ``target``; False when a spam period or a full queue refused it."""
        worker = self._workers.get(target) if target in self._active else None
        if worker is None:
            raise UnknownName(f"unknown target {target!r}")
        now = self._clock() if self._clock is not None else note.time
        if not worker.spam.accepts(now, note.camera):
            self.refused += 1
            log.info("send %s: within its spam period, not sent (%s)", target, note.rule)
            return False
        try:
            worker.queue.put_nowait(note)
        except asyncio.QueueFull:
            self._emit_event(SendErrored(
                time=now, target=target, rule=note.rule, camera=note.camera, path=note.path,
                tries=0, reason=f"queue full ({worker.target.queue} waiting)",
            ))  # fmt: skip
            return False
        if note.path is not None:
            shot = self._shots.setdefault(note.path, _Shot())
            shot.pending += 1
            shot.delete = shot.delete or worker.target.delete_after_send
        return True

    # -- the workers --------------------------------------------------------------

    async def _work(self, worker: _Worker) -> None:
        while True:
            note = await worker.queue.get()
            target = worker.target
            backoff = Backoff(target.backoff_initial,
                              max(target.backoff_max, target.backoff_initial), jitter=0.5)  # fmt: skip
            try:
                tries = 0
                while True:
                    tries += 1
                    target = worker.target  # a reload may have changed it: the next try uses it
                    try:
                        async with asyncio.timeout(target.timeout):
                            await self._deliver(target, note)
                    except (SendFailed, TimeoutError, KeyError) as exc:
                        retryable = getattr(exc, "retryable", isinstance(exc, TimeoutError))
                        reason = "no answer in time" if isinstance(exc, TimeoutError) else str(exc)
                        if retryable and tries <= target.retries:
                            log.info("send %s: try %d failed: %s", worker.name, tries, reason)
                            await asyncio.sleep(backoff.delay(tries - 1, self._draw()))
                            continue
                        log.warning("send %s: %s (%d tries)", worker.name, reason, tries)
                        self._finish(worker, note, ok=False, tries=tries, reason=reason)
                    else:
                        self._finish(worker, note, ok=True, tries=tries)
                    break
            except asyncio.CancelledError:
                self._finish(worker, note, ok=False, tries=0, reason="engine stopped")
                raise
            except Exception as exc:  # a bug must not end the worker
                log.exception("send %s failed", worker.name)
                self._finish(worker, note, ok=False, tries=0, reason=str(exc))
            finally:
                worker.queue.task_done()

    async def _deliver(self, target: Target, note: Notification) -> None:
        attachment: Attachment | None = None
        if note.path is not None:
            attachment = await asyncio.to_thread(read_attachment, note.path)
        assert self._client is not None
        if isinstance(target, WebhookTarget):
            await send_webhook(target, note, attachment, self._client, self._env)
        elif isinstance(target, EmailTarget):
            await send_email(target, note, attachment, self._env)
        elif isinstance(target, TelegramTarget):
            await send_telegram(target, note, attachment, self._client, self._env)

    def _finish(
        self, worker: _Worker, note: Notification, *, ok: bool, tries: int, reason: str = ""
    ) -> None:
        now = self._clock() if self._clock is not None else note.time
        deleted = self._settle_shot(note.path, ok=ok, delete=worker.target.delete_after_send)
        if ok:
            worker.sent += 1
            event: Event = SendSucceeded(
                time=now, target=worker.name, rule=note.rule, camera=note.camera,
                path=note.path, tries=tries, deleted=deleted,
            )  # fmt: skip
        else:
            worker.failed += 1
            event = SendErrored(
                time=now, target=worker.name, rule=note.rule, camera=note.camera,
                path=note.path, tries=tries, reason=reason,
            )  # fmt: skip
        self._emit_event(event)

    def _settle_shot(self, path: str | None, *, ok: bool, delete: bool) -> bool:
        """One target is done with a shot; True when that made the shot go (deleted)."""
        if path is None:
            return False
        shot = self._shots.get(path)
        if shot is None:
            return False
        shot.pending -= 1
        shot.failed = shot.failed or not ok
        if shot.pending > 0:
            return False
        del self._shots[path]
        if shot.delete and not shot.failed:
            try:
                Path(path).unlink()
            except OSError as exc:
                log.warning("send: cannot delete %s after sending: %s", path, exc.strerror or exc)
                return False
            return True
        return False

    def _emit_event(self, event: Event) -> None:
        if self._emit is not None:
            self._emit(event)

    def stats(self) -> dict[str, Any]:
        return {
            name: {
                "sent": w.sent,
                "failed": w.failed,
                "queued": w.queue.qsize(),
                "refused": w.spam.refused,
            }
            for name, w in self._workers.items()
        }
