"""Hostile conditions: type errors and oversize expressions at load, slow ones at run time."""

from __future__ import annotations

import logging
import textwrap
from itertools import count
from pathlib import Path

import pytest

from engine.core import condition as condition_module
from engine.core.condition import (
    BUDGET,
    MAX_ITEMS,
    MAX_LENGTH,
    MAX_MACRO_NESTING,
    MAX_NESTING,
    Condition,
    ConditionError,
    _filled,
)
from engine.core.frame import KIND_NAMES, Frame
from engine.core.schema import PURPLEDROP
from engine.proto.purpledrop_pb2 import PurpleDropEvent
from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules
from engine.runtime.rulebook import Rulebook


def cap(value: float, seq: int = 1) -> Frame:
    event = PurpleDropEvent()
    event.active_capacitance.calibrated = value
    return Frame(event.SerializeToString(), 1.0, seq, "pd")


@pytest.mark.parametrize(
    "expression,message_type",
    [
        ("active_capacitance.calibrated + 'x' > 1", None),
        ("calibrated + 'x' > 1", "active_capacitance"),
        ("active_capacitance.calibrated > 'a'", None),
        # the defaults short-circuit this one; the filled sample reaches the bad branch
        ("active_capacitance.calibrated > 0.5 && active_capacitance.calibrated + 'x' > 1", None),
        ("size(electrode_state.drive_groups[0].electrodes) + 1.5 > 0.0", None),
    ],
)
def test_type_errors_are_refused_at_load(expression: str, message_type: str | None) -> None:
    with pytest.raises(ConditionError, match="type error"):
        Condition(expression, message_type)


def test_a_bad_regular_expression_is_refused_at_load() -> None:
    with pytest.raises(ConditionError, match="bad regular expression: unclosed group"):
        Condition('source.matches("(")')
    Condition('source.matches("^pd-[0-9]+$")')


@pytest.mark.parametrize(
    "expression",
    [
        "active_capacitance.calibrated > 3.5",
        "double(seq) + active_capacitance.calibrated > 1.0",
        "electrode_state.drive_groups.exists(g, g.electrodes.exists(e, e))",
        "size(electrode_state.drive_groups) > 0 && electrode_state.drive_groups[0].setting > 1",
    ],
)
def test_well_typed_conditions_still_load(expression: str) -> None:
    Condition(expression)


def test_every_message_type_has_a_filled_sample() -> None:
    for kind in KIND_NAMES:
        if PURPLEDROP.kinds[kind] is not None:
            assert _filled(PURPLEDROP, kind).ByteSize() > 0, kind


def _list(n: int) -> str:
    return "[" + ", ".join(str(i) for i in range(n)) + "]"


@pytest.mark.parametrize(
    "expression,why",
    [
        (f"seq in {_list(200_000)}", f"longer than {MAX_LENGTH} characters"),
        (" && ".join(["seq > 1"] * 20_000), f"longer than {MAX_LENGTH} characters"),
        (f"seq in {_list(MAX_ITEMS + 1)}", f"more than {MAX_ITEMS} items"),
        ("(" * (MAX_NESTING + 1) + "seq" + ")" * (MAX_NESTING + 1) + " > 1", "nested more than"),
        (
            f"{_list(50)}.map(a, {_list(50)}.map(b, {_list(50)}.map(c, a + b + c))).size() > 0",
            f"more than {MAX_MACRO_NESTING} comprehensions",
        ),
        # Each link doubles the lists: 30 of them (425 characters) took all the memory.
        ("size([[1]]" + ".map(l, l + l)" * 30 + ") > 0", "a comprehension over another's"),
        ("([[1]].map(l, l + l)).exists(l, size(l) > 1)", "a comprehension over another's"),
        ("[[[1]].map(l, l + l)][0].all(l, size(l) > 1)", "a comprehension over another's"),
        ("electrode_state.drive_groups.map(g, g.electrodes)[0].exists(e, e)", "over another's"),
    ],
)
def test_oversize_expressions_are_refused_before_cel_sees_them(
    expression: str, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(_: str) -> None:
        raise AssertionError("cel.compile was called")

    monkeypatch.setattr(condition_module.celnative.cel, "compile", never)
    with pytest.raises(ConditionError, match="too big to be a condition") as info:
        Condition(expression)
    assert why in info.value.reason
    assert info.value.column is not None


def test_within_the_bounds_is_fine() -> None:
    Condition(f"seq in {_list(MAX_ITEMS)}")
    Condition("electrode_state.drive_groups.all(g, g.electrodes.exists(e, e))")
    # A comprehension's result may be used, only not ranged over again.
    Condition("electrode_state.electrodes.filter(e, e).size() > 0")
    Condition("electrode_state.drive_groups[0].electrodes.exists(e, e)")
    Condition("electrode_state.electrodes.exists(e, e) && electrode_state.electrodes.all(e, e)")


@pytest.mark.parametrize(
    ("expression", "compiled"),
    [
        ("active_capacitance.calibrated > 3.5", True),  # the subset, as Python closures
        ("[active_capacitance.calibrated].exists(c, c > 3.5)", False),  # on the extension
    ],
)
def test_a_condition_over_its_budget_is_disabled_and_said_once(
    caplog: pytest.LogCaptureFixture, expression: str, compiled: bool
) -> None:
    condition = Condition(expression)
    assert (condition.compiled is not None) is compiled
    assert condition.evaluate(cap(4.0))
    ticks = count(step=BUDGET * 3)  # every evaluation "takes" three budgets
    condition.timer = lambda: next(ticks)
    condition.cpu_timer = lambda: next(ticks)  # and as much CPU when timed again
    with caplog.at_level(logging.ERROR):
        assert not condition.evaluate(cap(4.0, seq=2))
        assert condition.disabled
        assert not condition.evaluate(cap(4.0, seq=3))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "more than its budget" in errors[0] and "frame 2" in errors[0]
    # Timed on the clock, then again on the CPU; the disabled one was not timed.
    assert next(ticks) == pytest.approx(BUDGET * 3 * 4)


def test_an_overrun_on_the_clock_alone_is_a_busy_machine_not_a_slow_condition(
    caplog: pytest.LogCaptureFixture,
) -> None:
    condition = Condition("active_capacitance.calibrated > 3.5")
    ticks = count(step=BUDGET * 3)  # the process was not running for three budgets...
    condition.timer = lambda: next(ticks)
    cpu = count(step=BUDGET / 10)  # ...but the evaluation itself cost a tenth of one
    condition.cpu_timer = lambda: next(cpu)
    with caplog.at_level(logging.WARNING):
        assert condition.evaluate(cap(4.0))
        assert not condition.evaluate(cap(1.0))
    assert not condition.disabled
    assert condition.errors == 0
    assert next(cpu) == pytest.approx(BUDGET / 10 * 4)  # each overrun was timed again
    assert caplog.records == []


def test_a_slow_rule_is_disabled_and_the_others_keep_firing(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            sources:
              pd: {type: simulator}
            rules:
              slow:
                when: {type: message, where: "active_capacitance.calibrated > 1.0"}
                do: {type: log, message: slow}
              fast:
                when: {type: message, where: "active_capacitance.calibrated > 2.0"}
                do: {type: log, message: fast}
            """
        )
    )
    rules = load_rules([path], env={})
    problems: list[str] = []
    book = Rulebook(rules.rules, on_problem=problems.append)
    slow = rules.rules["slow"].when[0].condition
    ticks = count(step=BUDGET * 2)
    slow.timer = slow.cpu_timer = lambda: next(ticks)
    fired = [f.rule for seq in range(5) for f in book.on_frame(cap(3.0, seq))]
    assert slow.disabled
    assert fired.count("fast") == 5
    assert "slow" not in fired
    (problem,) = problems  # the run summary's errors hear of it once
    assert problem.startswith("rule slow: condition") and "budget of 50 ms" in problem


def test_hostile_conditions_in_a_rule_file_have_their_place(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    bad = "calibrated + 'x' > 1"
    path.write_text(
        "sources:\n  pd: {type: simulator}\nrules:\n  r:\n"
        f'    when: {{type: message, types: active_capacitance, where: "{bad}"}}\n'
        "    do: {type: log, message: hi}\n"
    )
    with pytest.raises(RuleFileError) as info:
        load_rules([path], env={})
    (error,) = info.value.errors
    assert str(error).startswith(f"{path}:5:")
    assert "type error" in str(error)


def test_mqtt_data_conditions_have_the_same_bounds_and_budget() -> None:
    from engine.core.condition import DataCondition

    names = frozenset({"payload", "topic", "text"})
    with pytest.raises(ConditionError, match="too big to be a condition") as info:
        DataCondition("payload in " + _list(MAX_ITEMS + 1), names)
    assert info.value.column is not None
    condition = DataCondition("topic == 'lab/door'", names)
    assert condition.evaluate({"topic": "lab/door", "payload": 1, "text": "1"})
    ticks = count(step=BUDGET * 2)
    condition.timer = condition.cpu_timer = lambda: next(ticks)
    assert not condition.evaluate({"topic": "lab/door", "payload": 1, "text": "1"})
    assert condition.disabled and "budget" in (condition.last_error or "")
