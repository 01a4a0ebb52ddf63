"""The plot's pure core: adaptive time bins, rates, series, activity spans; video timing."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from logfixtures import T0, active, electrodes, image, temperature

from engine.core.frame import Frame
from engine.logtools.errors import LogToolError
from engine.logtools.timeline import Timeline
from engine.logtools.timing import TIME_BASE, FrameClock, PtsPlanner


def test_bins_coarsen_and_stay_bounded_while_counts_are_kept() -> None:
    timeline = Timeline(width=0.01, max_bins=100)
    for i in range(10_000):  # 1000 s at 10 Hz
        timeline.add_values(T0 + i * 0.1, "active_capacitance", [("capacitance", "a", float(i))])
    assert timeline.bins <= 100
    assert timeline.width >= 10.0
    assert sum(timeline.counts["active_capacitance"]) == 10_000
    series = timeline.series[("capacitance", "a")]
    assert sum(series.counts) == 10_000
    assert sum(series.sums) == pytest.approx(sum(range(10_000)))
    assert min(m for m in series.mins if math.isfinite(m)) == 0.0
    assert max(series.maxs) == 9999.0


def test_rates_are_messages_per_second_over_round_windows() -> None:
    timeline = Timeline(width=0.01, max_bins=2000)
    for i in range(200):  # 20 s at 10 Hz
        timeline.add_values(T0 + i * 0.1, "hv_regulator")
    step = timeline.rate_step()
    assert step * timeline.width == pytest.approx(1.0, rel=0.05)
    _, rates = timeline.rates("hv_regulator", step)
    assert all(r == pytest.approx(10.0, rel=0.15) for r in rates[:-1])


def test_series_points_break_across_a_pause() -> None:
    timeline = Timeline(width=0.1, max_bins=1000)
    for i in range(20):
        timeline.add_values(T0 + i, "temperature_control", [("temperature", "s0", 25.0)])
    for i in range(20):  # a 60 s pause, then more
        timeline.add_values(T0 + 80 + i, "temperature_control", [("temperature", "s0", 26.0)])
    times, means, _, _ = timeline.points("temperature", "s0")
    nans = [i for i, m in enumerate(means) if math.isnan(m)]
    assert len(nans) == 1
    assert T0 + 19 < times[nans[0]] < T0 + 80
    assert len(means) == 41


def test_activity_spans_join_neighbouring_bins() -> None:
    timeline = Timeline(width=0.1, max_bins=1000)
    timeline.add_values(T0, "active_capacitance")
    for t in (5.0, 5.05, 5.15, 5.25, 30.0):
        timeline.add_values(T0 + t, "electrode_state")
    timeline.add_values(T0 + 40, "active_capacitance")
    spans = timeline.activity_spans()
    assert len(spans) == 2
    assert spans[0][0] == pytest.approx(T0 + 5.0)
    assert spans[0][1] == pytest.approx(T0 + 5.3)
    assert spans[1][0] == pytest.approx(T0 + 30.0)


def test_frames_feed_the_timeline_by_type() -> None:
    timeline = Timeline()
    frames = [
        Frame(active(T0, 0.5), T0, 0),
        Frame(temperature(T0 + 0.25, [25.0, 24.0]), T0 + 0.25, 1),
        Frame(electrodes([1]), T0 + 0.5, 2),
        Frame(b"\xff\x00garbage", T0 + 0.6, 3),
    ]
    for frame in frames:
        timeline.add(frame)
    assert set(timeline.counts) == {"active_capacitance", "temperature_control", "electrode_state"}
    assert timeline.panels() == {
        "capacitance": ["active (calibrated)"],
        "temperature": ["sensor 0", "sensor 1"],
    }


def test_pts_follow_times_and_never_repeat() -> None:
    planner = PtsPlanner(start=T0, speed=2.0)
    ticks = 1 / TIME_BASE
    assert planner.pts(T0) == 0
    assert planner.pts(T0 + 1.0) == round(0.5 * ticks)
    assert planner.pts(T0 + 1.0) == round(0.5 * ticks) + 1  # same time: next tick
    assert planner.pts(T0 + 0.5) == round(0.5 * ticks) + 2  # clock stepped back
    assert planner.adjusted == 2
    assert PtsPlanner(0.0, time_base=Fraction(1, 1000)).pts(1.2345) == 1234


def test_pts_refuse_a_speed_that_is_not_positive() -> None:
    with pytest.raises(LogToolError, match="speed"):
        PtsPlanner(T0, speed=0)


def test_frame_clock_uses_timestamps_and_bridges_missing_ones() -> None:
    clock = FrameClock("timestamp")
    with_stamp = Frame(image(T0 + 1.0, b"x"), T0 + 1.25, 0)
    assert clock.time(with_stamp) == pytest.approx(T0 + 1.0)
    no_stamp = Frame(bytes([0x1A, 0x03, 0x12, 0x01, 0x78]), T0 + 2.25, 1)  # image without timestamp
    assert no_stamp.kind == "image"
    assert clock.time(no_stamp) == pytest.approx(T0 + 2.0)
    assert clock.missing == 1
    assert FrameClock("receive").time(with_stamp) == T0 + 1.25
    with pytest.raises(LogToolError):
        FrameClock("wall")  # type: ignore[arg-type]
