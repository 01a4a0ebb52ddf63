"""When a run stops is the engine core's decision: each stop reason, without an event loop.

The driver (``Engine``) tells the core what happened (a stop asked for, a
signal, a source ended, virtual time moved to a frame, the wall clock ran
out) and carries out the ``StopDecision`` it gets back. The CLI and summary
tests pin the words; these pin the decisions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.rules.loader import RuleSet, load_rules
from engine.runtime.core import EngineCore, StopCause, StopDecision
from engine.runtime.jobs import VirtualScheduler

T0 = 1_700_000_000.0
EVERY_2S = "rules:\n  tl: {when: {type: schedule, every: 2s}, do: {type: log, message: x}}\n"
NO_SCHEDULE = "rules:\n  on-stop: {when: {type: event, event: engine.stopping}, do: {type: log, message: x}}\n"


def rules(tmp_path: Path, text: str) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules([path], env={})


def core(
    tmp_path: Path,
    text: str = EVERY_2S,
    *,
    live: bool = False,
    duration: float | None = None,
    sources: tuple[str, ...] = ("a", "b"),
    own_sources: bool = True,
) -> EngineCore:
    made = EngineCore(rules(tmp_path, text), VirtualScheduler(T0), time_moves_by_itself=live)
    made.set_recorders({})
    made.start(T0, duration, own_sources=own_sources)
    for name in sources:
        made.source_started(name)
    return made


@pytest.mark.parametrize("cause", [StopCause.REQUESTED, StopCause.SIGNAL])
def test_a_stop_asked_for_is_decided_once_and_the_first_reason_stays(
    tmp_path: Path, cause: StopCause
) -> None:
    engine = core(tmp_path)
    first = engine.request_stop(cause, "SIGTERM received")
    assert first == StopDecision(cause, "SIGTERM received")
    assert engine.request_stop(StopCause.REQUESTED, "later") is None
    assert engine.time_up() is None  # --for running out afterwards changes nothing
    assert engine.stop_decision == first


def test_a_stop_asked_before_the_start_is_kept_for_it(tmp_path: Path) -> None:
    engine = EngineCore(rules(tmp_path, EVERY_2S), VirtualScheduler(T0))
    engine.request_stop(StopCause.REQUESTED, "asked early")
    engine.start(T0)
    assert engine.stop_decision == StopDecision(StopCause.REQUESTED, "asked early")


def test_virtual_time_past_the_duration_stops_at_its_end_and_fires_what_was_due(
    tmp_path: Path,
) -> None:
    engine = core(tmp_path, duration=10)
    step = engine.until(T0 + 5)
    assert step.go_on and step.stop is None
    assert [f.time - T0 for f in step.firings] == [2, 4]
    step = engine.until(T0 + 12)  # the first frame past the end
    assert not step.go_on
    assert step.stop == StopDecision(StopCause.DURATION, "ran for 10 s")
    assert [f.time - T0 for f in step.firings] == [6, 8]  # [start, start + 10): not 10
    again = engine.until(T0 + 13)  # a second source reaching the end: already decided
    assert not again.go_on and again.stop is None and not again.firings


def test_live_duration_is_the_wall_clock_running_out(tmp_path: Path) -> None:
    engine = core(tmp_path, live=True, duration=20)
    assert engine.time_up() == StopDecision(StopCause.DURATION, "ran for 20 s")


@pytest.mark.parametrize(
    "own_sources,decision",
    [
        (True, StopDecision(StopCause.SOURCES_ENDED, "sources ended")),
        (False, StopDecision(StopCause.RECORDING_ENDED, "end of the recording")),
    ],
    ids=["sources", "replay"],
)
def test_virtual_time_ends_with_its_sources_after_the_schedules_up_to_the_end(
    tmp_path: Path, own_sources: bool, decision: StopDecision
) -> None:
    engine = core(tmp_path, duration=7, own_sources=own_sources)
    first = engine.source_ended("a", T0 + 1)
    assert first.stop is None and not first.firings  # b still runs
    last = engine.source_ended("b", T0 + 3)
    assert last.stop == decision
    assert [f.time - T0 for f in last.firings] == [2, 4, 6]  # due before the end of --for
    assert engine.stop_decision == decision


def test_live_schedules_still_to_come_keep_a_run_going_after_its_sources(
    tmp_path: Path,
) -> None:
    engine = core(tmp_path, live=True)
    engine.source_ended("a", T0 + 1)
    step = engine.source_ended("b", T0 + 1)
    assert step.stop is None and engine.stop_decision is None and not step.firings
    quiet = core(tmp_path, NO_SCHEDULE, live=True)
    quiet.source_ended("a", T0 + 1)
    assert quiet.source_ended("b", T0 + 1).stop == StopDecision(
        StopCause.SOURCES_ENDED, "sources ended"
    )


def test_a_source_taken_away_or_ending_while_stopping_decides_nothing(tmp_path: Path) -> None:
    engine = core(tmp_path, NO_SCHEDULE, live=True)
    engine.source_stopped("a")  # a reload removed it: b alone still runs
    assert engine.stop_decision is None
    engine.stop()  # the stop has begun: b ending now is part of it
    assert engine.source_ended("b", T0 + 1).stop is None
    assert engine.stop_decision is None


def test_nothing_to_run_is_a_live_run_without_sources_and_schedules(tmp_path: Path) -> None:
    assert core(tmp_path, NO_SCHEDULE, live=True, sources=()).nothing_to_run
    assert not core(tmp_path, EVERY_2S, live=True, sources=()).nothing_to_run
    assert not core(tmp_path, NO_SCHEDULE, live=True).nothing_to_run
    # virtual time without sources is driven from outside (MQTT, the HTTP API): it waits
    assert not core(tmp_path, NO_SCHEDULE, sources=()).nothing_to_run
