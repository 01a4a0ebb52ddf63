"""Firing policy (modes, limits, cooldown) and the rulebook's routing: pure, no loop."""

from __future__ import annotations

import pytest

from engine.core.frame import Frame
from engine.events import RecordingStarted, RecordingStopped
from engine.proto.purpledrop_pb2 import ActiveCapacitance, ElectrodeState, PurpleDropEvent
from engine.rules.model import Rule
from engine.runtime.policy import Decision, FiringPolicy
from engine.runtime.rulebook import Rulebook

D = Decision


def run_modes(mode: str, limit: int, script: str) -> list[Decision | bool]:
    """``f`` = a firing, ``e`` = a run ends; returns decisions and whether an end starts one."""
    policy = FiringPolicy(mode, limit)
    out: list[Decision | bool] = []
    for step in script:
        out.append(policy.decide() if step == "f" else policy.finished())
    return out


@pytest.mark.parametrize(
    ("mode", "limit", "script", "expected"),
    [
        ("single", 10, "ffef", [D.START, D.DROP, False, D.START]),
        ("queued", 2, "ffffee", [D.START, D.QUEUE, D.QUEUE, D.DROP, True, True]),
        ("parallel", 2, "fffeef", [D.START, D.START, D.DROP, False, False, D.START]),
        ("restart", 10, "fffef", [D.START, D.RESTART, D.RESTART, False, D.START]),
    ],
)
def test_modes_decide_what_a_firing_does_while_earlier_runs_go_on(
    mode: str, limit: int, script: str, expected: list[Decision | bool]
) -> None:
    assert run_modes(mode, limit, script) == expected


def test_cooldown_counts_firings_by_trigger_time_only() -> None:
    policy = FiringPolicy("parallel", 10, cooldown=5.0)
    accepted = [t for t in (0.0, 1.0, 4.999, 5.0, 7.0, 10.5) if policy.accepts(t)]
    assert accepted == [0.0, 5.0, 10.5]
    assert (policy.fired, policy.cooled) == (3, 3)


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        FiringPolicy("sometimes")
    with pytest.raises(ValueError, match="limit"):
        FiringPolicy("queued", 0)


def frame(event: PurpleDropEvent, t: float, seq: int = 0, source: str = "sim") -> Frame:
    return Frame(event.SerializeToString(), t, seq, source)


def rules(**defs: dict) -> dict[str, Rule]:
    return {name: Rule.model_validate(d) for name, d in defs.items()}


LOG = {"type": "log", "message": "x"}


def test_frames_are_routed_by_type_before_any_condition_runs() -> None:
    book = Rulebook(
        rules(
            moves={"when": {"type": "message", "types": "electrode_state"}, "do": LOG},
            high={
                "when": {"type": "message", "where": "active_capacitance.calibrated > 3.5"},
                "do": LOG,
            },
            other_source={
                "when": {"type": "message", "types": "electrode_state", "source": "lab"},
                "do": LOG,
            },
            off={
                "when": {"type": "message", "types": "electrode_state"},
                "do": LOG,
                "enabled": False,
            },
        )
    )
    assert book.kinds == frozenset({"electrode_state", "active_capacitance"})
    state = frame(PurpleDropEvent(electrode_state=ElectrodeState()), 10.0, 1)
    low = frame(PurpleDropEvent(active_capacitance=ActiveCapacitance(calibrated=1.0)), 11.0, 2)
    high = frame(PurpleDropEvent(active_capacitance=ActiveCapacitance(calibrated=5.0)), 12.0, 3)
    assert [f.rule for f in book.on_frame(state)] == ["moves"]
    assert book.on_frame(low) == []
    (fired,) = book.on_frame(high)
    assert (fired.rule, fired.time, fired.trigger, fired.event, fired.source) == (
        "high",
        12.0,
        "message",
        "active_capacitance",
        "sim",
    )
    assert fired.facts["seq"] == 3 and fired.count == 1
    # an undecodable frame of a routed type never matches and never raises
    broken = Frame(b"\x3a\xff\xff", 13.0, 4, "sim")
    assert broken.kind == "active_capacitance"
    assert book.on_frame(broken) == []


def test_events_fire_rules_with_matching_filters_and_cooldowns() -> None:
    book = Rulebook(
        rules(
            any_start={
                "when": {"type": "event", "event": "recording.started"},
                "do": LOG,
                "cooldown": "10s",
            },
            moves_start={
                "when": {"type": "event", "event": "recording.started", "recorder": "moves"},
                "do": LOG,
            },
        )
    )
    other = RecordingStarted(time=1.0, recorder="other", source="sim", path="", reason="")
    moves = RecordingStarted(time=2.0, recorder="moves", source="sim", path="", reason="")
    assert [f.rule for f in book.on_event(other)] == ["any_start"]
    assert [f.rule for f in book.on_event(moves)] == ["moves_start"]  # any_start is cooling down
    assert (
        book.on_event(RecordingStopped(time=3.0, recorder="moves", source="", path="", reason=""))
        == []
    )
    later = RecordingStarted(time=11.0, recorder="other", source="", path="", reason="")
    assert [(f.rule, f.count) for f in book.on_event(later)] == [("any_start", 2)]


def test_a_reload_keeps_the_cooldown_of_unchanged_rules_only() -> None:
    spec = {"when": {"type": "schedule", "every": "1s"}, "do": LOG, "cooldown": "1h"}
    old = Rulebook(rules(a=spec, b=spec))
    assert old.on_schedule("a", 0, 100.0) is not None
    assert old.on_schedule("b", 0, 100.0) is not None
    new = Rulebook(rules(a=spec, b={**spec, "cooldown": "2h"}))
    new.carry_over(old)
    assert new.on_schedule("a", 0, 200.0) is None  # still cooling down from before the reload
    assert new.on_schedule("b", 0, 200.0) is not None  # changed: starts afresh
