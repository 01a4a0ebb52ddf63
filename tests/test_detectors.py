"""Activity detectors: what counts, what does not, and state kept across frames."""

from __future__ import annotations

import pytest
from recorder_streams import event_bytes, frame

from engine.core.frame import Frame
from engine.proto.purpledrop_pb2 import PurpleDropEvent
from engine.recorder.config import RecorderConfig
from engine.recorder.detectors import (
    ActivityDetectors,
    ChangedDetector,
    ConditionDetector,
    MessageTypeDetector,
    RateDetector,
    StepDetector,
    ThresholdDetector,
    build_detectors,
)

BACKGROUND = ["temperature_control", "hv_regulator", "image", "active_capacitance"]


def cap(value: float, t: float = 0.0, seq: int = 0) -> Frame:
    return frame("active_capacitance", t, seq, value=value)


def hits(detector: object, frames: list[Frame]) -> list[bool]:
    return [detector.hit(f) for f in frames]  # type: ignore[attr-defined]


def test_message_type() -> None:
    d = MessageTypeDetector(["electrode_state"])
    assert d.hit(frame("electrode_state", 0, 0))
    assert not any(d.hit(frame(k, 0, 0)) for k in BACKGROUND)


def test_changed_compares_repeated_fields_by_value() -> None:
    d = ChangedDetector("electrode_state.drive_groups")
    a, b = frame("electrode_state", 0, 0, value=1), frame("electrode_state", 1, 1, value=1)
    c = frame("electrode_state", 2, 2, value=3)
    # First message: nothing to compare with. Same pattern again: no change. New pattern: change.
    assert hits(d, [a, b, c, c]) == [False, False, True, False]
    assert not d.hit(frame("temperature_control", 3, 3))


def test_changed_scalar_and_missing_index() -> None:
    d = ChangedDetector("temperature_control.temperatures[1]")
    one = Frame(event_bytes("temperature_control", 20.0), 0, 0)
    two = PurpleDropEvent()
    two.temperature_control.temperatures.extend([20.0, 30.0])
    both = Frame(two.SerializeToString(), 1, 1)
    assert hits(d, [one, one, both, both, one]) == [False, False, True, False, True]


def test_threshold_above_with_hysteresis() -> None:
    d = ThresholdDetector("active_capacitance.calibrated", above=10.0, hysteresis=2.0)
    values = [5, 11, 12, 9, 11, 8, 10.5, 10.0, 11]
    # Crosses at 11; 9 is inside the band (not re-armed); 8 re-arms; 10.5 crosses again.
    assert hits(d, [cap(v) for v in values]) == [
        False,
        True,
        False,
        False,
        False,
        False,
        True,
        False,
        False,
    ]


def test_threshold_below_and_continuous() -> None:
    d = ThresholdDetector(
        "active_capacitance.calibrated", below=1.0, hysteresis=0.5, continuous=True
    )
    values = [2, 0.5, 0.2, 1.2, 1.5, 0.9]
    # Beyond from 0.5 on; 1.2 is still inside the band (continuous: still activity); 1.5 re-arms.
    assert hits(d, [cap(v) for v in values]) == [False, True, True, True, False, True]


def test_threshold_starts_armed() -> None:
    d = ThresholdDetector("active_capacitance.calibrated", above=1.0)
    assert hits(d, [cap(5), cap(5)]) == [True, False]


def test_step_by_more_than_delta() -> None:
    d = StepDetector("active_capacitance.calibrated", delta=2.0)
    values = [10, 11, 13, 13.5, 11.4, 30]
    # 11->13 is exactly 2.0 (not more); 13.5->11.4 is 2.1; 11.4->30 is 18.6.
    assert hits(d, [cap(v) for v in values]) == [False, False, False, False, True, True]
    up = StepDetector("active_capacitance.calibrated", delta=1.0, direction="up")
    assert hits(up, [cap(v) for v in [5, 3, 5]]) == [False, False, True]
    down = StepDetector("active_capacitance.calibrated", delta=1.0, direction="down")
    assert hits(down, [cap(v) for v in [5, 3, 5]]) == [False, True, False]


def test_step_ignores_noise_and_other_types() -> None:
    d = StepDetector("active_capacitance.calibrated", delta=1.0)
    noisy = [cap(10 + 0.1 * ((i * 7) % 5 - 2), i * 0.02, i) for i in range(200)]
    assert not any(hits(d, noisy))
    assert not d.hit(frame("temperature_control", 5, 0, value=99))


def test_rate_above_per_second() -> None:
    d = RateDetector(per_second=3, window=1.0, types=["duty_cycle_updated"])
    frames = [
        frame("duty_cycle_updated", t, i) for i, t in enumerate([0.0, 0.3, 0.6, 0.9, 2.0, 2.1])
    ]
    # The 4th message within [t-1, t] exceeds 3 per second.
    assert hits(d, frames) == [False, False, False, True, False, False]
    assert not d.hit(frame("temperature_control", 2.2, 9))


def test_rate_window_is_inclusive_and_memory_bounded() -> None:
    d = RateDetector(per_second=2, window=1.0)  # every type
    frames = [frame("temperature_control", t, i) for i, t in enumerate([0.0, 0.5, 1.0])]
    assert hits(d, frames) == [False, False, True]  # 0.0 is still within [0.0, 1.0]
    for i in range(1000):
        d.hit(frame("hv_regulator", 2 + i * 0.001, i))
    assert len(d._times) <= 3


def test_condition_detector() -> None:
    d = ConditionDetector("calibrated > 3.5", types=["active_capacitance"])
    assert hits(d, [cap(4.0), cap(1.0), frame("temperature_control", 0, 0, value=9)]) == [
        True,
        False,
        False,
    ]
    assert d.kinds == frozenset({"active_capacitance"})


def test_decode_errors_are_counted_not_raised() -> None:
    broken = Frame(bytes([(7 << 3) | 2, 40, 1]), 0.0, 1)  # active_capacitance, length past the end
    step = StepDetector("active_capacitance.calibrated", delta=1.0)
    changed = ChangedDetector("active_capacitance.calibrated")
    where = ConditionDetector("active_capacitance.calibrated > 1.0")
    for d in (step, changed, where):
        assert d.hit(broken) is False
        assert d.errors == 1


def test_set_runs_every_stateful_detector_and_labels_the_first() -> None:
    step = StepDetector("active_capacitance.calibrated", delta=1.0, label="step")
    changed = ChangedDetector("active_capacitance.calibrated", label="changed")
    detectors = ActivityDetectors(
        [MessageTypeDetector(["electrode_state"], "moves"), changed, step]
    )
    assert detectors(cap(1.0)) is None
    assert detectors(cap(5.0)) == "changed"  # both fire; the first label wins
    assert detectors(cap(5.5)) == "changed"  # step saw 5.0 as its previous value
    assert detectors(cap(5.5)) is None
    assert detectors(frame("electrode_state", 0, 0)) == "moves"
    assert detectors.hits == {"changed": 2, "moves": 1}
    assert detectors.kinds == frozenset({"electrode_state", "active_capacitance"})
    assert detectors(frame("image", 0, 0, size=5000)) is None


def test_background_never_counts_by_default() -> None:
    config = RecorderConfig.model_validate(
        {
            "activity": [
                {"type": "message", "types": ["electrode_state"]},
                {"type": "step", "field": "active_capacitance.calibrated", "delta": 2.0},
            ]
        }
    )
    detectors = build_detectors(config.activity)
    background = [
        frame(k, i * 0.1, i, value=20 + (i % 3) * 0.1, size=200)
        for i, k in enumerate(BACKGROUND * 50)
    ]
    assert [detectors(f) for f in background].count(None) == len(background)


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        ({"type": "message", "types": ["image"]}, MessageTypeDetector),
        ({"type": "changed", "field": "electrode_state.drive_groups"}, ChangedDetector),
        (
            {"type": "threshold", "field": "active_capacitance.calibrated", "below": 1},
            ThresholdDetector,
        ),
        ({"type": "step", "field": "active_capacitance.calibrated", "delta": 1}, StepDetector),
        ({"type": "rate", "per_second": 5}, RateDetector),
        ({"type": "where", "where": "type == 'image'", "name": "pics"}, ConditionDetector),
    ],
)
def test_built_from_config(entry: dict[str, object], kind: type) -> None:
    [detector] = build_detectors(
        RecorderConfig.model_validate({"activity": [entry]}).activity
    ).detectors
    assert isinstance(detector, kind)
    assert detector.label == entry.get("name", entry["type"])
