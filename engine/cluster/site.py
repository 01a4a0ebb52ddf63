"""The engine's side of a site: the adapter that joins an engine to the others over NATS.

``ClusterAdapter`` is an engine adapter (started with the engine, closed after
its last event) and its ``FiringSink``: the local scheduler's fires go to the
site's work queue instead of the local rule runner, and the fires the queue
hands this engine run here through ``Engine.run_firing``. It stands in for
the engine's shot service (shots are bounded site-wide) and publishes every
engine event on ``cuecap.<site>.events.<kind>`` with the engine's name in
the ``Cuecap-Engine`` header. It keeps the engine's record in the site's
engines bucket (``engine.cluster.presence``) and answers ``site_status()``
for the status page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine.cluster.config import ClusterConfig
from engine.cluster.decide import Mode, RulePolicy
from engine.cluster.firings import Firings
from engine.cluster.link import Link, Outgoing
from engine.cluster.names import ENGINE_HEADER, Names
from engine.cluster.presence import Presence, build_record, rules_digest
from engine.cluster.roster import EngineRecord, EngineState, RunningFire, SiteStatus, site_status
from engine.cluster.shots import ClusterShots, FiringScope, current_firing
from engine.cluster.streams import SiteStreams
from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.events import EngineStopping, Event, ReloadApplied, discard

if TYPE_CHECKING:
    from engine.rules.loader import RuleSet
    from engine.runtime.engine import Engine
    from engine.sources.base import Source

log = logging.getLogger("engine.cluster")


def default_engine_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def rule_policies(rules: RuleSet) -> dict[str, RulePolicy]:
    """The site-wide policy of every enabled rule with a schedule."""
    out: dict[str, RulePolicy] = {}
    for name, rule in rules.rules.items():
        graces = [float(getattr(t, "grace", 1.0)) for t in rule.when if t.type == "schedule"]
        if rule.enabled and graces:
            out[name] = RulePolicy(Mode(rule.mode), rule.max, rule.cooldown, max(graces))
    return out


class ClusterAdapter:
    """``Engine(rules, adapters=[ClusterAdapter(rules.settings.cluster)])``."""

    def __init__(
        self,
        config: ClusterConfig,
        *,
        clock: Clock = SYSTEM_CLOCK,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.name = name or config.engine_name(default_engine_name())
        self.clock = clock
        self.link = Link(config, self.name, now=clock.time, env=env)
        self.names = Names(config.name)
        self.firings = Firings(self.link, {}, self._run, now=clock.time)
        self.shots: ClusterShots | None = None
        self.streams = SiteStreams(self.link, clock)
        self._local: Any = None
        self._engine: Engine | None = None
        self._unsubscribe: Any = None
        self.events_sent = 0
        self.presence: Presence | None = None
        self.rules_hash = ""
        self._tasks: set[asyncio.Task[None]] = set()

    # -- FiringSink --------------------------------------------------------------------

    def schedule_fired(self, rule: str, index: int, time: float) -> bool:
        self.firings.publish(rule, index, time)
        return True

    async def _run(self, rule: str, index: int, instant: float, delivered: int) -> bool:
        engine = self._engine
        if engine is None:
            return False
        scope = current_firing.set(FiringScope(Names.firing_id(rule, instant)))
        detail = f"schedule (cluster {self.names.site}, engine {self.name}, delivery {delivered})"
        try:
            return await engine.run_firing(rule, index, instant, detail=detail)
        finally:
            current_firing.reset(scope)

    # -- SourceMaker: publish_to: sources read by one engine, type: nats read from the stream --

    def make_source(self, name: str, config: Any, build: Callable[[], Source]) -> Source | None:
        if self._engine is not None:  # a reload builds its sources under the new rules
            self.streams.rules = self._engine.rules
        return self.streams.make_source(name, config, build)

    # -- Adapter -----------------------------------------------------------------------

    async def start(self, engine: Engine) -> None:
        self._engine = engine
        await self.link.open()
        await self.streams.start(engine.rules)
        # Shots first: a fire taken from the queue must find the site's shot gate in place.
        if engine.rules.cameras and not engine.dry_run:
            await self._start_shots(engine)
        self.firings.policies.update(rule_policies(engine.rules))
        await self.firings.start()
        self._unsubscribe = engine.subscribe(self._on_event)
        self.rules_hash = await asyncio.to_thread(rules_digest, engine.rules.files)
        self.presence = Presence(self.link, self._record, now=self.clock.time)
        await self.presence.start()
        log.info("cluster %s: engine %s joined (%s)", self.names.site, self.name,
                 ", ".join(self.config.nats))  # fmt: skip

    async def _start_shots(self, engine: Engine) -> None:
        from engine.shots.service import ShotService

        rules = engine.rules
        settings = engine._shots_settings(rules)
        # One try per delivery: retries, limits and intervals are the site's.
        cameras = {
            name: camera.model_copy(update={"tries": 1, "max_in_flight": None, "min_interval": 0.0})
            for name, camera in rules.cameras.items()
        }
        self._local = ShotService(
            cameras,
            settings.model_copy(update={"max_tries": 1}),
            emit=discard,
            clock=self.clock,
            frame_cache=engine.cache,
        )
        await self._local.start()
        from engine.shots.policy import RetryPolicy

        self.shots = ClusterShots(
            self.link,
            rules.cameras,
            self._local,
            emit=engine.emit,
            now=self.clock.time,
            retry=RetryPolicy(
                settings.backoff, settings.backoff_factor, settings.backoff_max, settings.jitter
            ),
            max_tries=settings.max_tries,
            timeout=settings.timeout_sec,
            pool_size=settings.pool_size,
        )
        await self.shots.start()
        engine.actions.shots = self.shots

    # -- the site's view --------------------------------------------------------------

    def leads(self) -> tuple[str, ...]:
        """Sources whose stream this engine publishes for the site: it holds their lease."""
        return self.streams.leads()

    def _record(self, state: EngineState) -> EngineRecord:
        engine = self._engine
        assert engine is not None
        local = self._local if self._local is not None else engine.shots
        return build_record(
            engine,
            self.link,
            state=state,
            started=engine.started_at,
            rules_hash=self.rules_hash,
            running=[RunningFire(*fire) for fire in self.firings.running()],
            load=local.load() if local is not None else {},
            leads=self.leads(),
        )

    def site_status(self) -> SiteStatus:
        """Every live engine of the site, its recent fires and warnings (``GET /api/site``)."""
        if self.presence is None:
            note = "this engine has not joined the site yet"
            return site_status(self.names.site, self.name, self.clock.time(), {}, (),
                               notes=[note])  # fmt: skip
        return self.presence.site_status()

    async def _reloaded(self) -> None:
        """Rule files changed: the site's queues follow (new rules, new cameras)."""
        engine = self._engine
        if engine is None:
            return
        try:
            self.rules_hash = await asyncio.to_thread(rules_digest, engine.rules.files)
            await self.firings.update(rule_policies(engine.rules))
            if self.shots is not None and engine.actions.shots is not self.shots:
                # The engine built a new shot service for changed cameras: so does the site.
                previous, self.shots = self.shots, None
                await previous.stop(engine.rules.settings.stop_timeout)
                if self._local is not None:
                    await self._local.aclose(graceful=False)
                    self._local = None
            if self.shots is None and engine.rules.cameras and not engine.dry_run:
                await self._start_shots(engine)
        except Exception:
            log.exception("cluster %s: following the reloaded rules failed", self.names.site)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ReloadApplied):
            task = asyncio.get_running_loop().create_task(self._reloaded(), name="cluster reload")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if isinstance(event, EngineStopping):
            if self.presence is not None:
                self.presence.stopping()
            self.firings.stop_taking()
            if self.shots is not None:
                self.shots.stop_taking()
        self.link.send(
            Outgoing(
                self.names.event_subject(event.kind.value),
                json.dumps(event.to_json()).encode(),
                {ENGINE_HEADER: self.name},
            )
        )
        self.events_sent += 1

    async def aclose(self) -> None:
        engine = self._engine
        timeout = engine.rules.settings.stop_timeout if engine is not None else 5.0
        await asyncio.gather(*self._tasks, return_exceptions=True)  # a reload being followed
        await self.firings.stop(timeout)
        if self.shots is not None:
            await self.shots.stop(timeout)  # the events of shots finishing now still go out
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._local is not None:
            await self._local.aclose(graceful=False)
        if self.link.nc is None:  # never joined (the server could not be reached)
            return
        if self.presence is not None:
            await self.presence.leave()
        await self.link.flush(min(timeout, 5.0))
        outbox = self.link.outbox
        stats = self.firings.stats
        log.info(
            "cluster %s: engine %s left: %d fires published, %d run here (%d redelivered), "
            "%d not run %s; outbox: %d sent, %d dropped, %d expired, %d unsent",
            self.names.site, self.name, stats.published, stats.ran, stats.redelivered,
            sum(stats.skipped.values()), dict(stats.skipped), outbox.sent, outbox.dropped,
            outbox.expired, len(outbox),
        )  # fmt: skip
        await self.link.close()
