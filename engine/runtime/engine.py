"""The engine: one asyncio loop running sources, recorders, shots, schedules and rules.

Data flow, per frame (the hot path, synchronous, no awaits)::

    source -> recorders of that source (feed)
           -> frame cache (camera frames for stream cameras)
           -> rulebook (by message type first, then CEL) -> rule runner -> actions

Recorders and the shot service report through ``emit``; the rulebook turns
those events into firings too. Schedules fire through APScheduler in real
time, or, with a ``ManualClock``, in the virtual time of the frames: before a
frame is dispatched, every schedule fire up to its receive time runs, so a
replay sees schedules and messages in the order a live run saw them.

Stopping (SIGINT, SIGTERM, ``--for``, or every source ended): no new
firings, sources closed, running actions get ``stop_timeout`` seconds to
finish, every recorder closes its segment (manifest written), the shot
service finishes or abandons what is queued, and the summary is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.core.clock import SYSTEM_CLOCK, Clock, ManualClock
from engine.core.frame import Frame, Gap
from engine.events import (
    EngineStarted,
    EngineStopping,
    Event,
    RecordingErrored,
    RecordingStarted,
    RecordingStopped,
    RuleFired,
    ShotErrored,
    ShotSaved,
    SourceClosed,
    SourceGap,
)
from engine.rules.loader import RuleSet
from engine.rules.model import ScheduleTrigger
from engine.runtime.actions import ActionRunner
from engine.runtime.rulebook import Firing, Rulebook
from engine.runtime.runner import RuleRunner
from engine.runtime.scheduler import Job, LiveScheduler, VirtualScheduler
from engine.runtime.sources import build_source
from engine.runtime.subscribers import Callback, EventStream, Subscribers
from engine.runtime.summary import Segment, Summary
from engine.sources.base import Source

if TYPE_CHECKING:
    from engine.recorder.recorder import Recorder

log = logging.getLogger("engine")

# Firings, notes, shot paths and errors kept for the summary: a run of months
# must not grow without bound. Counts go on beyond.
MAX_FIRINGS = 100_000
_YIELD_EVERY = 256  # frames between chances for timers and actions to run
VIRTUAL_SETTLE = 5.0  # real seconds virtual time waits for rule runs to finish


def schedule_jobs(rules: RuleSet) -> dict[tuple[str, int], Job]:
    """The schedules of enabled rules, each with the fingerprint that says when it changed."""
    jobs: dict[tuple[str, int], Job] = {}
    for (name, index), schedule in rules.schedules.items():
        rule = rules.rules[name]
        if not rule.enabled:
            continue
        trigger = rule.when[index]
        assert isinstance(trigger, ScheduleTrigger)
        fingerprint = (trigger, rules.settings.timezone)
        jobs[(name, index)] = Job(schedule, trigger.grace, fingerprint)
    return jobs


class Adapter(Protocol):
    """Something that runs beside the engine in its loop: a server, a broker client.

    ``start`` returns once it serves (after the engine has built its parts,
    before sources start, so it sees every event); ``aclose`` is awaited at
    the very end of the stop, after the recorders closed, so the last events
    (``recording.stopped``) still go out.
    """

    async def start(self, engine: Engine) -> None: ...

    async def aclose(self) -> None: ...


class Engine:
    """Runs a ``RuleSet``: ``summary = await Engine(rules).run(duration=20)``.

    ``clock``: a ``ManualClock`` runs in virtual time (sources are then run as
    fast as possible and move the clock). ``sources``: source objects to use
    instead of building them from the rule files (a replay passes its log).
    ``dry_run``: shots and commands are only noted; recordings go to a
    temporary folder that is removed at the end. ``watch``: rule files (or
    folders) to reload from when they change.
    """

    def __init__(
        self,
        rules: RuleSet,
        *,
        clock: Clock = SYSTEM_CLOCK,
        dry_run: bool = False,
        recordings: str | Path | None = None,
        shots_folder: str | Path | None = None,
        sources: Mapping[str, Source] | None = None,
        watch: Sequence[str | Path] | None = None,
        env: Mapping[str, str] | None = None,
        reload_debounce: float = 0.3,
        adapters: Sequence[Adapter] = (),
    ) -> None:
        self.rules = rules
        self.adapters: list[Adapter] = list(adapters)
        self._subscribers = Subscribers()
        self._streams: set[EventStream] = set()
        self._watch = list(watch) if watch else None
        self._env = env
        self._debounce_ms = max(1, round(reload_debounce * 1000))
        self.reloads: list[object] = []  # outcome of each reload: changes, or RuleFileError
        self.clock = clock
        self.virtual = isinstance(clock, ManualClock)
        self.dry_run = dry_run
        self._recordings_override = recordings
        self._shots_override = shots_folder
        self._given_sources = dict(sources) if sources is not None else None
        self.tz = rules.tz
        self.rulebook = Rulebook(rules.rules, rules.default_source())
        self.sources: dict[str, Source] = {}
        self.recorders: dict[str, Any] = {}
        self._by_source: dict[str, list[Any]] = {}
        self.shots: Any = None
        self.cache: Any = None
        self._cached_sources: frozenset[str] = frozenset()
        self.firings: list[Firing] = []
        self.firing_counts: Counter[str] = Counter()
        self.notes: list[tuple[Firing, str]] = []
        self.segments: list[Segment] = []
        self.segment_count = 0  # every segment; ``segments`` keeps each recorder's latest
        self.shots_ok: list[str] = []
        self.shots_failed: list[str] = []
        self.shot_counts: Counter[str] = Counter()  # "ok", "failed": all, not only those kept
        self.errors: list[str] = []
        self.error_count = 0
        self.frame_errors = 0
        self._tick_failures: Counter[str] = Counter()
        self.dispatched: Counter[str] = Counter()  # frames handled, per source
        self._fired = False
        self.actions = ActionRunner(
            shots=None,
            recorders=self.recorders,
            tz=self.tz,
            dry_run=dry_run,
            note=self._note,
            exact_time=self.virtual,
        )
        self.runner = RuleRunner(self.rulebook, self.actions.run)
        self._scheduler: LiveScheduler | VirtualScheduler | None = None
        self._pumps: dict[str, asyncio.Task[None]] = {}
        # Shot services replaced by a reload, finishing their queues; awaited at shutdown.
        self._retiring: set[asyncio.Task[None]] = set()
        self._seen_sources: dict[str, Source] = {}
        self._ended: set[str] = set()
        self._stop: asyncio.Event | None = None
        self._main: asyncio.Task[Any] | None = None
        self._accepting = False
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._last_tick = 0.0
        self._end_time: float | None = None
        self.stop_reason = ""
        self.started_at = 0.0

    # -- folders -------------------------------------------------------------

    @property
    def recordings_root(self) -> Path:
        if self._tmp is not None:
            return Path(self._tmp.name)
        if self._recordings_override is not None:
            return Path(self._recordings_override)
        return Path(self.rules.settings.recordings)

    def _shots_settings(self, rules: RuleSet) -> Any:
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
        return Recorder(name, config, root=self.recordings_root, emit=self.emit, clock=self.clock)

    def _index_recorders(self) -> None:
        by_source: dict[str, list[Any]] = {}
        for recorder in self.recorders.values():
            by_source.setdefault(recorder.config.source, []).append(recorder)
        self._by_source = by_source
        # Only sources a stream camera shoots from fill the frame cache: camera frames are
        # big, and a cache nobody reads would hold up to its byte bound for nothing.
        self._cached_sources = frozenset(
            camera.source
            for camera in self.rules.cameras.values()
            if getattr(camera, "type", None) == "stream"
        )

    async def _start_shots(self, rules: RuleSet) -> Any:
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

    def _start_source(self, name: str, source: Source) -> None:
        source.notify = self.emit
        self.sources[name] = source
        self._seen_sources[name] = source
        self._ended.discard(name)
        self._pumps[name] = asyncio.get_running_loop().create_task(
            self._pump(name, source), name=f"source {name}"
        )

    async def _stop_source(self, name: str) -> None:
        source = self.sources.pop(name, None)
        task = self._pumps.pop(name, None)
        if source is not None:
            with contextlib.suppress(Exception):
                await source.aclose()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if source is not None and name not in self._ended:
            self._ended.add(name)
            self.emit(SourceClosed(time=self.clock.time(), source=name, reason="stopped"))

    # -- running -------------------------------------------------------------

    async def run(self, duration: float | None = None) -> Summary:
        """Run until stopped, ``duration`` seconds (of engine time) pass, or the sources end."""
        from engine.shots.frame_cache import FrameCache

        self._stop = asyncio.Event()
        self._main = asyncio.current_task()
        self.started_at = now = self.clock.time()
        self._last_tick = now
        self._end_time = now + duration if duration is not None else None
        if self.dry_run:
            self._tmp = tempfile.TemporaryDirectory(prefix="cuecap-dry-run-")
        self.cache = FrameCache()
        try:
            for name in self.rules.recorders:
                self.recorders[name] = self._build_recorder(name, self.rules)
            self._index_recorders()
            self.shots = await self._start_shots(self.rules)
            self.actions.shots = self.shots
            jobs = schedule_jobs(self.rules)
            if self.virtual:
                self._scheduler = VirtualScheduler(now)
            else:
                self._scheduler = LiveScheduler(self._on_schedule, self.tz, self.clock.time)
            self._scheduler.set_jobs(jobs)
            if isinstance(self._scheduler, LiveScheduler):
                self._scheduler.start()
            self._accepting = True
            for adapter in self.adapters:
                await adapter.start(self)
            self.emit(EngineStarted(time=now))
            sources = self._given_sources
            if sources is None:
                sources = {
                    name: build_source(name, config, self.clock, virtual=self.virtual)
                    for name, config in self.rules.sources.items()
                }
            for name, source in sources.items():
                self._start_source(name, source)
            loop = asyncio.get_running_loop()
            background: list[asyncio.Task[None]] = []
            if not self.virtual:
                background.append(loop.create_task(self._timer(), name="engine timer"))
            if self._watch:
                from engine.runtime.reload import watch_rules

                watcher = watch_rules(
                    self,
                    self._watch,
                    stop=self._stop,
                    env=self._env,
                    debounce_ms=self._debounce_ms,
                    on_result=self.reloads.append,
                )
                background.append(loop.create_task(watcher, name="rule watcher"))
            if not self.sources and not jobs and not self.virtual:
                log.warning("nothing to run: no sources and no schedules")
            try:
                if self._end_time is not None and not self.virtual:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), duration)
                    if not self._stop.is_set():
                        self.request_stop(f"ran for {duration:g} s")
                else:
                    await self._stop.wait()
            finally:
                for task in background:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            return await self._shutdown()
        except BaseException:
            await self._abort()
            raise

    def request_stop(self, reason: str = "stopped") -> None:
        """Begin a clean stop (safe to call from signal handlers and any task)."""
        if self._stop is not None and not self._stop.is_set():
            self.stop_reason = reason
            log.info("stopping: %s", reason)
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

    def _publish(self, event: Event) -> None:
        """Listeners first, then rules: a listener sees an event before what it fires."""
        if self._subscribers:
            self._subscribers.publish(event)
        if not self._accepting:
            return
        for firing in self.rulebook.on_event(event):
            self._fire(firing)

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
        self.request_stop(f"{name} received")

    async def _pump(self, name: str, source: Source) -> None:
        count = 0
        closed_reason = "ended"
        try:
            async for item in source:
                if isinstance(item, Frame):
                    if self.virtual:
                        if not self._until(item.time):
                            break
                        if self._fired:  # schedules fired: their runs happen before this frame
                            await self._settle()
                    try:
                        if not self._dispatch(item):
                            break
                    except Exception:
                        self.frame_errors += 1
                        if self.frame_errors <= 3:
                            log.exception("frame %d of %s could not be handled", item.seq, name)
                    if self._fired and self.virtual:
                        await self._settle()
                elif isinstance(item, Gap):
                    self._gap(item)
                count += 1
                if count % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = f"source {name} failed: {exc}"
            closed_reason = f"failed: {exc}"
            self._error(message)
            log.error("%s", message)
        self._ended.add(name)
        self.emit(SourceClosed(time=self.clock.time(), source=name, reason=closed_reason))
        if self._accepting and self._pumps.get(name) is asyncio.current_task():
            log.info("source %s ended", name)
            if self._all_sources_ended():
                if self.virtual:
                    end = self._end_time
                    if end is not None and end > self.clock.time():
                        self._advance(end, inclusive=False)
                    given = self._given_sources
                    self.request_stop("end of the recording" if given else "sources ended")
                elif (
                    not isinstance(self._scheduler, LiveScheduler)
                    or not self._scheduler.next_times()
                ):
                    self.request_stop("sources ended")

    async def _settle(self) -> None:
        """Virtual time: the runs just started finish before the stream moves on.

        Actions take no virtual time, so a rule's mode and the next frames see
        them done, as in a live run where they are quick. A run still going
        after ``VIRTUAL_SETTLE`` real seconds is left to finish in the background.
        """
        self._fired = False
        if not await self.runner.settle(VIRTUAL_SETTLE):
            log.warning("rule runs still going after %gs; virtual time moves on", VIRTUAL_SETTLE)

    def _all_sources_ended(self) -> bool:
        return all(name in self._ended for name in self.sources)

    async def _timer(self) -> None:
        tick = self.rules.settings.tick
        while True:
            await asyncio.sleep(tick)
            self._tick(self.clock.time())

    def _tick(self, now: float) -> None:
        self._last_tick = now
        for recorder in self.recorders.values():
            try:
                recorder.tick(now)
            except Exception:
                # Ticks come ten times a second: a lasting fault is logged at 1, 10, 100...
                self._tick_failures[recorder.name] += 1
                failures = self._tick_failures[recorder.name]
                if str(failures).rstrip("0") == "1":
                    log.exception("recorder %s: tick failed (%d times)", recorder.name, failures)

    def _advance(self, now: float, *, inclusive: bool = True) -> None:
        """Virtual time: fire the schedules due up to ``now`` and tick recorders."""
        scheduler = self._scheduler
        if isinstance(scheduler, VirtualScheduler):
            for time, rule, index in scheduler.due(now, inclusive=inclusive):
                self._on_schedule(rule, index, time)
        if now - self._last_tick >= self.rules.settings.tick:
            self._tick(now)

    # -- the hot path ------------------------------------------------------------

    def _until(self, time: float) -> bool:
        """Virtual time moves on to a frame's time: False once that is past the end."""
        end = self._end_time
        if end is not None and time >= end:
            self._advance(end, inclusive=False)  # a run --for N covers [start, start + N)
            self.request_stop(f"ran for {end - self.started_at:g} s")
            return False
        self._advance(time)
        return self._accepting

    def _dispatch(self, frame: Frame) -> bool:
        """Hand a frame to recorders, the frame cache and rules; False once stopping."""
        if not self._accepting:
            return False
        self.dispatched[frame.source] += 1
        for recorder in self._by_source.get(frame.source, ()):
            recorder.feed(frame)
        if frame.source in self._cached_sources:
            self.cache.update(frame)
        kinds = self.rulebook.kinds
        if kinds is None or frame.kind in kinds:
            for firing in self.rulebook.on_frame(frame):
                self._fire(firing)
        return True

    def _gap(self, gap: Gap) -> None:
        for recorder in self._by_source.get(gap.source, ()):
            recorder.feed_gap(gap)
        self.emit(
            SourceGap(
                time=gap.end, source=gap.source, start=gap.start, end=gap.end, reason=gap.reason
            )
        )

    def emit(self, event: Event) -> None:
        """Where recorders, the shot service and the engine report; rules react here."""
        if isinstance(event, RecordingStarted):
            log.info("recording started: %s -> %s (%s)", event.recorder, event.path, event.reason)
        elif isinstance(event, RecordingStopped):
            log.info("recording stopped: %s (%s, %s messages)", event.path, event.reason,
                     event.records)  # fmt: skip
        elif isinstance(event, RecordingErrored):
            self._error(f"recorder {event.recorder}: {event.error}")
        elif isinstance(event, ShotSaved):
            self.shot_counts["ok"] += 1
            if len(self.shots_ok) < MAX_FIRINGS:
                self.shots_ok.append(str(event.path))
        elif isinstance(event, ShotErrored):
            self.shot_counts["failed"] += 1
            if len(self.shots_failed) < MAX_FIRINGS:
                self.shots_failed.append(f"{event.camera}: {event.reason}")
        self._publish(event)

    def _on_schedule(self, rule: str, index: int, time: float) -> None:
        if not self._accepting:
            return
        firing = self.rulebook.on_schedule(rule, index, time)
        if firing is not None:
            self._fire(firing)

    def _fire(self, firing: Firing) -> None:
        self._fired = True
        self.firing_counts[firing.rule] += 1
        if len(self.firings) < MAX_FIRINGS:
            self.firings.append(firing)
        detail = firing.describe()
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
        self.runner.submit(firing)

    def _error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_FIRINGS:
            self.errors.append(message)

    def _note(self, firing: Firing, what: str) -> None:
        if len(self.notes) < MAX_FIRINGS:
            self.notes.append((firing, self.rules.redact(what)))

    # -- reloading -----------------------------------------------------------------

    async def apply(self, rules: RuleSet) -> dict[str, list[str]]:
        """Switch to new rules without a restart; what did not change keeps running.

        Returns what changed, by kind (``"rules"``, ``"recorders"``...), for the log.
        """
        old = self.rules
        changes: dict[str, list[str]] = {}

        def changed(kind: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
            names = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
            if names:
                changes[kind] = sorted(names)
            return names

        # A new shot service is built first: it is the step that fails on rules that load
        # (a camera function that does not import), and failing here changes nothing.
        cameras_changed = changed("cameras", old.cameras, rules.cameras)
        replace_shots = bool(cameras_changed) or old.settings.shots != rules.settings.shots
        new_shots = await self._start_shots(rules) if replace_shots else None
        self.rules = rules
        # Recorders: a changed recorder closes its segment and starts afresh.
        root_changed = old.settings.recordings != rules.settings.recordings
        for name in changed("recorders", old.recorders, rules.recorders) | (
            set(rules.recorders) if root_changed else set()
        ):
            recorder = self.recorders.pop(name, None)
            if recorder is not None:
                recorder.close("rules reloaded")
                self._collect_segments(name, recorder)
            if name in rules.recorders:
                self.recorders[name] = self._build_recorder(name, rules)
        for name in list(self.recorders):
            if rules.recorder_source(name) != self.recorders[name].config.source:
                recorder = self.recorders.pop(name)
                recorder.close("rules reloaded")
                self._collect_segments(name, recorder)
                self.recorders[name] = self._build_recorder(name, rules)
        self._index_recorders()
        # Sources: restart the changed ones only.
        if self._given_sources is None:
            for name in changed("sources", old.sources, rules.sources):
                await self._stop_source(name)
                if name in rules.sources:
                    config = rules.sources[name]
                    source = build_source(name, config, self.clock, virtual=self.virtual)
                    self._start_source(name, source)
        # Cameras and the shot saver: the new service (built above); the old one finishes
        # its queue.
        if replace_shots:
            previous = self.shots
            self.shots = new_shots
            self.actions.shots = new_shots
            if previous is not None:
                # Kept, so the task is neither garbage-collected mid-way nor forgotten at shutdown.
                retiring = asyncio.get_running_loop().create_task(
                    previous.aclose(graceful=True), name="retiring shot service"
                )
                self._retiring.add(retiring)
                retiring.add_done_callback(self._retiring.discard)
        # Rules and schedules.
        changed("rules", old.rules, rules.rules)
        rulebook = Rulebook(rules.rules, rules.default_source())
        rulebook.carry_over(self.rulebook)
        self.rulebook = rulebook
        self.runner.use(rulebook)
        self.tz = rules.tz
        self.actions.tz = self.tz
        if self._scheduler is not None:
            if isinstance(self._scheduler, VirtualScheduler):
                self._scheduler.set_jobs(schedule_jobs(rules), self.clock.time())
            else:
                self._scheduler.set_jobs(schedule_jobs(rules))
        return changes

    def _collect_segments(self, name: str, recorder: Recorder) -> None:
        self.segments.extend(Segment.from_manifest(name, m) for m in recorder.segments)
        self.segment_count += recorder.seq

    # -- stopping ------------------------------------------------------------------

    async def _shutdown(self) -> Summary:
        now = self.clock.time()
        self.emit(EngineStopping(time=now, reason=self.stop_reason))
        self._accepting = False
        if isinstance(self._scheduler, LiveScheduler):
            self._scheduler.shutdown()
        for name in list(self.sources):
            await self._stop_source(name)
        cancelled = await self.runner.stop(self.rules.settings.stop_timeout)
        if cancelled:
            self._error(f"{cancelled} rule runs did not finish in time and were cancelled")
        for name, recorder in self.recorders.items():
            try:
                recorder.close("shutdown" if not self.virtual else "end")
            except Exception as exc:
                self._error(f"recorder {name} did not close cleanly: {exc}")
            self._collect_segments(name, recorder)
        if self.shots is not None:
            await self.shots.aclose(graceful=True, timeout=self.rules.settings.stop_timeout)
        await self._close_retiring(graceful=True)
        if self.frame_errors:  # only the first ones went to the log, with their tracebacks
            self._error(f"{self.frame_errors} frame(s) could not be handled (see the log)")
        summary = Summary(
            started=self.started_at,
            ended=self.clock.time(),
            reason=self.stop_reason or "stopped",
            firings=list(self.firings),
            firing_counts=Counter(self.firing_counts),
            segments=sorted(self.segments, key=lambda s: (s.first_time or 0.0, s.recorder)),
            segment_count=self.segment_count,
            shots_ok=list(self.shots_ok),
            shots_failed=list(self.shots_failed),
            shot_counts=Counter(self.shot_counts),
            notes=list(self.notes),
            frames={name: self.dispatched[name] for name in self._seen_sources},
            errors=list(self.errors),
            error_count=self.error_count,
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

    async def _close_retiring(self, *, graceful: bool) -> None:
        """Wait for shot services a reload replaced (up to ``stop_timeout``), or cut them short."""
        tasks = list(self._retiring)
        if not tasks:
            return
        if graceful:
            _, pending = await asyncio.wait(tasks, timeout=self.rules.settings.stop_timeout)
        else:
            pending = {t for t in tasks if not t.done()}
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _abort(self) -> None:
        """An error or cancellation: close what is open so nothing recorded is lost."""
        self._accepting = False
        if isinstance(self._scheduler, LiveScheduler):
            self._scheduler.shutdown()
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
