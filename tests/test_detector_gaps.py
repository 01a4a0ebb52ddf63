"""After a gap, detectors that compare with a previous value start afresh."""

from __future__ import annotations

from pathlib import Path

import pytest
from recorder_streams import frame

from engine.core.clock import ManualClock
from engine.core.frame import Gap
from engine.events import Event, EventKind
from engine.recorder.config import RecorderConfig
from engine.recorder.detectors import (
    ActivityDetectors,
    ChangedDetector,
    MessageTypeDetector,
    RateDetector,
    StepDetector,
    ThresholdDetector,
)
from engine.recorder.recorder import Recorder

STEP = {"type": "step", "field": "hv_regulator.voltage", "delta": 10}
CHANGED = {"type": "changed", "field": "hv_regulator.voltage"}


@pytest.mark.parametrize("activity", [STEP, CHANGED], ids=["step", "changed"])
def test_a_reconnect_does_not_start_a_recording(tmp_path: Path, activity: dict) -> None:
    config = RecorderConfig.model_validate(
        {"activity": [activity], "pre_roll": 0, "post_roll": 1, "file_name": "{seq}.bin"}
    )
    events: list[Event] = []
    clock = ManualClock(100.0)
    recorder = Recorder("hv", config, root=tmp_path, emit=events.append, clock=clock)
    seq = 0
    for t in (100.0, 100.5, 101.0):  # steady at 100 V
        clock.set(t)
        recorder.feed(frame("hv_regulator", t, seq, value=100.0))
        seq += 1
    recorder.feed_gap(Gap("pd", 101.0, 106.0, "server restarted"))
    for t in (106.0, 106.5, 107.0):  # steady at 150 V after the restart
        clock.set(t)
        recorder.feed(frame("hv_regulator", t, seq, value=150.0))
        seq += 1
    assert EventKind.RECORDING_STARTED not in [e.name for e in events]
    clock.set(107.5)
    recorder.feed(frame("hv_regulator", 107.5, seq, value=200.0))  # a real move still counts
    assert [e.name for e in events] == [EventKind.RECORDING_STARTED]


def test_restart_forgets_previous_values_only() -> None:
    step = StepDetector("hv_regulator.voltage", 10)
    changed = ChangedDetector("hv_regulator.voltage")
    threshold = ThresholdDetector("hv_regulator.voltage", above=120)
    rate = RateDetector(per_second=2, window=1.0, types=["hv_regulator"])
    detectors = ActivityDetectors([step, changed, threshold, rate, MessageTypeDetector(["image"])])
    detectors(frame("hv_regulator", 1.0, 0, value=130.0))  # crosses the threshold
    detectors.restart()
    assert step.check(frame("hv_regulator", 9.0, 1, value=300.0)) is None
    assert changed.check(frame("hv_regulator", 9.0, 2, value=400.0)) is None
    # still beyond the threshold: not a new crossing
    assert threshold.check(frame("hv_regulator", 9.0, 3, value=130.0)) is None
