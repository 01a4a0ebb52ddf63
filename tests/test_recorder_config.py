"""Recorder definitions: defaults, units, and every mistake caught with its location."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from engine.core.units import parse_duration, parse_size
from engine.recorder.config import RecorderConfig


def first_error(data: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    with pytest.raises(ValidationError) as info:
        RecorderConfig.model_validate(data)
    error = info.value.errors()[0]
    return tuple(error["loc"]), error["msg"]


def test_defaults_are_a_manual_recorder_with_sane_rolls() -> None:
    config = RecorderConfig()
    assert config.activity == []
    assert config.enabled and config.min_activity == 1
    assert config.pre_roll == 2.0 and config.post_roll == 5.0
    assert config.max_segment_seconds is None and config.max_segment_bytes is None


def test_full_definition_with_units() -> None:
    config = RecorderConfig.model_validate(
        {
            "source": "pd",
            "activity": [
                {"type": "message", "types": ["electrode_state"]},
                {"type": "step", "field": "active_capacitance.calibrated", "delta": 0.5},
                {
                    "type": "threshold",
                    "field": "temperature_control.temperatures[0]",
                    "above": 40,
                    "hysteresis": 1,
                },
                {"type": "changed", "field": "electrode_state.drive_groups"},
                {"type": "rate", "types": ["duty_cycle_updated"], "per_second": 5, "window": "2s"},
                {
                    "type": "where",
                    "where": "calibrated > 3",
                    "types": ["active_capacitance"],
                    "name": "big",
                },
            ],
            "pre_roll": "500ms",
            "pre_roll_bytes": "8MiB",
            "post_roll": "1min",
            "max_segment_bytes": "1GB",
            "max_segment_seconds": "1h",
        }
    )
    assert config.pre_roll == 0.5 and config.post_roll == 60.0
    assert config.pre_roll_bytes == 8 * 1024 * 1024 and config.max_segment_bytes == 10**9
    assert config.max_segment_seconds == 3600.0
    assert [d.type for d in config.activity] == [
        "message",
        "step",
        "threshold",
        "changed",
        "rate",
        "where",
    ]
    assert config.activity[5].label == "big" and config.activity[0].label == "message"


@pytest.mark.parametrize(
    ("data", "loc", "needle"),
    [
        (
            {"activity": [{"type": "message", "types": ["electrod_state"]}]},
            ("activity", 0, "message", "types", 0),
            "'electrod_state' is not a message type",
        ),
        (
            {"activity": [{"type": "step", "field": "active_capacitance.calibratd", "delta": 1}]},
            ("activity", 0, "step", "field"),
            "at column 20",
        ),
        (
            {"activity": [{"type": "threshold", "field": "active_capacitance.calibrated"}]},
            ("activity", 0, "threshold"),
            "exactly one of 'above' or 'below'",
        ),
        (
            {
                "activity": [
                    {"type": "threshold", "field": "electrode_state.drive_groups", "above": 1}
                ]
            },
            ("activity", 0, "threshold", "field"),
            "not a number",
        ),
        (
            {"activity": [{"type": "step", "field": "active_capacitance.calibrated", "delta": 0}]},
            ("activity", 0, "step", "delta"),
            "greater than 0",
        ),
        (
            {"activity": [{"type": "where", "where": "active_capacitance.x > 1"}]},
            ("activity", 0, "where"),
            "has no field 'x'",
        ),
        ({"activity": [{"type": "nope"}]}, ("activity", 0), "'nope'"),
        (
            {"activity": [{"type": "message", "types": ["image"], "typo": 1}]},
            ("activity", 0, "message", "typo"),
            "Extra inputs",
        ),
        ({"folder": "../elsewhere"}, ("folder",), "climbs out"),
        ({"file_name": "/tmp/{seq}.bin"}, ("file_name",), "is absolute"),
        ({"file_name": "{camera}.bin"}, ("file_name",), "unknown field {camera}"),
        ({"pre_roll": "3 parsecs"}, ("pre_roll",), "not a duration"),
        ({"pre_roll": -1}, ("pre_roll",), "greater than or equal to 0"),
        ({"max_segment_bytes": "lots"}, ("max_segment_bytes",), "not a size"),
        ({"min_activity": 0}, ("min_activity",), "greater than or equal to 1"),
        ({"exclude": ["images"]}, ("exclude", 0), "not a message type"),
    ],
)
def test_bad_definitions_say_what_and_where(
    data: dict[str, Any], loc: tuple[Any, ...], needle: str
) -> None:
    error_loc, message = first_error(data)
    assert error_loc == loc
    assert needle in message


def test_units() -> None:
    assert parse_duration("250ms") == 0.25
    assert parse_duration("2 h") == 7200.0
    assert parse_duration(3) == 3
    assert parse_size("1.5KiB") == 1536
    assert parse_size("2k") == 2000
    assert parse_size("12") == 12
    with pytest.raises(ValueError, match="true/false"):
        parse_duration(True)


def test_path_template_and_json_schema() -> None:
    config = RecorderConfig(folder="runs/%Y", file_name="{recorder}-{seq}.bin")
    assert config.path_template().text == "runs/%Y/{recorder}-{seq}.bin"
    schema = RecorderConfig.model_json_schema()
    assert "activity" in schema["properties"]
    assert schema["additionalProperties"] is False
