"""Recordings get retention: keep N days and/or N bytes per recorder, oldest first, never the open one."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.core.clock import ManualClock
from engine.core.frame import Frame
from engine.core.retention import DAY
from engine.events import discard
from engine.recorder.config import RecorderConfig, RecordingRetention
from engine.recorder.recorder import Recorder
from engine.recorder.retention import apply, list_recordings, plan, scope
from engine.recording.format import companion_paths
from engine.recording.writer import RecordingWriter
from engine.rules.loader import load_rules

NOW = 1_800_000_000.0
RECORD = b"\x0a" + b"x" * 99  # 100 bytes per record


def recording(
    folder: Path, name: str, age_days: float, *, recorder: str = "moves", records: int = 10,
    close: bool = True,
) -> Path:  # fmt: skip
    path = folder / f"{name}.bin"
    start = NOW - age_days * DAY
    writer = RecordingWriter(path, recorder=recorder, source="sim", opened_at=start)
    for i in range(records):
        writer.write(RECORD, start + i)
    if close:
        writer.close("test", start + records)
    return path  # unclosed: its manifest says complete: false, as after a crash


def exists(path: Path) -> list[bool]:
    return [p.exists() for p in companion_paths(path)]


def test_keep_days_deletes_only_this_recorders_old_finished_recordings(tmp_path: Path) -> None:
    folder = tmp_path / "moves"
    old = [recording(folder / "2026-01-01", f"old{i}", 10 + i) for i in range(3)]
    new = recording(folder, "new", 0.5)
    other = recording(folder, "other", 30, recorder="heater")
    foreign = folder / "foreign.bin"
    foreign.write_bytes(b"not ours")
    report = apply(folder, "moves", RecordingRetention(keep_days=7), NOW, None)
    assert sorted(d.entry.path.name for d in report.deleted) == ["old0.bin", "old1.bin", "old2.bin"]
    assert all(exists(p) == [False, False, False] for p in old)  # .bin, .idx and .json together
    assert exists(new) == [True, True, True] and exists(other) == [True, True, True]
    assert foreign.exists()
    day = folder / "2026-01-01"
    assert day.is_dir()  # emptied just now: it may be about to get a segment
    os.utime(day, (time.time() - 120, time.time() - 120))  # a clean-up later (file system time)
    assert apply(folder, "moves", RecordingRetention(keep_days=7), NOW, None).folders_removed == 1
    assert not day.exists()
    assert report.freed == sum(d.entry.size for d in report.deleted) > 3 * 1000


def test_max_bytes_deletes_oldest_first_until_the_recorder_fits(tmp_path: Path) -> None:
    folder = tmp_path / "moves"
    paths = [recording(folder, f"r{i}", 5 - i) for i in range(5)]  # r0 oldest
    sizes = {p: e.size for e in list_recordings(folder, "moves", NOW, 600, None) for p in [e.path]}
    total = sum(sizes.values())
    limit = total - sizes[paths[0]] - sizes[paths[1]] // 2  # r0 and r1 must go
    report = apply(folder, "moves", RecordingRetention(max_bytes=limit), NOW, None)
    assert [d.entry.path for d in report.deleted] == paths[:2]
    assert [p.exists() for p in paths] == [False, False, True, True, True]


def test_never_the_segment_being_written_nor_a_recent_unfinished_one(tmp_path: Path) -> None:
    folder = tmp_path / "moves"
    writing = recording(folder, "writing", 20, close=False)
    other_process = recording(folder, "busy", 0.001, close=False)  # unfinished, 86 s old
    crashed = recording(folder, "crashed", 20, close=False)  # unfinished, long ago
    report = apply(folder, "moves", RecordingRetention(keep_days=1, interval=600), NOW, writing)
    assert [d.entry.path.name for d in report.deleted] == ["crashed.bin"]
    assert writing.exists() and other_process.exists() and not crashed.exists()
    assert apply(folder, "moves", RecordingRetention(max_bytes=1), NOW, writing).deleted == []


def test_scope_is_the_fixed_part_of_the_folder_template(tmp_path: Path) -> None:
    def config(folder: str) -> RecorderConfig:
        return RecorderConfig(folder=folder, retention={"keep_days": 1})  # type: ignore[arg-type]

    assert scope(tmp_path, "moves", config("{recorder}"), "sim") == tmp_path / "moves"
    assert scope(tmp_path, "m", config("lab/{source}/%Y-%m-%d"), "pd") == tmp_path / "lab" / "pd"
    assert scope(tmp_path, "m", config("%Y/{recorder}"), "pd") == tmp_path


def test_retention_needs_days_or_bytes_and_loads_from_a_rule_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="keep_days, max_bytes or min_free_bytes"):
        RecordingRetention()
    path = tmp_path / "r.yaml"
    path.write_text(
        "sources: {sim: {type: simulator}}\n"
        "recorders:\n  moves:\n    retention: {keep_days: 30, max_bytes: 50GiB, interval: 10min}\n",
        encoding="utf-8",
    )
    retention = load_rules([path], env={}).recorders["moves"].retention
    assert (retention.keep_days, retention.max_bytes, retention.interval) == (30, 50 * 2**30, 600)


def test_a_recorder_cleans_up_at_its_first_tick_and_every_interval(tmp_path: Path) -> None:
    old = recording(tmp_path / "moves", "old", 3)
    clock = ManualClock(NOW)
    config = RecorderConfig(retention={"keep_days": 2, "interval": 60})  # type: ignore[arg-type]
    recorder = Recorder("moves", config, root=tmp_path, emit=discard, clock=clock)
    asyncio.run(recorder.start(pre_roll=False))
    current = recorder.path
    assert current is not None
    recorder.feed(Frame(RECORD, NOW, 1, "sim"))
    recorder.tick(NOW)  # outside a loop: runs in place
    assert recorder.retention is not None and recorder.retention.runs == 1
    assert not old.exists() and current.exists()
    later = recording(tmp_path / "moves", "later", 2.5)
    clock.advance(30)
    recorder.tick(clock.time())
    assert later.exists()  # not yet: the next clean-up is 60 s after the first
    clock.advance(31)
    recorder.tick(clock.time())
    assert not later.exists() and current.exists() and recorder.retention.runs == 2
    recorder.close()
    manifest = json.loads(Path(f"{current}.json").read_text())
    assert manifest["complete"] and manifest["records"] == 1


async def test_inside_a_loop_the_clean_up_runs_on_a_worker_thread(tmp_path: Path) -> None:
    old = recording(tmp_path / "moves", "old", 3)
    config = RecorderConfig(retention={"keep_days": 2})  # type: ignore[arg-type]
    recorder = Recorder("moves", config, root=tmp_path, emit=discard, clock=ManualClock(NOW))
    recorder.tick(NOW)
    assert recorder.retention is not None and recorder.retention.running
    for _ in range(500):
        if not recorder.retention.running:
            break
        await asyncio.sleep(0.01)
    assert recorder.retention.runs == 1 and not old.exists()


def test_min_free_bytes_deletes_oldest_until_the_disk_has_room(tmp_path: Path) -> None:
    folder = tmp_path / "moves"
    paths = [recording(folder, f"r{i}", 5 - i) for i in range(4)]  # r0 oldest
    entries = list_recordings(folder, "moves", NOW, 600, None)
    size = entries[0].size
    config = RecordingRetention(min_free_bytes=10 * size)
    assert [d.entry.path for d in plan(entries, NOW, config, free_bytes=8 * size)] == paths[:2]
    assert plan(entries, NOW, config, free_bytes=10 * size) == []
    # on this disk: a bound above its size deletes all but the open segment, oldest first
    report = apply(folder, "moves", RecordingRetention(min_free_bytes=2**62), NOW, paths[-1])
    assert [d.entry.path for d in report.deleted] == paths[:-1] and paths[-1].exists()
