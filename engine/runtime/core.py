"""The engine core: frames, gaps, events and "the time is now T" in; firings out. No I/O.

As in a sans-I/O protocol, the core holds the engine's decisions and none of
its wiring: which recorders a frame goes to, which frames fill the frame
cache, which rules a frame, an event or a schedule fires, when recorders are
ticked, what a reload changes. It never reads a clock (times come with the
frames and from the driver), starts no task and touches no file; the
recorders and the frame cache it feeds are objects the driver built and
handed in (``RecorderPort``, ``FrameSink``), and the scheduler is one small
protocol with a live and a virtual implementation. The asyncio driver
(``engine.runtime.engine.Engine``) performs what the core returns: it runs the
firings' actions, publishes events, starts and stops sources and services.

Live runs and replays differ only in the clock and scheduler the driver hands
in, so a replay decides exactly what a live run decided.

When the run stops is decided here too (``StopDecision``): a stop asked for
(the API, a signal), ``--for`` reached, the sources ended. The driver hands
in what happened (a source ended, virtual time moved to a frame, the wall
clock ran out) and carries out the stop the core returns; the first decision
is the one a run stops for.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.core.frame import Frame, Gap
from engine.events import Event, SourceGap
from engine.rules.loader import RuleSet
from engine.rules.model import ScheduleTrigger, ShotAction
from engine.runtime.jobs import Job, Key, Scheduler
from engine.runtime.rulebook import Firing, Rulebook
from engine.runtime.stats import RunStats
from engine.shots.config import StreamCameraConfig

NO_FIRINGS: tuple[Firing, ...] = ()
Failed = Sequence[tuple[str, Exception]]  # recorders whose tick failed, with the error


class StopCause(enum.StrEnum):
    """Why a run stops (the words a person reads are in ``StopDecision.reason``)."""

    REQUESTED = "requested"  # Engine.request_stop: the HTTP API, a script, a test
    SIGNAL = "signal"  # SIGINT or SIGTERM
    DURATION = "duration"  # run(duration=...) / --for reached
    SOURCES_ENDED = "sources_ended"  # every source ended (and, live, no schedule is left)
    RECORDING_ENDED = "recording_ended"  # a replay's recording ran out


@dataclass(frozen=True, slots=True)
class StopDecision:
    """A run stops: why, and the reason as the log, ``engine.stopping`` and the summary say it."""

    cause: StopCause
    reason: str


@dataclass(frozen=True, slots=True)
class Step:
    """What moving time (or a source ending) brought: firings to run, failed ticks, a stop.

    ``go_on``: the source that moved time may go on (False once its frame is past
    the end of ``--for``). ``stop``: the run stops for this, the first time it is decided.
    """

    firings: Sequence[Firing] = NO_FIRINGS
    failed: Failed = ()
    stop: StopDecision | None = None
    go_on: bool = True


class RecorderPort(Protocol):
    """What the core drives of a recorder (``engine.recorder.recorder.Recorder``)."""

    name: str
    seq: int

    @property
    def config(self) -> Any: ...

    @property
    def segments(self) -> Sequence[Any]: ...

    def feed(self, frame: Frame) -> None: ...

    def feed_gap(self, gap: Gap) -> None: ...

    def tick(self, now: float) -> None: ...


class FrameSink(Protocol):
    """What keeps the latest camera frames (``engine.shots.frame_cache.FrameCache``)."""

    def update(self, frame: Frame) -> None: ...

    def keep_past(self, keep: bool) -> None: ...


def schedule_jobs(rules: RuleSet) -> dict[Key, Job]:
    """The schedules of enabled rules, each with the fingerprint that says when it changed."""
    jobs: dict[Key, Job] = {}
    for (name, index), schedule in rules.schedules.items():
        rule = rules.rules[name]
        if not rule.enabled:
            continue
        trigger = rule.when[index]
        assert isinstance(trigger, ScheduleTrigger)
        fingerprint = (trigger, rules.settings.timezone)
        jobs[(name, index)] = Job(schedule, trigger.grace, fingerprint)
    return jobs


def wants_past_frames(rules: RuleSet, exact_shot_times: bool) -> bool:
    """Whether a shot of these rules may ask a camera for a past moment (an ``offset``, or
    every shot under virtual time): else the frame cache need keep only the newest frames."""
    return exact_shot_times or any(
        isinstance(action, ShotAction) and action.offset != 0
        for rule in rules.rules.values()
        for action in rule.do
    )


@dataclass(frozen=True)
class ReloadPlan:
    """What a reload changes; the driver carries it out, in this order.

    ``changes``: the changed names by kind (``rules``, ``recorders``, ``targets``,
    ``settings``...), for the log and the ``reload.applied`` event; ``at_next_start``
    holds the settings that changed but apply only when the engine starts again.
    """

    changes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    replace_shots: bool = False  # build a new shot service, let the old one finish
    recorders: Sequence[str] = ()  # close (if running) and build again (if still defined)
    sources: Sequence[str] = ()  # stop (if running) and start again (if still defined)
    targets: bool = False  # the notifier takes the new targets (built if there was none)
    mqtt: bool = False  # a new MQTT client for the new settings takes over from the old
    at_next_start: Sequence[str] = ()  # "settings.cluster", "settings.http": restart to apply


_GO_ON = Step()
_HOLD = Step(go_on=False)


class EngineCore:
    """The engine's reactions for one rule set; see the module docstring."""

    def __init__(
        self,
        rules: RuleSet,
        scheduler: Scheduler,
        stats: RunStats | None = None,
        *,
        exact_shot_times: bool = False,
        time_moves_by_itself: bool = True,
    ) -> None:
        self.rules = rules
        self.exact_shot_times = exact_shot_times
        # Live, time goes on without the sources: schedules still to come keep a run going
        # after its sources end. In virtual time the frames move the clock, so a run ends
        # with its sources (schedules up to the end of --for fire first).
        self.time_moves_by_itself = time_moves_by_itself
        self.scheduler = scheduler
        self.stats = stats if stats is not None else RunStats()
        self.rulebook = Rulebook(rules.rules, rules.default_source(), self.stats.error)
        self.recorders: Mapping[str, RecorderPort] = {}
        self._by_source: dict[str, list[RecorderPort]] = {}
        self.cache: FrameSink | None = None
        self._cached_sources: frozenset[str] = frozenset()
        self.accepting = False  # frames, events and schedules fire rules only while True
        self.last_tick: float | None = None
        # Before this time the scheduler has nothing due (-inf: ask it): the frames in
        # between skip asking.
        self._quiet_until = -math.inf
        self.tick_failures: Counter[str] = Counter()
        self.started_at = 0.0
        self.duration: float | None = None
        self.own_sources = True  # False: a replay's recording is the source
        self.stop_decision: StopDecision | None = None  # the first one; it is the run's
        self._running: set[str] = set()  # sources started and neither ended nor stopped

    # -- wiring ---------------------------------------------------------------------------

    def set_recorders(self, recorders: Mapping[str, RecorderPort]) -> None:
        """The recorders to feed (the driver's own mapping: call again after changing it)."""
        self.recorders = recorders
        by_source: dict[str, list[RecorderPort]] = {}
        for recorder in self.recorders.values():
            by_source.setdefault(recorder.config.source, []).append(recorder)
        self._by_source = by_source
        # Only sources a stream camera shoots from fill the frame cache: camera frames are
        # big, and a cache nobody reads would hold up to its byte bound for nothing.
        self._cached_sources = frozenset(
            camera.source
            for camera in self.rules.cameras.values()
            if isinstance(camera, StreamCameraConfig)
        )
        if self.cache is not None:
            self.cache.keep_past(wants_past_frames(self.rules, self.exact_shot_times))

    def cached_sources(self) -> frozenset[str]:
        return self._cached_sources

    def start(self, now: float, duration: float | None = None, *, own_sources: bool = True) -> None:
        """Begin taking frames, events and schedule fires at ``now``, for ``duration`` seconds.

        ``own_sources``: False when the sources are a replay's recording (its end is
        "the end of the recording", not "sources ended").
        """
        self.started_at = now
        self.duration = duration
        self.own_sources = own_sources
        self.last_tick = now
        self.scheduler.set_jobs(schedule_jobs(self.rules), now)
        self._quiet_until = -math.inf
        self.accepting = True

    def stop(self) -> None:
        """No firings from now on; recorders still take what the driver feeds while closing."""
        self.accepting = False

    # -- inputs ---------------------------------------------------------------------------

    def frame(self, frame: Frame) -> Sequence[Firing] | None:
        """A frame to recorders, the frame cache and rules; None once the core has stopped.

        The hot path: for almost every frame, a counter, one recorder call and a set lookup.
        """
        if not self.accepting:
            return None
        source = frame.source
        self.stats.frames[source] += 1
        if frame.kind is None:
            self.stats.invalid[source] += 1
        for recorder in self._by_source.get(source, ()):
            recorder.feed(frame)
        if source in self._cached_sources and self.cache is not None:
            self.cache.update(frame)
        kinds = self.rulebook.kinds
        if kinds is not None and frame.kind not in kinds:
            return NO_FIRINGS
        return self._fired(self.rulebook.on_frame(frame))

    def gap(self, gap: Gap) -> SourceGap:
        """A source was away; its recorders hear of it. Returns the event to announce."""
        for recorder in self._by_source.get(gap.source, ()):
            recorder.feed_gap(gap)
        return SourceGap(
            time=gap.end, source=gap.source, start=gap.start, end=gap.end, reason=gap.reason
        )

    def event(self, event: Event) -> Sequence[Firing]:
        """An event happened: counted, and the rules it fires."""
        self.stats.observe(event)
        if not self.accepting:
            return NO_FIRINGS
        return self._fired(self.rulebook.on_event(event))

    def mqtt(self, topic: str, payload: bytes, time: float) -> Sequence[Firing]:
        """An MQTT message arrived (at ``time``): the rules its topic and payload fire."""
        if not self.accepting:
            return NO_FIRINGS
        return self._fired(self.rulebook.on_mqtt(topic, payload, time))

    def schedule(self, rule: str, index: int, time: float) -> Firing | None:
        """A schedule fired (the scheduler says so): the firing, unless a cooldown holds it."""
        if not self.accepting:
            return None
        firing = self.rulebook.on_schedule(rule, index, time)
        if firing is not None:
            self.stats.fired(firing)
        return firing

    def advance(self, now: float, *, inclusive: bool = True) -> tuple[Sequence[Firing], Failed]:
        """Time is ``now``: the schedule fires due by then, and a recorder tick if one is due.

        A scheduler that fires by itself (on the wall clock) has nothing due here; a
        virtual one hands back every fire up to ``now``, in time order. Returns the
        firings and the recorders whose tick failed (see ``tick``).
        """
        last = self.last_tick
        due_tick = last is None or now - last >= self.rules.settings.tick
        if now < self._quiet_until and not due_tick:
            return NO_FIRINGS, ()  # the usual frame: nothing due
        out: list[Firing] = []
        for time, rule, index in self.scheduler.due(now, inclusive=inclusive):
            firing = self.schedule(rule, index, time)
            if firing is not None:
                out.append(firing)
        self._quiet_until = self.scheduler.next_due()
        if due_tick:
            return out, self.tick(now)
        return out, ()

    def tick(self, now: float) -> list[tuple[str, Exception]]:
        """Recorders see the time (a post-roll ends in silence); returns those that failed.

        A lasting fault would fail ten times a second: the driver logs it at 1, 10, 100...
        failures (``tick_failures``), so the failure is reported without flooding the log.
        """
        self.last_tick = now
        failed: list[tuple[str, Exception]] = []
        for recorder in self.recorders.values():
            try:
                recorder.tick(now)
            except Exception as exc:
                self.tick_failures[recorder.name] += 1
                failed.append((recorder.name, exc))
        return failed

    # -- stopping -------------------------------------------------------------------------

    @property
    def end_time(self) -> float | None:
        """When ``duration`` runs out, in engine time; None: no ``duration``."""
        return None if self.duration is None else self.started_at + self.duration

    def request_stop(self, cause: StopCause, reason: str) -> StopDecision | None:
        """A stop was asked for (before or during the run): the decision, if it is the first."""
        if self.stop_decision is not None:
            return None
        self.stop_decision = StopDecision(cause, reason)
        return self.stop_decision

    def time_up(self) -> StopDecision | None:
        """The wall clock ran out (live ``--for``): the run stops for its duration."""
        if self.duration is None:
            return None
        return self.request_stop(StopCause.DURATION, f"ran for {self.duration:g} s")

    def until(self, time: float) -> Step:
        """Virtual time moves on to a frame's (or a gap's end) ``time``.

        Past the end of ``duration`` the time stops at the end instead (a run
        ``--for N`` covers ``[start, start + N)``) and the run stops.
        """
        end = self.end_time
        if end is not None and time >= end:
            firings, failed = self.advance(end, inclusive=False)
            return Step(firings, failed, self.time_up(), go_on=False)
        firings, failed = self.advance(time)
        if not firings and not failed:  # almost every frame: nothing was due
            return _GO_ON if self.accepting else _HOLD
        return Step(firings, failed, go_on=self.accepting)

    def source_started(self, name: str) -> None:
        self._running.add(name)

    def source_stopped(self, name: str) -> None:
        """The driver took a source away (a reload, the stop): never a reason to stop."""
        self._running.discard(name)

    def source_ended(self, name: str, now: float) -> Step:
        """Source ``name`` ended by itself at ``now``: once the last one has, the run may end.

        Live, schedules still to come keep it going. In virtual time it ends, and
        time first moves to the end of ``duration``, so the schedules due before
        then fire as they would have.
        """
        self._running.discard(name)
        if not self.accepting or self._running:
            return Step()
        if self.time_moves_by_itself:
            if any(t is not None for t in self.scheduler.next_times().values()):
                return Step()
            return Step(stop=self.request_stop(StopCause.SOURCES_ENDED, "sources ended"))
        firings: Sequence[Firing] = NO_FIRINGS
        failed: Failed = ()
        end = self.end_time
        if end is not None and end > now:
            firings, failed = self.advance(end, inclusive=False)
        if self.own_sources:
            stop = self.request_stop(StopCause.SOURCES_ENDED, "sources ended")
        else:
            stop = self.request_stop(StopCause.RECORDING_ENDED, "end of the recording")
        return Step(firings, failed, stop)

    @property
    def nothing_to_run(self) -> bool:
        """Live with no source and no schedule: nothing will happen until a stop is asked for.

        (In virtual time such a run is driven from outside: MQTT, the HTTP API.)
        """
        return self.time_moves_by_itself and not self._running and not self.scheduler.next_times()

    # -- reloading ------------------------------------------------------------------------

    def plan_reload(self, rules: RuleSet, *, own_sources: bool = True) -> ReloadPlan:
        """What switching to ``rules`` changes; nothing is changed yet.

        ``own_sources``: the sources come from the rule files (not handed in by a replay),
        so changed ones restart.
        """
        old = self.rules
        changes: dict[str, list[str]] = {}

        def changed(kind: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
            names = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
            if names:
                changes[kind] = sorted(names)
            return names

        cameras = changed("cameras", old.cameras, rules.cameras)
        replace_shots = bool(cameras) or old.settings.shots != rules.settings.shots
        recorders = changed("recorders", old.recorders, rules.recorders)
        if old.settings.recordings != rules.settings.recordings:
            recorders |= set(rules.recorders)  # a changed root: every recorder starts afresh
        for name, recorder in self.recorders.items():
            if name in rules.recorders and rules.recorder_source(name) != recorder.config.source:
                recorders.add(name)
        sources = changed("sources", old.sources, rules.sources) if own_sources else set()
        changed("rules", old.rules, rules.rules)
        targets = bool(changed("targets", old.targets, rules.targets))
        mqtt = old.settings.mqtt != rules.settings.mqtt
        if mqtt:
            changes["settings"] = ["mqtt"]
        # The cluster link is the engine's firing sink and its presence in the site: swapped
        # mid-run, a schedule fire could run on two engines or none. The HTTP socket is bound
        # (with the command line's --http) before the engine starts. Both wait for a restart.
        later = [
            f"settings.{name}"
            for name in ("cluster", "http")
            if getattr(old.settings, name) != getattr(rules.settings, name)
        ]
        if later:
            changes["at_next_start"] = later
        return ReloadPlan(
            changes, replace_shots, sorted(recorders), sorted(sources), targets, mqtt, later
        )

    def use_rules(self, rules: RuleSet, now: float) -> None:
        """Switch to ``rules``: firing policies of unchanged rules and schedules carry over."""
        self.rules = rules
        rulebook = Rulebook(rules.rules, rules.default_source(), self.stats.error)
        rulebook.carry_over(self.rulebook)
        self.rulebook = rulebook
        self.scheduler.set_jobs(schedule_jobs(rules), now)
        self._quiet_until = -math.inf
        self.set_recorders(self.recorders)  # stream cameras may read other sources now

    def _fired(self, firings: list[Firing]) -> list[Firing]:
        for firing in firings:
            self.stats.fired(firing)
        return firings
