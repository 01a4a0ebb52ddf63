"""The engine's asyncio driver: sources, recorders, shots, schedules and rules on one loop.

``EngineCore`` (``engine.runtime.core``) decides; this driver drives. It owns
the tasks (one pump per source, the timer, the rule-file watcher), the
signals, the shot service, the adapters (HTTP, MQTT...) and the listeners of
the events, and it performs what the core returns: each firing goes to the
rule runner, each event to the listeners and back to the core.

Data flow, per frame (the hot path, synchronous, no awaits)::

    source -> core.frame: recorders of that source, frame cache, rulebook
           -> firings -> rule runner -> actions

How time moves is the ``Timebase``'s (``engine.runtime.timebase``): on the wall
clock APScheduler fires schedules and a timer ticks recorders; in virtual time
(a ``ManualClock``) each frame's receive time moves the clock, and every
schedule fire up to it happens first, so a replay sees schedules and messages
in the order a live run saw them. When to stop is the core's decision
(``StopDecision``): this driver tells it what happened and carries it out.

Stopping (SIGINT, SIGTERM, ``--for``, or every source ended): no new
firings, sources closed, running actions get ``stop_timeout`` seconds to
finish, every recorder closes its segment (manifest written), the shot
service finishes or abandons what is queued, the adapters close after the
last event, and the summary is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.core.frame import Frame, Gap
from engine.events import (
    EngineStarted,
    EngineStopping,
    Event,
    RecordingStarted,
    RecordingStopped,
    ReloadApplied,
    ReloadRefused,
    RuleFired,
    SourceClosed,
)
from engine.rules.loader import RuleSet
from engine.runtime.actions import ActionRunner
from engine.runtime.core import EngineCore, Step, StopCause, StopDecision, schedule_jobs
from engine.runtime.jobs import Scheduler
from engine.runtime.rulebook import Firing, Rulebook
from engine.runtime.runner import RuleRunner
from engine.runtime.sources import build_source
from engine.runtime.stats import RunStats
from engine.runtime.subscribers import Callback, EventStream, Subscribers
from engine.runtime.summary import Summary
from engine.runtime.timebase import timebase_for
from engine.sources.base import Source

if TYPE_CHECKING:
    from engine.recorder.recorder import Recorder
    from engine.runtime.control import Control
    from engine.runtime.status import EngineStatus
    from engine.shots.config import ShotsConfig
    from engine.shots.frame_cache import FrameCache
    from engine.shots.service import ShotService

log = logging.getLogger("engine")

VIRTUAL_SETTLE = 5.0  # real seconds virtual time waits for rule runs to finish


class Adapter(Protocol):
    """Something that runs beside the engine in its loop: a server, a broker client.

    ``start`` returns once it serves (after the engine has built its parts,
    before sources start, so it sees every event); ``aclose`` is awaited at
    the very end of the stop, after the recorders closed, so the last events
    (``recording.stopped``) still go out.
    """

    async def start(self, engine: Engine) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class FiringSink(Protocol):
    """An adapter that takes schedule fires over (a cluster: one engine of the site runs each).

    ``schedule_fired`` returns True when it took the fire; the fire then runs
    wherever the sink decides, through ``Engine.run_firing``. Without such an
    adapter every fire goes to the local rule runner.
    """

    def schedule_fired(self, rule: str, index: int, time: float) -> bool: ...


@runtime_checkable
class SourceMaker(Protocol):
    """An adapter that makes some sources itself (a cluster: which engine reads a device).

    ``make_source`` returns the source to run for ``config``, or None to leave it to
    the engine; ``build()`` makes the source as the engine would.
    """

    def make_source(self, name: str, config: Any, build: Callable[[], Source]) -> Source | None: ...


class Engine:
    """Runs a ``RuleSet``: ``summary = await Engine(rules).run(duration=20)``.

    ``clock``: a ``ManualClock`` runs in virtual time (sources are then run as
    fast as possible and move the clock). ``sources``: source objects to use
    instead of building them from the rule files (a replay passes its log).
    ``dry_run``: shots and commands are only noted; recordings go to a
    temporary folder that is removed at the end. ``watch``: rule files (or
    folders) to reload from when they change. ``adapters``: run beside the
    engine (see ``Adapter``).
    """

    def __init__(
        self,
        rules: RuleSet,
        *,
        clock: Clock = SYSTEM_CLOCK,
        dry_run: bool = False,
        recordings: str | os.PathLike[str] | None = None,
        shots_folder: str | os.PathLike[str] | None = None,
        sources: Mapping[str, Source] | None = None,
        watch: Sequence[str | os.PathLike[str]] | None = None,
        env: Mapping[str, str] | None = None,
        reload_debounce: float = 0.3,
        adapters: Sequence[Adapter] = (),
    ) -> None:
        self.clock = clock
        self.time = timebase_for(clock)
        self.dry_run = dry_run
        self.adapters: list[Adapter] = list(adapters)
        self.firing_sink = next((a for a in self.adapters if isinstance(a, FiringSink)), None)
        self.stats = RunStats()
        self.scheduler: Scheduler = self.time.scheduler(self._on_schedule, rules.tz)
        self.core = EngineCore(
            rules,
            self.scheduler,
            self.stats,
            exact_shot_times=self.time.exact_shot_times,
            time_moves_by_itself=self.time.moves_by_itself,
        )
        self.reloads: list[object] = []  # outcome of each reload: changes, or RuleFileError
        self.sources: dict[str, Source] = {}
        self.shots: ShotService | None = None
        self.cache: FrameCache | None = None
        self.started_at = 0.0
        self._watch = list(watch) if watch else None
        self._env = env
        self._debounce_ms = max(1, round(reload_debounce * 1000))
        self._recordings_override = recordings
        self._shots_override = shots_folder
        self._given_sources = dict(sources) if sources is not None else None
        self._subscribers = Subscribers()
        self._streams: set[EventStream] = set()
        self._recorders: dict[str, Recorder] = {}
        self.core.set_recorders(self._recorders)
        self.actions = ActionRunner(
            shots=None,
            recorders=self._recorders,
            tz=rules.tz,
            dry_run=dry_run,
            note=self._note,
            exact_time=self.time.exact_shot_times,
            on_refused=self.stats.shot_refused,
        )
        self.runner = RuleRunner(self.core.rulebook, self.actions.run)
        self._pumps: dict[str, asyncio.Task[None]] = {}
        # Shot services replaced by a reload, finishing their queues; awaited at shutdown.
        self._retiring: set[asyncio.Task[None]] = set()
        self._seen_sources: dict[str, Source] = {}
        self._closed_said: set[str] = set()  # sources whose source.closed went out
        self._stop: asyncio.Event | None = None
        self._main: asyncio.Task[Any] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.unsettled = False  # virtual time: runs were started, settle them before moving on
        # What the status page and API read and steer (engine/runtime/status.py, control.py).
        from engine.runtime.control import Control
        from engine.runtime.history import RunHistory
        from engine.runtime.status import Rates

        self.history = RunHistory()
        self.subscribe(self.history.on_event)
        self._rates = Rates()
        self.control: Control = Control(self)

    # -- what the core holds -----------------------------------------------------------------

    @property
    def rules(self) -> RuleSet:
        return self.core.rules

    @property
    def rulebook(self) -> Rulebook:
        return self.core.rulebook

    @property
    def recorders(self) -> dict[str, Recorder]:
        return self._recorders

    @property
    def tz(self) -> Any:
        return self.core.rules.tz

    @property
    def stop_decision(self) -> StopDecision | None:
        """Why the run stops (``cause``, ``reason``), once that is decided; None until then."""
        return self.core.stop_decision if self._stop is not None else None

    @property
    def stop_reason(self) -> str:
        """The stop's reason as the summary says it ("ran for 20 s"); "" while running."""
        decision = self.stop_decision
        return decision.reason if decision is not None else ""

    # -- folders -------------------------------------------------------------

    @property
    def recordings_root(self) -> Path:
        if self._tmp is not None:
            return Path(self._tmp.name)
        if self._recordings_override is not None:
            return Path(self._recordings_override)
        return Path(self.rules.settings.recordings)

    def _shots_settings(self, rules: RuleSet) -> ShotsConfig:
        settings = rules.settings.shots
        update: dict[str, Any] = {}
        if self._shots_override is not None:
            update["folder"] = str(self._shots_override)
        if settings.timezone is None and rules.settings.timezone != "local":
            update["timezone"] = rules.settings.timezone  # dates in shot names: the rules' zone
        return settings.model_copy(update=update) if update else settings

    # -- building ------------------------------------------------------------

    def _build_recorder(self, name: str, rules: RuleSet) -> Recorder:
        from engine.recorder.recorder import Recorder

        config = rules.recorders[name]
        source = rules.recorder_source(name)
        if config.source != source:
            config = config.model_copy(update={"source": source})
        return Recorder(
            name,
            config,
            root=self.recordings_root,
            emit=self.emit,
            clock=self.clock,
            flushes=self.time.flushes,
        )

    async def _start_shots(self, rules: RuleSet) -> ShotService | None:
        if self.dry_run or not rules.cameras:
            return None
        from engine.shots.service import ShotService

        service = ShotService(
            rules.cameras,
            self._shots_settings(rules),
            emit=self.emit,
            clock=self.clock,
            frame_cache=self.cache,
        )
        await service.start()
        return service

    def _build_source(self, name: str, config: Any) -> Source:
        def build() -> Source:
            return build_source(name, config, self.clock, virtual=not self.time.paced)

        for adapter in self.adapters:
            if isinstance(adapter, SourceMaker):
                made = adapter.make_source(name, config, build)
                if made is not None:
                    return made
        return build()

    def _start_source(self, name: str, source: Source) -> None:
        source.notify = self.emit
        self.sources[name] = source
        self._seen_sources[name] = source
        self._closed_said.discard(name)
        self.core.source_started(name)
        self._pumps[name] = asyncio.get_running_loop().create_task(
            self._pump(name, source), name=f"source {name}"
        )

    async def _stop_source(self, name: str) -> None:
        source = self.sources.pop(name, None)
        task = self._pumps.pop(name, None)
        self.core.source_stopped(name)
        if source is not None:
            with contextlib.suppress(Exception):
                await source.aclose()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if source is not None and name not in self._closed_said:
            self._closed_said.add(name)
            self.emit(SourceClosed(time=self.clock.time(), source=name, reason="stopped"))

    # -- running -------------------------------------------------------------

    async def run(self, duration: float | None = None) -> Summary:
        """Run until stopped, ``duration`` seconds (of engine time) pass, or the sources end."""
        from engine.shots.frame_cache import FrameCache

        self._stop = asyncio.Event()
        self._main = asyncio.current_task()
        self.started_at = now = self.clock.time()
        if self.dry_run:
            self._tmp = tempfile.TemporaryDirectory(prefix="cuecap-dry-run-")
        self.cache = self.core.cache = FrameCache()
        try:
            for name in self.rules.recorders:
                self._recorders[name] = self._build_recorder(name, self.rules)
            self.core.set_recorders(self._recorders)
            self.shots = await self._start_shots(self.rules)
            self.actions.shots = self.shots
            self.core.start(now, duration, own_sources=self._given_sources is None)
            self.scheduler.start()
            for adapter in self.adapters:
                await adapter.start(self)
            self.emit(EngineStarted(time=now))
            sources = self._given_sources
            if sources is None:
                sources = {
                    name: self._build_source(name, config)
                    for name, config in self.rules.sources.items()
                }
            for name, source in sources.items():
                self._start_source(name, source)
            background = self._background()
            self._stop_for(self.core.stop_decision)  # one asked before run()
            if self.core.nothing_to_run:
                log.warning("nothing to run: no sources and no schedules")
            try:
                if await self.time.wait(self._stop, duration):
                    self._stop_for(self.core.time_up())
            finally:
                for task in background:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            return await self._shutdown()
        except BaseException:
            await self._abort()
            raise

    def _background(self) -> list[asyncio.Task[None]]:
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []
        ticker = self.time.ticker(lambda: self.rules.settings.tick, self._tick)
        if ticker is not None:
            tasks.append(loop.create_task(ticker, name="engine timer"))
        flusher = self.time.flusher(lambda: self._recorders, self.clock.time)
        if flusher is not None:
            tasks.append(loop.create_task(flusher, name="recorder flusher"))
        if self._watch:
            from engine.runtime.reload import watch_rules

            assert self._stop is not None
            watcher = watch_rules(
                self.apply,
                self._watch,
                stop=self._stop,
                env=self._env,
                debounce_ms=self._debounce_ms,
                on_result=self._reloaded,
            )
            tasks.append(loop.create_task(watcher, name="rule watcher"))
        return tasks

    def status(self) -> EngineStatus:
        """What every source, recorder, camera and rule is doing now (JSON: ``to_json()``)."""
        from engine.runtime.status import build_status

        return build_status(self, self.history, self._rates)

    @property
    def running(self) -> bool:
        """True from the start until the stop begins."""
        return self.core.accepting

    def known_sources(self) -> dict[str, Source]:
        """Every source this run has had, by name (ended ones too)."""
        return dict(self._seen_sources)

    def request_stop(self, reason: str = "stopped") -> None:
        """Begin a clean stop (safe to call from signal handlers and any task).

        Asked before ``run()``, the run stops as soon as it has started.
        """
        self._stop_for(self.core.request_stop(StopCause.REQUESTED, reason))

    def _stop_for(self, decision: StopDecision | None) -> None:
        """Carry out the core's stop decision (None: nothing decided, or decided before)."""
        if decision is None or self._stop is None or self._stop.is_set():
            return
        log.info("stopping: %s", decision.reason)
        self._stop.set()

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event from now on; returns the unsubscriber.

        It runs on the loop thread as the event happens and must not block.
        """
        return self._subscribers.add(callback)

    def events(self, maxsize: int = 1000) -> EventStream:
        """Every event from now on as a bounded async iterator (oldest dropped, counted).

        The stream ends once the engine has stopped.
        """
        stream = EventStream(maxsize)
        stream._unsubscribe = self._subscribers.add(stream.put)
        self._streams.add(stream)
        return stream

    def install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM stop the engine cleanly; a second one stops it at once.

        Even then every recording is closed: only running actions are cut short.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        name = signal.Signals(sig).name
        if self._stop is not None and self._stop.is_set():
            # A second signal: stop waiting for actions; recordings are still closed.
            log.warning("%s again: stopping now", name)
            if self._main is not None:
                self._main.cancel()
            return
        self._stop_for(self.core.request_stop(StopCause.SIGNAL, f"{name} received"))

    async def _pump(self, name: str, source: Source) -> None:
        closed_reason = "ended"
        try:
            if await self.time.run_source(source, self):
                closed_reason = "stopped"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = f"source {name} failed: {exc}"
            closed_reason = f"failed: {exc}"
            self.stats.error(message)
            log.error("%s", message)
        self._closed_said.add(name)
        self.emit(SourceClosed(time=self.clock.time(), source=name, reason=closed_reason))
        if self._pumps.get(name) is asyncio.current_task():  # not one a reload replaced
            if self.core.accepting:
                log.info("source %s ended", name)
            self._step(self.core.source_ended(name, self.clock.time()))

    # -- the Feed a timebase drives sources into (engine.runtime.timebase.Feed) ----------

    def take_frame(self, frame: Frame) -> bool:
        """One frame: to the core, and its firings to the rule runner; False once stopped."""
        try:
            firings = self.core.frame(frame)
        except Exception:
            stats = self.stats
            stats.frame_errors += 1
            if stats.frame_errors <= 3:
                log.exception("frame %d of %s could not be handled", frame.seq, frame.source)
            return True
        if firings is None:
            return False
        fire = self._fire
        for firing in firings:
            fire(firing)
        return True

    def take_gap(self, gap: Gap) -> None:
        self.emit(self.core.gap(gap))

    def move_to(self, time: float) -> bool:
        """Virtual time moves on to a frame's time: False once that is past the end."""
        step = self.core.until(time)
        self._step(step)
        return step.go_on

    async def settle(self) -> None:
        """Virtual time: the runs just started finish before the stream moves on.

        Actions take no virtual time, so a rule's mode and the next frames see
        them done, as in a live run where they are quick. A run still going
        after ``VIRTUAL_SETTLE`` real seconds is left to finish in the background.
        """
        self.unsettled = False
        if not await self.runner.settle(VIRTUAL_SETTLE):
            log.warning("rule runs still going after %gs; virtual time moves on", VIRTUAL_SETTLE)

    def _step(self, step: Step) -> None:
        """Carry out what the core returned: firings run, failed ticks said, the stop begun."""
        for firing in step.firings:
            self._fire(firing)
        if step.failed:
            self._log_tick_failures(step.failed)
        self._stop_for(step.stop)

    def _tick(self, now: float) -> None:
        self._log_tick_failures(self.core.tick(now))

    def _log_tick_failures(self, failed: Sequence[tuple[str, Exception]]) -> None:
        for name, exc in failed:
            failures = self.core.tick_failures[name]
            if str(failures).rstrip("0") == "1":  # 1, 10, 100...: said, without a flood
                log.error("recorder %s: tick failed (%d times)", name, failures, exc_info=exc)

    # -- events and firings ----------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Where recorders, the shot service and sources report; listeners and rules hear it."""
        if isinstance(event, RecordingStarted):
            log.info("recording started: %s -> %s (%s)", event.recorder, event.path, event.reason)
        elif isinstance(event, RecordingStopped):
            log.info("recording stopped: %s (%s, %s messages)", event.path, event.reason,
                     event.records)  # fmt: skip
        if self._subscribers:  # listeners first: they see an event before what it fires
            self._subscribers.publish(event)
        for firing in self.core.event(event):
            self._fire(firing)

    def on_mqtt(self, topic: str, payload: bytes) -> int:
        """An MQTT message arrived (the MQTT adapter calls this): fire the rules it matches."""
        firings = self.core.mqtt(topic, payload, self.clock.time())
        for firing in firings:
            self._fire(firing)
        return len(firings)

    def _on_schedule(self, rule: str, index: int, time: float) -> None:
        sink = self.firing_sink
        if sink is not None and self.core.accepting and sink.schedule_fired(rule, index, time):
            return
        firing = self.core.schedule(rule, index, time)
        if firing is not None:
            self._fire(firing)

    def fire(self, firing: Firing) -> None:
        """Run a firing made outside the rulebook (``Engine.control``'s "fire now")."""
        if self.core.accepting:
            self.stats.fired(firing)
            self._fire(firing)

    async def run_firing(self, rule: str, index: int, time: float, *, detail: str = "") -> bool:
        """Run a schedule fire a ``FiringSink`` handed back, now, to its end; False: not run.

        The sink has already decided by the rule's mode and cooldown (site-wide),
        so this bypasses the local rule runner; it counts and reports the firing
        like any other. Not run: the rule is gone or the engine is stopping.
        """
        current = self.core.rulebook.rules.get(rule)
        if current is None or not self.core.accepting:
            return False
        firing = Firing(rule, time, "schedule", index, "schedule", "",
                        self.stats.firing_counts[rule] + 1, {})  # fmt: skip
        self.stats.fired(firing)
        self._announce(firing, detail or None)
        await self.actions.run(current, firing)
        return True

    def _fire(self, firing: Firing) -> None:
        self._announce(firing, None)
        self.runner.submit(firing)

    def _announce(self, firing: Firing, detail: str | None) -> None:
        """Log and publish a firing; its description (``detail`` when None) is only
        written when a debug log or a subscriber will read it."""
        self.unsettled = True
        debug = log.isEnabledFor(logging.DEBUG)
        if not debug and not self._subscribers:
            return
        if detail is None:
            detail = firing.describe()
        if debug:
            log.debug("rule %s fired: %s", firing.rule, detail)
        if self._subscribers:
            self._subscribers.publish(
                RuleFired(
                    time=firing.time,
                    rule=firing.rule,
                    trigger=firing.trigger,
                    event=firing.event,
                    source=firing.source,
                    count=firing.count,
                    detail=detail,
                )
            )

    def _note(self, firing: Firing, what: str) -> None:
        self.stats.note(firing, self.rules.redact(what))

    # -- reloading -----------------------------------------------------------------

    async def apply(self, rules: RuleSet) -> dict[str, list[str]]:
        """Switch to new rules without a restart; what did not change keeps running.

        Returns what changed, by kind (``"rules"``, ``"recorders"``...), for the log.
        """
        plan = self.core.plan_reload(rules, own_sources=self._given_sources is None)
        # A new shot service is built first: it is the step that fails on rules that load
        # (a camera function that does not import), and failing here changes nothing.
        new_shots = await self._start_shots(rules) if plan.replace_shots else None
        # Then everything new is built before anything old is touched: a recorder whose
        # folder cannot be made, a source that cannot be built, fails the reload whole.
        old_rules = self.core.rules
        self.core.rules = rules  # new recorders are built under the new settings
        try:
            built = {
                n: self._build_recorder(n, rules) for n in plan.recorders if n in rules.recorders
            }
            sources = {
                n: self._build_source(n, rules.sources[n])
                for n in plan.sources
                if n in rules.sources
            }
        except BaseException:
            self.core.rules = old_rules
            if new_shots is not None:
                await new_shots.aclose(graceful=False)
            raise
        # Recorders: a changed one closes its segment and the new one starts afresh.
        recorders = self._recorders
        for name in plan.recorders:
            recorder = recorders.pop(name, None)
            if recorder is not None:
                recorder.close("rules reloaded")
                self.stats.segments_closed(name, recorder.segments, recorder.seq)
            if name in built:
                recorders[name] = built[name]
        self.core.set_recorders(recorders)
        for name in plan.sources:
            await self._stop_source(name)
            if name in sources:
                self._start_source(name, sources[name])
        if plan.replace_shots:
            previous = self.shots
            self.shots = self.actions.shots = new_shots
            if previous is not None:
                # Kept, so the task is neither garbage-collected mid-way nor forgotten at shutdown.
                retiring = asyncio.get_running_loop().create_task(
                    previous.aclose(graceful=True), name="retiring shot service"
                )
                self._retiring.add(retiring)
                retiring.add_done_callback(self._retiring.discard)
        self.core.use_rules(rules, self.clock.time())
        self.runner.use(self.core.rulebook)
        self.actions.tz = rules.tz
        if plan.mqtt or plan.targets or plan.at_next_start:
            # Last: a new MQTT client subscribes to the new rules' topics from the start.
            from engine.runtime.adapters import reload_adapters

            try:
                await reload_adapters(self, plan, self._env)
            except Exception:  # the new rules run already: say so, and keep them
                log.exception("the rules were reloaded, but rebuilding an adapter (MQTT, "
                              "targets) failed; it applies when cuecap run starts again")  # fmt: skip
        return {kind: list(names) for kind, names in plan.changes.items()}

    def _reloaded(self, outcome: object) -> None:
        """The watcher's report of one reload: kept, and announced."""
        self.reloads.append(outcome)
        now = self.clock.time()
        if isinstance(outcome, dict):
            changes = {str(k): tuple(v) for k, v in outcome.items()}
            self.emit(ReloadApplied(time=now, changes=changes))
        else:
            errors = getattr(outcome, "errors", None)
            lines = tuple(str(e) for e in errors) if errors else (str(outcome),)
            self.emit(ReloadRefused(time=now, errors=lines))

    # -- stopping ------------------------------------------------------------------

    async def _shutdown(self) -> Summary:
        self.emit(EngineStopping(time=self.clock.time(), reason=self.stop_reason))
        self.core.stop()
        self.scheduler.shutdown()
        for name in list(self.sources):
            await self._stop_source(name)
        # One deadline for the whole stop: actions, the shot queue, replaced services.
        deadline = asyncio.get_running_loop().time() + self.rules.settings.stop_timeout
        cancelled = await self.runner.stop(self.rules.settings.stop_timeout)
        if cancelled:
            self.stats.error(f"{cancelled} rule runs did not finish in time and were cancelled")
        end_reason = self.time.closes_recordings_with
        for name, recorder in self.recorders.items():
            try:
                recorder.close(end_reason)
            except Exception as exc:
                self.stats.error(f"recorder {name} did not close cleanly: {exc}")
            self.stats.segments_closed(name, recorder.segments, recorder.seq)
        if self.shots is not None:
            await self.shots.aclose(graceful=True, timeout=self._left(deadline))
        await self._close_retiring(graceful=True, timeout=self._left(deadline))
        summary = self.stats.summary(
            started=self.started_at,
            ended=self.clock.time(),
            reason=self.stop_reason,
            sources=self._seen_sources,
            dry_run=self.dry_run,
        )
        await self._close_adapters()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return summary

    async def _close_adapters(self) -> None:
        """Adapters last (they publish the final events), then the event streams end."""
        for adapter in reversed(self.adapters):
            try:
                await adapter.aclose()
            except Exception:
                log.exception("closing %r failed", adapter)
        for stream in list(self._streams):
            stream.close()
        self._streams.clear()

    @staticmethod
    def _left(deadline: float) -> float:
        return max(0.0, deadline - asyncio.get_running_loop().time())

    async def _close_retiring(self, *, graceful: bool, timeout: float = 0.0) -> None:
        """Wait for shot services a reload replaced (up to ``timeout``), or cut them short."""
        tasks = list(self._retiring)
        if not tasks:
            return
        if graceful:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
        else:
            pending = {t for t in tasks if not t.done()}
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _abort(self) -> None:
        """An error or cancellation: close what is open so nothing recorded is lost."""
        self.core.stop()
        self.scheduler.shutdown()
        for name in list(self.sources):
            with contextlib.suppress(Exception):
                await self._stop_source(name)
        with contextlib.suppress(Exception):
            await self.runner.stop(0)
        for name, recorder in self.recorders.items():
            try:
                recorder.close("aborted")
            except Exception:  # said, not swallowed: the file may need `cuecap log repair`
                log.exception("recorder %s did not close cleanly", name)
        if self.shots is not None:
            with contextlib.suppress(Exception):
                await self.shots.aclose(graceful=False)
        await self._close_retiring(graceful=False)
        with contextlib.suppress(Exception):
            await self._close_adapters()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


__all__ = ["Adapter", "Engine", "schedule_jobs"]
