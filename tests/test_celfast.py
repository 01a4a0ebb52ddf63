"""The compiled CEL subset against the CEL extension: the same value or an error, always.

A seeded generator writes expressions of the subset (every operator, literal
and function it compiles, nested) and environments of every kind of value CEL
reads (ints at the 64-bit edges, uints, NaN and infinities, non-ASCII text,
lists, maps, null); each expression is evaluated both ways and must agree.
Then the same over real frames: conditions compiled and on the extension,
over a simulated PurpleDrop stream.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from engine.core import celfast, celnative
from engine.core.condition import Condition, ConditionError
from engine.core.frame import Frame
from engine.sim.world import SimWorld

SEED = 20261201
CASES = 4000

INTS = ["0", "1", "-1", "2", "7", "-7", "3", "9223372036854775807", "-9223372036854775808",
        "0x10", "-0x10"]  # fmt: skip
UINTS = ["0u", "1u", "2u", "7u", "18446744073709551615u", "0x10u"]
DOUBLES = ["0.0", "1.5", "-2.5", "1e308", ".5", "2.0", "7.0", "1e-3"]
STRINGS = ["''", "'a'", "'héllo'", '"b"', "'abc'", "'k'"]
VALUES: list[Any] = [
    0, 1, -1, 5, 7, 2**53 + 1, 2**62, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64, -(2**63) - 1,
    0.0, -0.0, 1.5, 7.0, math.nan, math.inf, -math.inf, 1e300, 9007199254740992.0,
    True, False, "", "a", "é", "abc", "k", b"", b"ab",
    [], [1, 2.5], [True, "a"], [[1]], [1, 2, 3], ["k", "j"],
    {}, {"k": 1, "j": "x"}, {"k": [1, 2]}, {"k": {"k": 2}}, {"k": 1.0},
    {True: 1, False: 0}, {1: "k", 2**63: "j"}, {-1: [1]},  # protobuf maps' keys
    None,
]  # fmt: skip
NAMES = ("a", "b", "c", "m", "l", "s")
BINARY = ("+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "in", "&&", "||")


def _expression(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.25:
        pick = rng.random()
        if pick < 0.4:
            return rng.choice(NAMES)
        pool = rng.choice((INTS, UINTS, DOUBLES, STRINGS, ["true", "false", "null"]))
        return rng.choice(pool)
    d = depth - 1
    form = rng.random()
    if form < 0.45:
        return f"({_expression(rng, d)} {rng.choice(BINARY)} {_expression(rng, d)})"
    if form < 0.52:  # runs of unary operators: CEL's parser drops an even one
        return f"{rng.choice(('!', '-', '!!', '--', '---'))}{_atomic(rng, d)}"
    if form < 0.6:
        return f"({_expression(rng, d)} ? {_expression(rng, d)} : {_expression(rng, d)})"
    if form < 0.67:
        return rng.choice(("size({})", "{}.size()")).format(_atomic(rng, d))
    if form < 0.74:
        fields = ".".join(rng.choice("kjz") for _ in range(rng.randrange(1, 3)))
        return f"has({rng.choice(NAMES)}.{fields})"
    if form < 0.82:
        return f"{_atomic(rng, d)}.{rng.choice('kjz')}"
    if form < 0.92:
        return f"{_atomic(rng, d)}[{_expression(rng, d)}]"
    items = ", ".join(_expression(rng, d) for _ in range(rng.randrange(4)))
    return f"[{items}]"


def _atomic(rng: random.Random, depth: int) -> str:
    text = _expression(rng, depth)
    return text if text.isidentifier() else f"({text})"


def _extension(expression: str, env: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "value", celnative.cel.compile(expression).execute(env)
    except Exception as exc:
        return "error", type(exc).__name__


def _compiled(expression: str, env: dict[str, Any]) -> tuple[str, Any]:
    names = {name: (lambda e, name=name: e[name]) for name in env}
    compiled = celfast.compile_subset(expression, celfast.resolver(names))
    assert compiled is not None, f"{expression!r} is in the subset but did not compile"
    try:
        return "value", compiled(env)
    except celfast.CelError as exc:
        return "error", str(exc)
    except celfast.Deferred:  # what Condition does: this one evaluation on the extension
        return _extension(expression, env)


def _same(a: Any, b: Any) -> bool:
    """Equal values of one CEL type, NaN equal to NaN and -0.0 told from 0.0."""
    a, b = celfast.plain(a), celfast.plain(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def test_generated_expressions_agree_with_the_extension() -> None:
    rng = random.Random(SEED)
    checked = errors = 0
    disagreements: list[str] = []
    for _ in range(CASES):
        expression = _expression(rng, rng.randrange(1, 5))
        try:
            celnative.cel.compile(expression)
        except ValueError:
            continue  # not CEL (an int literal out of range after folding...)
        env = {name: rng.choice(VALUES) for name in NAMES}
        want = _extension(expression, env)
        got = _compiled(expression, env)
        checked += 1
        errors += want[0] == "error"
        agree = want[0] == got[0] and (want[0] == "error" or _same(want[1], got[1]))
        if not agree:
            disagreements.append(f"{expression}  env={env}: extension {want}, compiled {got}")
    assert not disagreements, "\n".join(disagreements[:20])
    # The generator reaches both outcomes often, so neither side is trivially right.
    assert checked > CASES * 0.9
    assert checked * 0.2 < errors < checked * 0.9


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 < 1.5", True),  # comparisons across numeric types, by value
        ("1u == 1", True),
        ("-7 / 2", -3),  # truncates toward zero
        ("-7 % 2", -1),
        ("1.0 / 0.0", math.inf),
        ("(1 / 0 == 1) || true", True),  # an error absorbed: the other side decides
        ("(1 / 0 == 1) && false", False),
        ("size('héllo')", 6),  # UTF-8 bytes, as the extension counts
        ("-9223372036854775808", -(2**63)),
        ("[1, 2][1u]", 2),
        ("2.0 in [1, 2]", True),
    ],
)
def test_the_extensions_semantics(expression: str, expected: Any) -> None:
    assert _extension(expression, {}) == ("value", expected)
    assert _compiled(expression, {}) == ("value", expected)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("!!'a'", "a"), ("--'a'", "a"), ("!!1", 1), ("--[1]", [1]), ("----1u", 1), ("!!!!true", True),
     ("- -1", 1), ("---1", -1), ("--1.5", 1.5), ("!!!true", False)],
)  # fmt: skip
def test_an_even_run_of_unary_operators_is_dropped(expression: str, expected: Any) -> None:
    """CEL's parser drops ``!!`` and ``--`` (the operand whatever its type): ``!!1`` is 1."""
    assert _extension(expression, {}) == ("value", expected)
    assert _compiled(expression, {}) == ("value", expected)


@pytest.mark.parametrize(
    "expression",
    ["1 + 1.0", "1u + 1", "1 / 0", "1 % 0", "9223372036854775807 + 1", "0u - 1u", "1.5 % 1.0",
     "1 || 2", "1 ? 2 : 3", "[1, 2][2]", "'a' in 'abc'", "-1u", "1.0 < 0.0 / 0.0"],
)  # fmt: skip
def test_errors_of_both(expression: str) -> None:
    assert _extension(expression, {})[0] == "error"
    assert _compiled(expression, {})[0] == "error"


@pytest.mark.parametrize(
    "expression", ["b[true]", "true in b", "b[1]", "1 in b", "0u in b", "b == c", "size(b)"]
)
def test_a_map_with_bool_keys_reads_as_the_extension_reads_it(expression: str) -> None:
    """A protobuf ``map<bool, ...>`` has bool keys, which the extension takes as ints."""
    env = {"b": {True: 1, False: 0}, "c": {1: 1, 0: 0}}
    want, got = _extension(expression, env), _compiled(expression, env)
    assert want[0] == got[0]
    assert want[0] == "error" or _same(want[1], got[1])


def test_a_long_expression_stays_on_the_extension() -> None:
    """Closures nest one level a token: past a bound, the extension keeps it (no
    RecursionError at run time for a chain within the 2000 characters allowed)."""
    chain = "+".join(["seq"] * 450) + " > 0"  # 1,805 characters, 901 tokens
    condition = Condition(chain)
    assert condition.compiled is None
    assert condition.check(FRAMES[1])
    shorter = Condition(" + ".join(["seq"] * 60) + " > 0")
    assert shorter.compiled is not None
    assert shorter.check(FRAMES[1])


def test_a_list_plus_a_map_is_left_to_the_extension() -> None:
    names = {"l": lambda e: [1], "m": lambda e: {"a": 1, "b": 2}}
    compiled = celfast.compile_subset("l + m", celfast.resolver(names))
    assert compiled is not None
    with pytest.raises(celfast.Deferred):
        compiled({})
    # A condition then asks the extension for that frame: the same outcome as without
    # the compiled path (a group is a map; the sum holds its keys).
    fast = Condition("size([1] + electrode_state.drive_groups[0]) > 1")
    slow = Condition("size([1] + electrode_state.drive_groups[0]) > 1")
    slow.compiled = None
    assert fast.compiled is not None
    moves = [f for f in FRAMES if f.kind == "electrode_state"]
    assert moves
    assert [fast.check(f) for f in moves] == [slow.check(f) for f in moves]
    assert any(fast.check(f) for f in moves)


@pytest.mark.parametrize(
    "expression",
    [
        "xs.exists(x, x > 1)",  # macros
        "{'a': 1}.a == 1",  # map literals
        "'a\\nb' == s",  # escapes
        "r'a' == s",  # prefixes
        "s.startsWith('a')",  # other functions
        "int(s) > 1",
        "unknown > 1",  # a name the caller does not resolve
    ],
)
def test_outside_the_subset_falls_back(expression: str) -> None:
    resolve = celfast.resolver({"s": lambda e: "a", "xs": lambda e: [1]})
    assert celfast.compile_subset(expression, resolve) is None


FRAME_EXPRESSIONS = [
    ("active_capacitance.calibrated > 30.0", None),
    ("active_capacitance.calibrated < -30.0 || active_capacitance.baseline > 0.5", None),
    ("temperatures[0] > 90.0", "temperature_control"),
    ("temperatures.size() > 0 && temperatures[0] > 40.0", "temperature_control"),
    ("hv_regulator.voltage > 400.0", None),
    ("measurements.size() > 200", "scan_capacitance"),
    ("size(measurements) > 3 ? measurements[3] > 0.5 : false", "scan_capacitance"),
    ("has(active_capacitance.timestamp)", None),
    ("active_capacitance.timestamp.seconds > 0", None),
    ("type == 'image' && length > 1000", None),
    ("type in ['active_capacitance', 'hv_regulator'] && seq % 7 == 3", None),
    ("time > 10.0 && source == 'sim'", None),
    ("calibrated > 1", "active_capacitance"),  # double against int: by value
    ("voltage + 1 > 2", "hv_regulator"),  # double + int: an error on every frame
    ("electrode_state.drive_groups[0].electrodes.size() > 0", None),
    ("size(electrode_state.drive_groups) > 1", None),
    ("hv_regulator.voltage / 2.0 > 100.0 && hv_regulator.voltage % 2 == 0", None),
    ("!(active_capacitance.measurement > 0u) || active_capacitance.baseline == 0.0", None),
]


def _frames() -> list[Frame]:
    world = SimWorld(7, fps=10, image_size=[64, 48], idle=[1, 3])
    return [Frame(raw, t, i, "sim") for i, (t, raw) in enumerate(world.events(0.0, 20.0))]


FRAMES = _frames()
SEEN: set[tuple[str, object]] = set()


def _outcome(condition: Condition, frame: Frame) -> tuple[str, object]:
    try:
        return "value", condition.check(frame)
    except ConditionError:
        return "error", None


@pytest.mark.parametrize(("expression", "message_type"), FRAME_EXPRESSIONS)
def test_conditions_over_frames_agree(expression: str, message_type: str | None) -> None:
    try:
        fast = Condition(expression, message_type)
    except ConditionError as exc:  # a type error found at load: the same for both paths
        assert "type error" in str(exc)
        return
    slow = Condition(expression, message_type)
    slow.compiled = None
    assert fast.compiled is not None, f"{expression!r} should compile to closures"
    for frame in FRAMES:
        want, got = _outcome(slow, frame), _outcome(fast, frame)
        assert want == got, f"{expression!r} on frame {frame.seq} ({frame.kind})"
        SEEN.add(want)


def test_frames_reach_every_outcome() -> None:
    """The frame expressions above see true, false and errors (run after them)."""
    for expression, message_type in FRAME_EXPRESSIONS:
        test_conditions_over_frames_agree(expression, message_type)
    assert {("value", True), ("value", False), ("error", None)} == SEEN
