"""CEL conditions: schema-checked at compile time, never crashing the stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.condition import Condition, ConditionError
from engine.core.fieldpath import MISSING, FieldPath, FieldPathError, comparable
from engine.core.frame import Frame
from engine.proto.purpledrop_pb2 import PurpleDropEvent


def frame(seq: int = 1, time: float = 1.0, **fields: object) -> Frame:
    ((kind, value),) = fields.items()
    event = PurpleDropEvent()
    message = getattr(event, kind)
    message.SetInParent()
    if isinstance(value, dict):
        for name, v in value.items():
            target = getattr(message, name)
            if isinstance(v, list):
                if v and isinstance(v[0], dict):
                    for item in v:
                        sub = target.add()
                        for k, x in item.items():
                            if isinstance(x, list):
                                getattr(sub, k).extend(x)
                            else:
                                setattr(sub, k, x)
                else:
                    target.extend(v)
            else:
                setattr(message, name, v)
    return Frame(event.SerializeToString(), time, seq, "pd")


def cap(value: float, seq: int = 1) -> Frame:
    return frame(seq, active_capacitance={"calibrated": value})


def temps(*values: float) -> Frame:
    return frame(temperature_control={"temperatures": list(values)})


def test_field_comparison_on_its_message_type() -> None:
    c = Condition("active_capacitance.calibrated > 3.5")
    assert c.evaluate(cap(4.0)) is True
    assert c.evaluate(cap(3.5)) is False
    assert c.kinds == frozenset({"active_capacitance"})


def test_other_message_types_are_false_without_evaluating() -> None:
    c = Condition("active_capacitance.calibrated < 1.0")  # defaults would read 0.0 < 1.0
    assert c.evaluate(temps(20.0)) is False
    assert c.errors == 0


def test_bare_fields_with_a_message_type() -> None:
    c = Condition("calibrated > 3.5 && baseline == 0.0", "active_capacitance")
    assert c.evaluate(cap(4.0)) is True
    assert c.evaluate(temps(99.0)) is False


def test_a_bare_message_field_reads_like_its_full_path() -> None:
    """``timestamp`` with a message type is that type's field: it loads, and an unset one
    is an error on both paths, as ``active_capacitance.timestamp`` is (was a KeyError
    at load, from the sample without it)."""
    set_one = PurpleDropEvent()
    set_one.active_capacitance.timestamp.seconds = 5
    stamped = Frame(set_one.SerializeToString(), 1.0, 1, "pd")
    for compiled in (True, False):
        c = Condition("timestamp.seconds > 1", "active_capacitance")
        full = Condition("active_capacitance.timestamp.seconds > 1")
        if not compiled:
            c.compiled = full.compiled = None
        assert c.check(stamped) is full.check(stamped) is True
        for condition in (c, full):
            with pytest.raises(ConditionError, match="evaluation failed"):
                condition.check(cap(1.0))


def test_type_and_context_names_apply_to_every_frame() -> None:
    c = Condition('type == "electrode_state" || seq > 5')
    assert c.kinds is None
    assert c.evaluate(frame(electrode_state={})) is True
    assert c.evaluate(temps(1.0)) is False
    assert c.evaluate(frame(seq=6, temperature_control={"temperatures": [1.0]})) is True


def test_time_source_length() -> None:
    c = Condition('time >= 2.0 && source == "pd" && length > 2')
    assert c.evaluate(frame(time=2.0, active_capacitance={"calibrated": 1.0})) is True
    assert c.evaluate(frame(time=1.9, active_capacitance={"calibrated": 1.0})) is False


def test_indexes_and_repeated_messages() -> None:
    c = Condition("temperature_control.temperatures[1] > 20.5")
    assert c.evaluate(temps(20.0, 21.0)) is True
    assert c.evaluate(temps(22.0, 20.0)) is False
    groups = Condition("electrode_state.drive_groups.exists(g, g.setting == 3)")
    hit = frame(electrode_state={"drive_groups": [{"electrodes": [True], "setting": 3}]})
    miss = frame(electrode_state={"drive_groups": [{"electrodes": [True], "setting": 1}]})
    assert groups.evaluate(hit) is True
    assert groups.evaluate(miss) is False


@pytest.mark.parametrize(
    ("expression", "column", "needle"),
    [
        ("active_capacitance.calibratd > 1", 20, "has no field 'calibratd'"),
        ("x > 1 && foo > 2", 1, "unknown name 'x'"),
        ("active_capacitance.calibrated > 1 && foo > 2", 38, "unknown name 'foo'"),
        ("active_capacitance.calibrated.x > 1", 31, "calibrated is a float"),
        ("temperature_control.temperatures.x > 1", 34, "is a list"),
        ("active_capacitance[0] > 1", 19, "cannot be indexed"),
        ("time.x > 1", 6, "time is a double"),
        ("sise(type) > 1", 1, "unknown function 'sise'"),
        ("active_capacitance.calibrated >", 32, "Syntax error"),
    ],
)
def test_compile_errors_name_what_and_where(expression: str, column: int, needle: str) -> None:
    with pytest.raises(ConditionError) as info:
        Condition(expression)
    assert needle in str(info.value)
    assert info.value.column == column


def test_error_on_second_line_has_line_number() -> None:
    with pytest.raises(ConditionError) as info:
        Condition("active_capacitance.calibrated > 1 &&\n  active_capacitance.nope")
    assert (info.value.line, info.value.column) == (2, 22)
    assert "line 2, column 22" in str(info.value)


def test_non_boolean_expression_is_refused_at_compile_time() -> None:
    with pytest.raises(ConditionError, match="not true/false"):
        Condition("active_capacitance.calibrated")


def test_unknown_message_type_and_empty_expression() -> None:
    with pytest.raises(ConditionError, match="unknown message type 'capacitance'"):
        Condition("x > 1", "capacitance")
    with pytest.raises(ConditionError, match="empty expression"):
        Condition("  ")


def test_runtime_errors_are_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    c = Condition("temperature_control.temperatures[5] > 1.0")
    assert c.evaluate(temps(1.0)) is False
    assert c.evaluate(temps(1.0)) is False
    assert c.errors == 2
    assert c.last_error is not None and "index out of bounds" in c.last_error
    assert sum("index out of bounds" in r.message for r in caplog.records) == 1
    with pytest.raises(ConditionError, match="frame 1"):
        c.check(temps(1.0))


def test_undecodable_frame_is_an_error_not_a_crash() -> None:
    c = Condition("active_capacitance.calibrated > 1.0")
    broken = Frame(bytes([(7 << 3) | 2, 50, 1, 2]), 0.0, 9, "pd")  # length runs past the end
    assert c.evaluate(broken) is False
    assert c.errors == 1
    assert "frame 9" in (c.last_error or "")


def test_macro_locals_are_not_schema_names() -> None:
    c = Condition("temperature_control.temperatures.all(t, t < 50.0)")
    assert c.evaluate(temps(20.0, 30.0)) is True
    assert c.evaluate(temps(20.0, 60.0)) is False


def test_field_path_reading_and_errors() -> None:
    path = FieldPath("temperature_control.temperatures[-1]")
    assert path.numeric and path.kind == "temperature_control"
    assert path.read(temps(1.0, 2.0)) == 2.0
    assert path.read(temps()) is MISSING
    assert path.read(cap(1.0)) is MISSING
    groups = FieldPath("electrode_state.drive_groups")
    assert groups.repeated and not groups.numeric
    a = frame(electrode_state={"drive_groups": [{"electrodes": [True, False]}]})
    b = frame(electrode_state={"drive_groups": [{"electrodes": [True, False]}]})
    assert comparable(groups.read(a)) == comparable(groups.read(b))
    with pytest.raises(FieldPathError) as info:
        FieldPath("electrode_state.drive_groups.setting")
    assert info.value.column == 30
    with pytest.raises(FieldPathError, match="not a message type"):
        FieldPath("capacitance.calibrated")
    with pytest.raises(FieldPathError, match="not a list"):
        FieldPath("active_capacitance.calibrated[0]")


def test_has_tells_whether_a_message_field_is_set() -> None:
    c = Condition("has(scan_capacitance.timestamp)")
    without = frame(scan_capacitance={"measurements": [{"capacitance": 1.0}]})
    event = PurpleDropEvent()
    event.scan_capacitance.timestamp.seconds = 5
    assert c.evaluate(without) is False
    assert c.evaluate(Frame(event.SerializeToString(), 0.0, 2, "pd")) is True
    assert Condition("size(scan_capacitance.measurements) == 1").evaluate(without) is True


MAPS_PROTO = """\
syntax = "proto3";
package maps;

message Inner {
  string name = 1;
}

message Probe {
  double x = 1;
  map<string, int64> tags = 2;
  map<int32, Inner> by_id = 3;
}

message Event {
  oneof body {
    Probe probe = 1;
  }
}
"""


def test_a_schema_with_map_fields(tmp_path: Path) -> None:
    """A map field reads as CEL's map on both paths (its container iterates keys, not
    entries; the load-time sample was an AttributeError for any condition on the type)."""
    from engine.core.frame import frame_class
    from engine.schema_files import SchemaSpec, load_schema

    proto = tmp_path / "maps.proto"
    proto.write_text(MAPS_PROTO, encoding="utf-8")
    schema = load_schema(SchemaSpec(message="maps.Event", proto=(str(proto),)))
    event = schema.message_class()
    event.probe.x = 2.0
    event.probe.tags["a"] = 7
    event.probe.by_id[3].name = "pump"
    make = frame_class(schema)
    tagged = make(event.SerializeToString(), 1.0, 1, "lab")
    plain = schema.message_class()
    plain.probe.x = 2.0
    untagged = make(plain.SerializeToString(), 2.0, 2, "lab")
    cases = {
        "probe.x > 1.0": (True, True),
        "'a' in probe.tags && probe.tags['a'] == 7": (True, False),
        "size(probe.tags) == 1 && probe.by_id.size() == 1": (True, False),
        "probe.by_id[3].name == 'pump'": (True, None),  # None: no such key, an error
        "has(probe.tags.a) && probe.tags.a == 7": (True, False),  # a key, selected
    }
    for expression, (on_tagged, on_untagged) in cases.items():
        for compiled in (True, False):
            c = Condition(expression, schema=schema)
            if not compiled:
                c.compiled = None
            assert c.check(tagged) is on_tagged, expression
            if on_untagged is None:
                with pytest.raises(ConditionError, match="evaluation failed"):
                    c.check(untagged)
            else:
                assert c.check(untagged) is on_untagged, expression
    with pytest.raises(ConditionError, match="by_id has no field 'nope'; its fields are: name"):
        Condition("probe.by_id[3].nope == 'x'", schema=schema)
