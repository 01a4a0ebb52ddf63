"""The simulated PurpleDrop world: wire shape, rates, ground truth, determinism."""

from __future__ import annotations

import io
import itertools
import json
from collections import Counter

import pytest
from PIL import Image

from engine.core.frame import Frame
from engine.sim import board
from engine.sim.world import MOVE_WINDOW, TRAVEL, SimConfigError, SimWorld

START = 1_700_000_000.0  # epoch-sized start: times must stay exact with large offsets
MINUTE = 60.0
OPTIONS = {"fps": 4, "image_size": (64, 48), "idle": (4.0, 8.0), "first_burst_delay": 2.0}


@pytest.fixture(scope="module")
def world() -> SimWorld:
    return SimWorld(seed=7, **OPTIONS)


@pytest.fixture(scope="module")
def minute(world: SimWorld) -> list[Frame]:
    return [Frame(raw, t, i) for i, (t, raw) in enumerate(world.events(START, START + MINUTE))]


def of_kind(frames: list[Frame], kind: str) -> list[Frame]:
    return [f for f in frames if f.kind == kind]


def test_every_event_decodes_to_the_wire_shape(minute: list[Frame]) -> None:
    assert all(f.valid for f in minute)
    assert [f.kind for f in minute[:2]] == ["device_info", "electrode_layout"]
    info = minute[0].message
    assert info.connected and info.serial_number and info.software_version
    layout = json.loads(minute[1].message.layout)
    assert len(layout["grid"]) == board.ROWS and len(layout["grid"][0]) == board.COLS
    for frame in of_kind(minute, "electrode_state"):
        state = frame.message
        assert not state.HasField("timestamp")  # pdserver sends none: receive time is all there is
        assert len(state.drive_groups) == 2 and len(state.scan_groups) == 5
        groups = [*state.drive_groups, *state.scan_groups]
        assert all(len(g.electrodes) == board.ELECTRODES for g in groups)
    for frame in of_kind(minute, "scan_capacitance"):
        assert len(frame.message.measurements) == board.ELECTRODES
    for frame in minute[1:]:
        if frame.kind not in ("electrode_state", "device_info"):
            assert frame.timestamp == pytest.approx(frame.time, abs=1e-6), frame


def test_times_are_ordered_and_bounded(minute: list[Frame]) -> None:
    times = [f.time for f in minute]
    assert times == sorted(times)
    assert times[0] == START and times[-1] < START + MINUTE


def test_rates_over_a_simulated_minute(minute: list[Frame]) -> None:
    counts = Counter(f.kind for f in minute)
    expected = {
        "active_capacitance": 50 * MINUTE,
        "group_capacitance": 50 * MINUTE,
        "scan_capacitance": 1 * MINUTE,
        "hv_regulator": 1 * MINUTE,
        "temperature_control": 4 * MINUTE,
        "image": OPTIONS["fps"] * MINUTE,
        "image_transform": OPTIONS["fps"] * MINUTE,
    }
    for kind, n in expected.items():
        assert abs(counts[kind] - n) <= 1, (kind, counts[kind])
    assert counts["device_info"] == 1 and counts["electrode_layout"] == 1
    assert counts["electrode_state"] > 0 and counts["duty_cycle_updated"] > 0


def test_camera_frames_are_pairs_of_transform_then_jpeg(minute: list[Frame]) -> None:
    for i, frame in enumerate(minute):
        if frame.kind != "image":
            continue
        transform = minute[i - 1]
        assert transform.kind == "image_transform"
        assert transform.timestamp == frame.timestamp and transform.time == frame.time
        assert len(transform.message.transform) == 9 and len(transform.message.qr_codes) == 3
        assert (transform.message.image_width, transform.message.image_height) == (64, 48)
        picture = Image.open(io.BytesIO(frame.message.image_data))
        picture.load()
        assert picture.format == "JPEG" and picture.size == (64, 48)


def test_electrode_state_times_equal_the_ground_truth_exactly(
    world: SimWorld, minute: list[Frame]
) -> None:
    bursts = world.bursts(START, START + MINUTE)
    assert len(bursts) >= 3
    assert [f.time for f in of_kind(minute, "electrode_state")] == world.activity(
        START, START + MINUTE
    )
    assert bursts[0].start == START + 2.0  # first_burst_delay
    for before, after in itertools.pairwise(bursts):
        assert 4.0 <= after.start - before.settled <= 8.0  # idle
        assert before.end <= before.settled
    for burst in bursts:
        assert 2 <= len(burst.moves) <= 6
        assert burst.activity[0] == burst.start and burst.activity[-1] == burst.end
        for move in burst.moves:
            assert 2 <= len(move.times) <= 4
            assert move.end - move.start <= MOVE_WINDOW
            assert TRAVEL[0] <= move.travel <= TRAVEL[1]
            assert move.target in board.neighbours(move.source)


def test_activity_outside_bursts_is_none(world: SimWorld, minute: list[Frame]) -> None:
    bursts = world.bursts(START, START + MINUTE)
    for frame in of_kind(minute, "electrode_state") + of_kind(minute, "duty_cycle_updated"):
        assert any(b.start <= frame.time <= b.settled for b in bursts), frame


def calibrated(minute: list[Frame]) -> list[tuple[float, float]]:
    return [(f.time, f.message.calibrated) for f in of_kind(minute, "active_capacitance")]


def test_each_move_steps_the_active_capacitance(world: SimWorld, minute: list[Frame]) -> None:
    samples = calibrated(minute)
    for burst in world.bursts(START, START + MINUTE):
        for move in burst.moves:
            if move.arrival + 0.1 > START + MINUTE:
                continue  # cut short by the end of the window
            before = [v for t, v in samples if move.start < t < move.end]
            just_after = [v for t, v in samples if move.end < t < move.end + 0.03]
            settled = [v for t, v in samples if move.arrival < t < move.arrival + 0.1]
            # Droplet on the driven source electrode, then drive switches to the empty target.
            assert all(v > 30 for v in before), (move, before)
            assert just_after and all(v < 15 for v in just_after), (move, just_after)
            assert settled and all(v > 30 for v in settled), (move, settled)


def test_group_capacitance_follows_the_droplet(world: SimWorld, minute: list[Frame]) -> None:
    groups = [(f.time, list(f.message.measurements)) for f in of_kind(minute, "group_capacitance")]
    assert all(len(m) == 5 for _, m in groups)
    for burst in world.bursts(START, START + MINUTE):
        move = burst.moves[-1]
        if move.arrival + 0.1 > START + MINUTE:
            continue  # cut short by the end of the window
        after = [m[0] for t, m in groups if move.end < t < move.end + 0.03]
        settled = [m[0] for t, m in groups if move.arrival < t < move.arrival + 0.1]
        assert after and max(after) < 15 and min(settled) > 30
    reservoirs = [v for _, m in groups for v in m[1:]]
    assert min(reservoirs) > 30  # reservoirs always hold liquid


def test_noise_never_looks_like_a_step(world: SimWorld, minute: list[Frame]) -> None:
    bursts = world.bursts(START, START + MINUTE)
    quiet = [(b.settled + 0.05, a.start) for b, a in itertools.pairwise(bursts)]
    samples = calibrated(minute)
    for lo, hi in quiet:
        values = [v for t, v in samples if lo < t < hi]
        assert len(values) > 100
        assert max(values) - min(values) < 1.0  # 3-sigma bounded noise plus slow drift
        steps = [abs(b - a) for a, b in itertools.pairwise(values)]
        assert max(steps) < 0.7


def test_the_scan_map_shows_the_droplet_after_each_burst(
    world: SimWorld, minute: list[Frame]
) -> None:
    bursts = world.bursts(START, START + MINUTE - 3)
    scans = of_kind(minute, "scan_capacitance")
    for burst, following in zip(bursts, [*bursts[1:], None], strict=False):
        end = following.start if following else START + MINUTE
        maps = [s for s in scans if burst.settled < s.time < end]
        assert maps
        present = {i for i, m in enumerate(maps[0].message.measurements) if m.drop_present}
        assert present == {burst.moves[-1].target, *board.RESERVOIRS}


def test_duty_cycle_updates_only_on_change(minute: list[Frame]) -> None:
    values = [tuple(f.message.duty_cycles) for f in of_kind(minute, "duty_cycle_updated")]
    assert len(values) > 5
    assert all(a != b for a, b in itertools.pairwise(values))


@pytest.mark.parametrize("release", [0.0, 1.0])
def test_electrodes_stay_driven_while_idle_unless_released(release: float) -> None:
    world = SimWorld(seed=3, fps=0, idle=(3.0, 3.0), release_probability=release, max_bursts=1)
    frames = [Frame(raw, t, 0) for t, raw in world.events(0.0, 20.0)]
    (burst,) = world.bursts()
    idle = [v for t, v in calibrated(frames) if burst.settled + 0.05 < t]
    states = of_kind(frames, "electrode_state")
    driven = [any(states[-1].message.drive_groups[0].electrodes)]
    if release:
        assert burst.release is not None and burst.end == burst.release
        assert max(idle) < 1 and driven == [False]
    else:
        assert burst.release is None and burst.end == burst.moves[-1].end
        assert min(idle) > 30 and driven == [True]


def test_same_seed_same_bytes_other_seed_other_stream() -> None:
    a = list(SimWorld(seed=11, **OPTIONS).events(START, START + 15))
    b = list(SimWorld(seed=11, **OPTIONS).events(START, START + 15))
    c = list(SimWorld(seed=12, **OPTIONS).events(START, START + 15))
    assert a == b
    assert a != c
    assert SimWorld(seed=11).bursts(0, 100) != SimWorld(seed=12).bursts(0, 100)


def test_the_burst_plan_does_not_depend_on_the_camera_or_start() -> None:
    plain = SimWorld(seed=5, fps=0).bursts(0.0, 200.0)
    camera = SimWorld(seed=5, fps=30, image_size=(32, 32)).bursts(0.0, 200.0)
    assert plain == camera
    shifted = SimWorld(seed=5).bursts(1000.0, 1200.0)
    assert [b.start - 1000.0 for b in shifted] == pytest.approx([b.start for b in plain])


def test_a_world_replays_from_any_start_and_stops_before_until() -> None:
    world = SimWorld(seed=2, fps=0)
    first = list(world.events(100.0, 110.0))
    again = list(world.events(100.0, 110.0))
    assert first == again  # worlds are reusable
    assert all(100.0 <= t < 110.0 for t, _ in first)
    assert list(world.events(5.0, 5.0)) == []


def test_max_bursts_stops_activity_but_not_background() -> None:
    world = SimWorld(seed=4, fps=0, idle=(1.0, 2.0), max_bursts=2)
    bursts = world.bursts()
    assert len(bursts) == 2
    frames = [Frame(raw, t, 0) for t, raw in world.events(0.0, bursts[-1].settled + 30)]
    states = of_kind(frames, "electrode_state")
    assert states[-1].time == bursts[-1].end
    assert frames[-1].time > bursts[-1].settled + 29


def test_bursts_without_an_end_is_refused() -> None:
    with pytest.raises(SimConfigError, match="until"):
        SimWorld().bursts()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"idle": (5, 2)}, "idle"),
        ({"idle": "long"}, "idle"),
        ({"move_spacing": (0.1, 1.0)}, "move_spacing"),
        ({"moves_per_burst": (0, 3)}, "moves_per_burst"),
        ({"fps": -1}, "fps"),
        ({"image_size": (10, 10)}, "image_size"),
        ({"jpeg_quality": 100}, "jpeg_quality"),
        ({"capacitance_rate": 0}, "capacitance_rate"),
        ({"release_probability": 2}, "release_probability"),
        ({"fsp": 10}, "fsp"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, object], named: str) -> None:
    with pytest.raises(SimConfigError, match=named):
        SimWorld(**options)  # type: ignore[arg-type]
