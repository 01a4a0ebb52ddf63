"""The recorder as the engine runs it: manual control, states, events, files, errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from full_disk import full_disk_after
from recorder_streams import frame, read_segments

from engine.core.clock import ManualClock
from engine.core.frame import Frame, Gap
from engine.events import Event, EventKind
from engine.recorder.config import RecorderConfig
from engine.recorder.decisions import RecorderStateError
from engine.recorder.preroll import PreRoll
from engine.recorder.recorder import Recorder

MOVES = {"type": "message", "types": ["electrode_state"]}


class Rig:
    """A recorder on a ManualClock with its events collected."""

    def __init__(self, root: Path, **options: Any) -> None:
        options.setdefault("activity", [MOVES])
        options.setdefault("file_name", "{seq}.bin")
        self.config = RecorderConfig.model_validate(options)
        self.clock = ManualClock(100.0)
        self.events: list[Event] = []
        self.recorder = Recorder(
            "rec", self.config, root=root, emit=self.events.append, clock=self.clock
        )
        self.seq = 0
        self.states: list[str] = []

    def feed(self, kind: str, t: float, **kw: Any) -> Frame:
        self.clock.set(t)
        f = frame(kind, t, self.seq, value=float(self.seq), **kw)
        self.seq += 1
        self.recorder.feed(f)
        if not self.states or self.states[-1] != self.recorder.state:
            self.states.append(self.recorder.state)
        return f

    def background(self, start: float, end: float, step: float = 0.5) -> None:
        t = start
        while t <= end + 1e-9:
            self.feed("temperature_control", t)
            t += step

    def names(self) -> list[str]:
        return [e.name for e in self.events]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path, pre_roll=1.0, post_roll=2.0)


async def test_manual_start_includes_pre_roll_and_stop_closes_at_once(rig: Rig) -> None:
    rig.background(100.0, 105.0)
    path = await rig.recorder.start("rule:snapshot")
    assert path is not None and path.exists()
    assert rig.recorder.state == "recording"
    rig.background(105.5, 120.0)  # far beyond post_roll: a manual recording ignores it
    assert rig.recorder.state == "recording"
    manifest = await rig.recorder.stop("rule:done")
    assert manifest is not None and rig.recorder.state == "idle"
    [frames] = read_segments(rig.recorder.segments)
    assert frames[0].time == 104.0 and frames[-1].time == 120.0
    assert (manifest.start_reason, manifest.stop_reason) == ("rule:snapshot", "rule:done")
    assert rig.names() == [EventKind.RECORDING_STARTED, EventKind.RECORDING_STOPPED]
    assert rig.events[0].data["reason"] == "rule:snapshot" and rig.events[0].data["path"] == str(
        path
    )
    assert rig.events[1].data["records"] == len(frames)
    assert await rig.recorder.stop() is None  # stopping twice is harmless


async def test_manual_start_without_pre_roll(rig: Rig) -> None:
    rig.background(100.0, 105.0)
    await rig.recorder.start(pre_roll=False)
    rig.background(105.5, 106.0)
    await rig.recorder.stop()
    [frames] = read_segments(rig.recorder.segments)
    assert [f.time for f in frames] == [105.5, 106.0]


async def test_manual_start_while_recording_holds_it_open(rig: Rig) -> None:
    rig.background(100.0, 101.0)
    rig.feed("electrode_state", 101.2)
    await rig.recorder.start()
    rig.background(101.5, 110.0)
    assert rig.recorder.state == "recording" and len(rig.recorder.segments) == 0
    await rig.recorder.stop()
    assert len(rig.recorder.segments) == 1
    assert rig.recorder.segments[0].start_reason == "activity"


def test_states_through_a_burst_with_gap_merging(rig: Rig) -> None:
    rig.background(100.0, 102.0)
    rig.feed("electrode_state", 102.2)
    rig.background(102.5, 103.5)  # quiet for a second: cooling down
    rig.feed("electrode_state", 103.7)  # within post_roll: the same recording goes on
    rig.background(104.0, 110.0)
    assert rig.states == ["idle", "recording", "cooling_down", "recording", "cooling_down", "idle"]
    [manifest] = rig.recorder.segments
    assert (manifest.first_activity, manifest.last_activity) == (102.2, 103.7)
    assert manifest.extra["activity"] == {"message": 2}
    assert manifest.closed_at == pytest.approx(105.7)


def test_tick_ends_post_roll_when_the_stream_goes_silent(rig: Rig) -> None:
    rig.background(100.0, 101.0)
    rig.feed("electrode_state", 101.5)
    rig.recorder.tick(103.0)
    assert rig.recorder.state == "cooling_down"
    rig.recorder.tick(103.5)  # exactly last + post_roll: still inside
    assert rig.recorder.state == "cooling_down"
    rig.recorder.tick(103.51)
    assert rig.recorder.state == "idle"
    assert (
        rig.events[-1].name == EventKind.RECORDING_STOPPED
        and rig.events[-1].data["reason"] == "post_roll"
    )
    assert rig.events[-1].time == 103.5


def test_machine_is_triggered_only_on_state_changes(rig: Rig) -> None:
    fired: list[str] = []
    fire = rig.recorder.machine.fire

    def counting(trigger: str, **data: Any) -> None:
        fired.append(trigger)
        fire(trigger, **data)

    rig.recorder.machine.fire = counting  # type: ignore[method-assign]
    rig.background(100.0, 150.0, step=0.02)  # thousands of background frames around a burst
    for t in (150.01, 150.1, 150.2):
        rig.feed("electrode_state", t)
    rig.background(150.21, 210.0, step=0.02)
    assert fired == ["activity", "quiet", "timeout"]


async def test_disable_closes_and_ignores_until_enabled(rig: Rig) -> None:
    rig.feed("electrode_state", 100.0)
    rig.recorder.disable()
    assert rig.recorder.state == "disabled"
    assert rig.recorder.segments[0].stop_reason == "disabled"
    rig.feed("electrode_state", 100.5)
    assert len(rig.recorder.segments) == 1 and not rig.recorder.recording
    with pytest.raises(RecorderStateError, match="disabled"):
        await rig.recorder.start()
    rig.recorder.enable()
    rig.feed("electrode_state", 101.0)
    assert rig.recorder.state == "recording"
    # Nothing received while disabled reaches the pre-roll of the next recording.
    rig.recorder.close()
    frames = read_segments(rig.recorder.segments)
    assert [f.time for f in frames[1]] == [101.0]


def test_disabled_in_config_starts_disabled(tmp_path: Path) -> None:
    rig = Rig(tmp_path, enabled=False)
    rig.feed("electrode_state", 100.0)
    assert rig.recorder.state == "disabled" and not rig.recorder.segments


def test_close_finishes_the_open_segment(rig: Rig) -> None:
    rig.feed("electrode_state", 100.0)
    rig.feed("temperature_control", 100.5)
    rig.recorder.close()
    assert rig.recorder.state == "closed"
    [manifest] = rig.recorder.segments
    assert manifest.stop_reason == "shutdown" and manifest.complete
    saved = json.loads(Path(manifest.path + ".json").read_text())
    assert saved["complete"] and saved["records"] == 2
    rig.feed("electrode_state", 101.0)
    rig.recorder.close()
    assert len(rig.recorder.segments) == 1


def test_rotation_announces_stop_then_start_and_loses_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path, pre_roll=0, post_roll=10, max_segment_seconds=2.0)
    rig.feed("electrode_state", 100.0)
    rig.background(100.5, 105.0)
    rig.recorder.close()
    segments = read_segments(rig.recorder.segments)
    assert [[f.time for f in s] for s in segments] == [
        [100.0, 100.5, 101.0, 101.5],
        [102.0, 102.5, 103.0, 103.5],
        [104.0, 104.5, 105.0],
    ]
    assert [m.stop_reason for m in rig.recorder.segments] == ["max_segment_seconds"] * 2 + [
        "shutdown"
    ]
    assert [m.extra["part"] for m in rig.recorder.segments] == [1, 2, 3]
    assert {m.extra["recording"] for m in rig.recorder.segments} == {1}
    reasons = [(e.name, e.data["reason"]) for e in rig.events]
    assert reasons[:3] == [
        (EventKind.RECORDING_STARTED, "activity"),
        (EventKind.RECORDING_STOPPED, "max_segment_seconds"),
        (EventKind.RECORDING_STARTED, "rotation"),
    ]


def test_gap_is_noted_in_the_open_segment(rig: Rig) -> None:
    rig.feed("electrode_state", 100.0)
    rig.recorder.feed_gap(Gap("pd", 100.2, 100.9, "connection lost"))
    rig.feed("electrode_state", 101.0)
    rig.recorder.close()
    assert rig.recorder.segments[0].gaps == [
        {"start": 100.2, "end": 100.9, "seconds": 0.7, "reason": "connection lost"}
    ]


def test_excluded_types_are_not_written(tmp_path: Path) -> None:
    rig = Rig(tmp_path, exclude=["image"], pre_roll=1.0)
    rig.feed("image", 100.5, size=1000)
    rig.feed("temperature_control", 100.6)
    rig.feed("electrode_state", 101.0)
    rig.feed("image", 101.1, size=1000)
    rig.recorder.close()
    [frames] = read_segments(rig.recorder.segments)
    assert [f.kind for f in frames] == ["temperature_control", "electrode_state"]


def test_file_names_from_templates_never_overwrite(tmp_path: Path) -> None:
    a = Rig(tmp_path, folder="{source}/%Y", file_name="{recorder}-{reason}.bin", utc=True)
    a.feed("electrode_state", 100.0)
    a.recorder.close()
    b = Rig(tmp_path, folder="{source}/%Y", file_name="{recorder}-{reason}.bin", utc=True)
    b.feed("electrode_state", 100.0)
    b.recorder.close()
    assert Path(a.recorder.segments[0].path) == tmp_path / "pd" / "1970" / "rec-activity.bin"
    assert Path(b.recorder.segments[0].path) == tmp_path / "pd" / "1970" / "rec-activity-2.bin"


def test_a_failing_listener_does_not_stop_recording(tmp_path: Path) -> None:
    def explode(event: Event) -> None:
        raise RuntimeError("listener bug")

    recorder = Recorder(
        "rec", RecorderConfig(activity=[MOVES]), root=tmp_path, emit=explode, clock=ManualClock(0)
    )
    recorder.feed(frame("electrode_state", 1.0, 0))
    recorder.close()
    assert recorder.segments[0].records == 1


def test_unwritable_folder_is_an_error_state_then_retried(tmp_path: Path) -> None:
    blocker = tmp_path / "rec"
    blocker.write_text("a file where the recorder's folder should be")
    rig = Rig(tmp_path, folder="rec", pre_roll=0, post_roll=1, retry_after=5)
    rig.feed("electrode_state", 100.0)
    assert rig.recorder.state == "error"
    [error] = [e for e in rig.events if e.name == EventKind.RECORDING_ERROR]
    assert "rec" in error.data["error"] and error.data["retry_after"] == 5
    rig.feed("electrode_state", 101.0)  # ignored, no exception, no second report
    assert rig.names().count(EventKind.RECORDING_ERROR) == 1
    rig.recorder.tick(104.9)
    assert rig.recorder.state == "error"
    blocker.unlink()
    rig.recorder.tick(105.0)
    assert rig.recorder.state == "idle"
    rig.feed("electrode_state", 106.0)
    assert rig.recorder.state == "recording" and rig.recorder.path is not None


async def test_error_state_retries_by_itself_with_an_event_loop(tmp_path: Path) -> None:
    (tmp_path / "rec").write_text("blocker")
    rig = Rig(tmp_path, folder="rec", retry_after=0.02)
    rig.feed("electrode_state", 100.0)
    assert rig.recorder.state == "error"
    for _ in range(200):
        await asyncio.sleep(0.01)
        if rig.recorder.state == "idle":
            break
    assert rig.recorder.state == "idle"


async def test_manual_start_after_error_tries_again(tmp_path: Path) -> None:
    (tmp_path / "rec").write_text("blocker")
    rig = Rig(tmp_path, folder="rec", retry_after=None)
    rig.feed("electrode_state", 100.0)
    assert rig.recorder.state == "error"
    rig.recorder.tick(10_000.0)
    assert rig.recorder.state == "error"  # retry_after: null waits to be told
    (tmp_path / "rec").unlink()
    assert await rig.recorder.start() is not None
    assert rig.recorder.state == "recording"


def test_full_disk_keeps_what_was_written_and_reports(tmp_path: Path) -> None:
    rig = Rig(tmp_path, pre_roll=0, post_roll=100, flush_interval=0.01)
    with full_disk_after(256 * 1024):
        rig.feed("electrode_state", 100.0)
        t = 100.0
        for _ in range(100):  # 100 x 20 KB: far past the limit
            t += 0.1
            rig.feed("image", t, size=20_000)
            if rig.recorder.state == "error":
                break
    assert rig.recorder.state == "error"
    [error] = [e for e in rig.events if e.name == EventKind.RECORDING_ERROR]
    assert "File too large" in error.data["error"] or "write failed" in error.data["error"]
    [manifest] = rig.recorder.segments
    assert manifest.stop_reason == "error"
    rig.feed("image", t + 0.1, size=20_000)  # the engine keeps feeding; nothing raises
    [frames] = read_segments(rig.recorder.segments)
    assert 0 < len(frames) <= 14  # whatever reached the disk reads back cleanly
    assert frames[0].kind == "electrode_state"


def test_pre_roll_stays_at_its_bounds_over_a_long_stream() -> None:
    ring = PreRoll(seconds=2.0, max_bytes=50_000)
    most_items = most_bytes = 0
    for i in range(100_000):
        t = i * 0.01
        size = 3_000 if i % 10 == 0 else 40  # a camera frame every 100 ms among small events
        ring.push(t, bytes(size))
        most_items = max(most_items, len(ring))
        most_bytes = max(most_bytes, ring.bytes)
        assert ring.oldest is not None and ring.oldest >= t - 2.0
    assert most_bytes <= 50_000
    assert most_items <= 201
    assert ring.dropped > 0  # the byte bound did bite: 2 s of this stream is ~67 KB


def test_recorder_memory_is_flat_when_idle(tmp_path: Path) -> None:
    rig = Rig(tmp_path, pre_roll=1.0, pre_roll_bytes="20KB")
    sizes = []
    for i in range(20_000):
        rig.feed("image" if i % 5 == 0 else "temperature_control", 100 + i * 0.01, size=900)
        sizes.append((len(rig.recorder.policy.preroll), rig.recorder.policy.preroll.bytes))
    assert max(b for _, b in sizes) <= 20_000
    assert max(n for n, _ in sizes) <= 101
    assert not rig.recorder.segments


def test_pre_roll_byte_bound_evicts_oldest_first() -> None:
    ring = PreRoll(seconds=10.0, max_bytes=100)
    for i in range(5):
        ring.push(float(i), bytes(30))
    assert [t for t, _ in ring.take(0.0)] == [2.0, 3.0, 4.0]
    ring.push(5.0, bytes(500))  # larger than the whole budget: cannot be kept
    assert len(ring) == 0 and ring.bytes == 0


async def test_start_with_an_explicit_file_name(tmp_path: Path) -> None:
    rig = Rig(tmp_path, pre_roll=0, post_roll=1, max_segment_seconds=1.0)
    target = tmp_path / "elsewhere" / "log0.bin"
    assert await rig.recorder.start(pre_roll=False, path=target) == target
    rig.background(100.0, 101.5)
    await rig.recorder.stop()
    assert [Path(m.path).name for m in rig.recorder.segments] == ["log0.bin", "log0-2.bin"]
    rig.feed("electrode_state", 102.0)  # a later activity recording uses the templates again
    rig.recorder.close()
    assert Path(rig.recorder.segments[-1].path).parent == tmp_path / "rec"


async def test_start_with_an_exact_file_name(tmp_path: Path) -> None:
    rig = Rig(tmp_path, pre_roll=0, post_roll=1, max_segment_seconds=1.0)
    taken = tmp_path / "taken.bin"
    taken.write_bytes(b"precious")
    assert await rig.recorder.start(pre_roll=False, path=taken, exact=True) is None
    assert rig.recorder.state == "error" and "already exists" in (rig.recorder.last_error or "")
    assert taken.read_bytes() == b"precious"
    target = tmp_path / "log0.bin"
    assert await rig.recorder.start(pre_roll=False, path=target, exact=True) == target
    rig.background(100.0, 101.5)
    assert rig.recorder.records == 2  # the open (second) part: 101.0 and 101.5
    manifest = await rig.recorder.stop("done", extra={"note": 1})
    assert manifest is not None and manifest.extra["note"] == 1 and manifest.stop_reason == "done"
    names = [Path(m.path).name for m in rig.recorder.segments if m.stop_reason != "error"]
    assert names == ["log0.bin", "log0-2.bin"]  # rotated parts still get -2
    assert rig.recorder.records == 0


def test_segment_history_is_bounded_but_every_segment_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engine.recorder.recorder.SEGMENT_HISTORY", 2)
    rig = Rig(tmp_path, pre_roll=0, post_roll=10, max_segment_seconds=2.0)
    rig.feed("electrode_state", 100.0)
    rig.background(100.5, 105.0)
    rig.recorder.close()
    assert rig.recorder.seq == 3  # three files were written...
    assert [m.extra["part"] for m in rig.recorder.segments] == [2, 3]  # ...the last two kept
    assert len(list(tmp_path.rglob("*.bin"))) == 3
