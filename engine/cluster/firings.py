"""Schedules that fire once per site: every engine publishes, the work queue hands out one.

Every engine computes the same fire instants with the schedule core and
publishes each as ``rule@instant`` (the ``Nats-Msg-Id``): the stream's
duplicate window keeps the first copy. One durable pull consumer per rule
hands each firing to one engine, which runs the rule's actions and only then
acks: an engine that dies mid-action leaves its firing unacked, and JetStream
hands it to another engine after ``ack_wait`` (a running engine keeps saying
"in progress" meanwhile). What the modes and cooldown decide is in
``engine.cluster.decide``; the last accepted instants of each rule live in a
KV bucket so every engine, and an engine started later, decides alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from engine.cluster.decide import RECENT, Delivery, Mode, RulePolicy, Verdict, decide
from engine.cluster.link import Link, Outgoing
from engine.cluster.names import instant_text, token
from engine.cluster.payload import loads

log = logging.getLogger("engine.cluster")

RUNS = 16  # finished runs remembered per rule
MAX_DELIVER = 20  # a fire handed out this often is given up (it may be what kills engines)
RunFiring = Callable[[str, int, float, int], Coroutine[Any, Any, bool]]  # False: not run here


@dataclass
class _Running:
    instant: float
    task: asyncio.Task[bool]
    superseded: bool = False
    delivery: int = 1


@dataclass
class FiringStats:
    published: int = 0
    received: int = 0
    ran: int = 0
    redelivered: int = 0  # runs of firings another engine had and did not finish
    skipped: Counter[str] = field(default_factory=Counter)  # by verdict


class Firings:
    """Publishes this engine's schedule fires and runs the ones the work queue gives it."""

    def __init__(
        self,
        link: Link,
        policies: dict[str, RulePolicy],
        run: RunFiring,
        *,
        now: Callable[[], float],
    ) -> None:
        self.link = link
        self.policies = policies
        self.run = run
        self.now = now
        self.stats = FiringStats()
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, list[_Running]] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._watch: object | None = None
        self._stopping = False

    # -- publishing ------------------------------------------------------------------

    def publish(self, rule: str, index: int, instant: float) -> None:
        """Offer a fire to the site; the server keeps the first copy of ``rule@instant``."""
        names = self.link.names
        body = {"rule": rule, "index": index, "instant": instant, "engine": self.link.engine_name}
        self.stats.published += 1
        self.link.send(
            Outgoing(
                names.firing_subject(rule),
                json.dumps(body).encode(),
                {"Nats-Msg-Id": names.firing_id(rule, instant)},
                jetstream=True,
                # Only within the duplicate window can the server tell a copy: past half of
                # it, a fire that waited out an outage is not sent at all.
                deadline=instant + self.link.config.duplicate_window / 2,
            )
        )

    # -- consuming -------------------------------------------------------------------

    async def start(self) -> None:
        for rule in self.policies:
            await self._consume(rule)
        if any(p.mode is Mode.RESTART for p in self.policies.values()):
            assert self.link.nc is not None
            self._watch = await self.link.nc.subscribe(self.link.names.firings, cb=self._seen)

    async def update(self, policies: dict[str, RulePolicy]) -> None:
        """Rules reloaded: consume the new ones, resize changed ones, let removed ones be."""
        for rule in [r for r in self.policies if r not in policies]:
            del self.policies[rule]
            task = self._loops.pop(rule, None)
            if task is not None:
                task.cancel()
        for rule, policy in policies.items():
            old = self.policies.get(rule)
            self.policies[rule] = policy
            if old is None:
                await self._consume(rule)
            elif old.slots != policy.slots:
                await self._declare(rule)  # the server resizes the consumer's slots
        if self._watch is None and any(p.mode is Mode.RESTART for p in policies.values()):
            assert self.link.nc is not None
            self._watch = await self.link.nc.subscribe(self.link.names.firings, cb=self._seen)

    async def _declare(self, rule: str) -> str:
        names = self.link.names
        durable = names.firing_consumer(rule)
        await self.link.work_queue(
            names.firing_stream,
            durable,
            names.firing_subject(rule),
            in_flight=self.policies[rule].slots,
            max_deliver=MAX_DELIVER,
        )
        return durable

    async def _consume(self, rule: str) -> None:
        durable = await self._declare(rule)
        stream = self.link.names.firing_stream
        sub = await self.link.js.pull_subscribe_bind(durable=durable, stream=stream)
        self._loops[rule] = asyncio.get_running_loop().create_task(
            self._loop(rule, sub), name=f"firings {rule}"
        )

    async def _loop(self, rule: str, sub: object) -> None:
        fetch = sub.fetch  # type: ignore[attr-defined]
        while not self._stopping:
            policy = self.policies[rule]
            if len(self._running.get(rule, ())) >= policy.slots:
                await asyncio.sleep(0.02)  # the server would not hand out more anyway
                continue
            try:
                messages: list[Msg] = await fetch(1, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server away, a reconnect under way
                log.debug("firings %s: fetch failed (%s)", rule, exc)
                await asyncio.sleep(0.25)
                continue
            for msg in messages:
                task = asyncio.get_running_loop().create_task(self._handle(rule, msg))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)
                await asyncio.sleep(0)  # let it claim its slot before fetching again

    async def _handle(self, rule: str, msg: Msg) -> None:
        try:
            body = loads(msg.data)
            instant, index = float(body["instant"]), int(body["index"])
        except (ValueError, KeyError, TypeError):
            log.warning("firings %s: a message that is no firing; dropped", rule)
            await msg.term()
            return
        self.stats.received += 1
        policy = self.policies.get(rule)
        if policy is None:  # the rule went away in a reload
            await msg.ack()
            return
        meta = msg.metadata
        stored = meta.timestamp.timestamp()
        waited = max(0.0, self.now() - stored)
        delivery = Delivery(instant, meta.num_delivered, meta.num_pending, stored, waited)
        try:
            verdict = await self._decide(rule, policy, delivery)
        except (nats.errors.Error, OSError) as exc:
            # The site's record cannot be read (the server going away): decide later.
            log.debug(
                "rule %s: cannot decide on fire %s now (%s)", rule, instant_text(instant), exc
            )
            with contextlib.suppress(Exception):
                await msg.nak(delay=0.5)
            return
        if verdict is not Verdict.RUN:
            self.stats.skipped[verdict.value] += 1
            log.info("rule %s: fire at %s not run (%s)", rule, instant_text(instant), verdict.value)
            await msg.ack()
            return
        if delivery.delivered > 1:
            self.stats.redelivered += 1
            log.info("rule %s: running fire %s again (its engine did not finish it)", rule,
                     instant_text(instant))  # fmt: skip
        run = asyncio.get_running_loop().create_task(
            self.run(rule, index, instant, delivery.delivered), name=f"cluster rule {rule}"
        )
        running = _Running(instant, run, delivery=delivery.delivered)
        self._running.setdefault(rule, []).append(running)
        beat = asyncio.get_running_loop().create_task(self._beat(msg))
        self.stats.ran += 1
        started = self.now()
        try:
            await asyncio.shield(run)
        except asyncio.CancelledError:
            if not run.done():  # this handler was cancelled: the engine is stopping
                run.cancel()
                with contextlib.suppress(BaseException):
                    await run
        except Exception:
            log.exception("rule %s failed", rule)
        finally:
            beat.cancel()
            self._running[rule].remove(running)
            not_run = (
                run.done() and not run.cancelled() and run.exception() is None and not run.result()
            )
            cut_short = (run.cancelled() and not running.superseded) or not_run
            with contextlib.suppress(Exception):
                if cut_short:
                    await msg.nak()  # stopping (mid-run, or before it): another engine does it
                else:
                    await self._record_run(rule, started, self.now())
                    await msg.ack()

    async def _decide(self, rule: str, policy: RulePolicy, delivery: Delivery) -> Verdict:
        """Decide on the site's record of accepted instants, and record an accepted one."""
        kv = self.link.rule_state
        assert kv is not None
        key = token(rule)
        for _ in range(10):  # another engine updating at the same moment: read again
            record, revision = await _record(kv, key)
            verdict = decide(policy, delivery, record.accepted, record.runs)
            if verdict is not Verdict.RUN or delivery.delivered > 1:
                return verdict
            record.accepted = sorted([*record.accepted, delivery.instant])[-RECENT:]
            if await _store(kv, key, record, revision):
                return verdict
        return Verdict.DUPLICATE

    async def _record_run(self, rule: str, start: float, end: float) -> None:
        """A finished run, for telling later firings whether they waited for a real one."""
        kv = self.link.rule_state
        assert kv is not None
        key = token(rule)
        for _ in range(10):
            record, revision = await _record(kv, key)
            record.runs = [*record.runs, (start, end)][-RUNS:]
            if await _store(kv, key, record, revision):
                return

    async def _beat(self, msg: Msg) -> None:
        """Keep the firing ours while it runs: the server waits ``ack_wait`` from each beat."""
        every = max(0.1, self.link.config.ack_wait / 3)
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _seen(self, msg: Msg) -> None:
        """restart mode: a newer fire of a rule running here cancels the running one."""
        try:
            body = loads(msg.data)
            rule, instant = str(body["rule"]), float(body["instant"])
        except (ValueError, KeyError, TypeError):
            return
        policy = self.policies.get(rule)
        if policy is None or policy.mode is not Mode.RESTART:
            return
        for running in self._running.get(rule, ()):
            if running.instant < instant and not running.superseded:
                running.superseded = True
                running.task.cancel()

    def running(self) -> list[tuple[str, float, int]]:
        """(rule, instant, delivery) of every fire running here now, for the engine's record."""
        return [(rule, r.instant, r.delivery) for rule, runs in self._running.items() for r in runs]

    @property
    def in_flight(self) -> int:
        return sum(len(r) for r in self._running.values())

    def stop_taking(self) -> None:
        """Take no more firings (the engine is stopping); running ones go on."""
        self._stopping = True
        for task in self._loops.values():
            task.cancel()

    async def stop(self, timeout: float) -> None:
        """No more firings taken; running ones get ``timeout`` s, then go back to the queue."""
        self.stop_taking()
        await asyncio.gather(*self._loops.values(), return_exceptions=True)
        handlers = list(self._handlers)
        if handlers:
            _, pending = await asyncio.wait(handlers, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
        if self._watch is not None:
            with contextlib.suppress(Exception):
                await self._watch.unsubscribe()  # type: ignore[attr-defined]


@dataclass
class _RuleRecord:
    """What the site keeps per rule in the KV bucket."""

    accepted: list[float] = field(default_factory=list)
    runs: list[tuple[float, float]] = field(default_factory=list)


async def _record(kv: KeyValue, key: str) -> tuple[_RuleRecord, int | None]:
    try:
        entry = await kv.get(key)
    except nats.js.errors.KeyNotFoundError:
        return _RuleRecord(), None
    try:
        value = loads(entry.value)
        record = _RuleRecord(
            [float(v) for v in value.get("accepted", ())],
            [(float(a), float(b)) for a, b in value.get("runs", ())],
        )
    except (ValueError, TypeError, AttributeError):
        record = _RuleRecord()  # unreadable: decide as if new rather than stop the rule
    return record, entry.revision


async def _store(kv: KeyValue, key: str, record: _RuleRecord, revision: int | None) -> bool:
    """Compare-and-set: False when another engine wrote first (read again and redo)."""
    value = json.dumps({"accepted": record.accepted, "runs": record.runs}).encode()
    try:
        if revision is None:
            await kv.create(key, value)
        else:
            await kv.update(key, value, last=revision)
    except nats.js.errors.KeyWrongLastSequenceError:
        return False
    return True
