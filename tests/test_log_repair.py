"""``log repair``: cut-short tails, lost indexes, stale manifests; nothing recorded is lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import CliRun
from logfixtures import T0, session, write_recording

from engine.logtools.errors import LogToolError
from engine.logtools.repair import repair
from engine.recording.format import INDEX_ENTRY, INDEX_MAGIC, index_path, manifest_path
from engine.recording.reader import RecordingReader, read_frames
from engine.recording.writer import RecordingWriter

NOW = T0 + 86_400.0


@pytest.fixture(scope="module")
def records() -> list[tuple[float, bytes]]:
    return session(3.0)


@pytest.fixture
def rec(tmp_path: Path, records: list[tuple[float, bytes]]) -> Path:
    return write_recording(tmp_path / "a.bin", records)


def test_cut_short_tail_is_kept_aside_and_removed(
    rec: Path, records: list[tuple[float, bytes]]
) -> None:
    good = rec.read_bytes()
    tail = len(records[-1][1]).to_bytes(4, "little") + records[-1][1][:5]
    with open(rec, "ab") as f:
        f.write(tail)
    index_before = index_path(rec).read_bytes()
    report = repair(rec, NOW)
    assert report.truncated_bytes == len(tail)
    assert rec.read_bytes() == good
    assert report.tail_backup == Path(f"{rec}.tail.bak")
    assert report.tail_backup.read_bytes() == tail
    assert not report.index_rebuilt  # the index was right for the complete records
    assert index_path(rec).read_bytes() == index_before
    manifest = json.loads(manifest_path(rec).read_text())
    assert manifest["extra"]["repaired"]["tail_backup"] == "a.bin.tail.bak"
    assert manifest["records"] == len(records)
    assert "times_estimated" not in manifest["extra"]
    reader = RecordingReader(rec)
    assert [f.raw for f in reader] == [raw for _, raw in records]
    assert reader.truncated_bytes == 0


def test_missing_index_is_rebuilt_from_message_timestamps(
    cuecap: CliRun, rec: Path, records: list[tuple[float, bytes]]
) -> None:
    index_path(rec).unlink()
    code, _, err = cuecap("log", "repair", rec)
    assert code == 0, err
    assert "index rebuilt (missing)" in err
    assert f"{len(records)} receive time(s) estimated" in err
    manifest = json.loads(manifest_path(rec).read_text())
    assert manifest["extra"]["times_estimated"] == len(records)
    reader = RecordingReader(rec)
    frames = list(reader)
    assert reader.estimated_times == 0  # the index is back
    assert len(frames) == len(records)
    for frame, (t, _) in zip(frames, records, strict=True):
        assert frame.time <= t  # server timestamps are a little before receive times
        assert t - frame.time < 0.05


def test_index_with_wrong_entries_is_rebuilt_and_the_old_one_kept(
    rec: Path, records: list[tuple[float, bytes]]
) -> None:
    data = bytearray(index_path(rec).read_bytes())
    entry = len(INDEX_MAGIC) + 10 * INDEX_ENTRY.size
    data[entry : entry + 8] = (999_999).to_bytes(8, "little")  # entry 10 points nowhere
    index_path(rec).write_bytes(bytes(data))
    report = repair(rec, NOW)
    assert report.index_rebuilt
    assert report.index_backup is not None
    assert report.index_backup.read_bytes() == bytes(data)
    frames = read_frames(rec)
    assert [f.time for f in frames[:10]] == [
        t for t, _ in records[:10]
    ]  # good entries keep their times
    assert report.estimated_times == len(records) - 10


def test_stale_manifest_of_a_crashed_recorder_is_completed(
    cuecap: CliRun, tmp_path: Path, records: list[tuple[float, bytes]]
) -> None:
    live = tmp_path / "live.bin"
    writer = RecordingWriter(
        live, recorder="lab", source="ws://x", opened_at=T0, start_reason="activity"
    )
    for t, raw in records:
        writer.write(raw, t)
    writer.flush()
    path = tmp_path / "crash.bin"  # what a crash here leaves: the manifest says 0 records, open
    for src, dst in zip(
        (live, index_path(live), manifest_path(live)),
        (path, index_path(path), manifest_path(path)),
        strict=True,
    ):
        shutil.copyfile(src, dst)
    writer.close()
    code, _, err = cuecap("log", "repair", path, "--force")
    assert code == 0, err
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["records"] == len(records)
    assert manifest["complete"] is True
    assert manifest["recorder"] == "lab"
    assert manifest["start_reason"] == "activity"
    assert manifest["stop_reason"].startswith("unknown")
    assert manifest["last_time"] == records[-1][0]


def test_recording_still_being_written_is_left_alone(
    tmp_path: Path, records: list[tuple[float, bytes]]
) -> None:
    path = tmp_path / "live.bin"
    writer = RecordingWriter(path, opened_at=T0)
    writer.write(records[0][1], records[0][0])
    writer.flush()
    with pytest.raises(LogToolError, match="still being recorded"):
        repair(path, now=path.stat().st_mtime + 1.0)
    writer.close()


def test_repair_twice_changes_nothing(cuecap: CliRun, rec: Path) -> None:
    with open(rec, "ab") as f:
        f.write(b"\x01\x02")
    index_path(rec).unlink()
    assert repair(rec, NOW).changed
    before = {p: p.read_bytes() for p in rec.parent.iterdir()}
    second = repair(rec, NOW + 1)
    assert not second.changed
    assert {p: p.read_bytes() for p in rec.parent.iterdir()} == before
    code, _, err = cuecap("log", "repair", rec)
    assert code == 0
    assert "nothing to repair" in err


def test_dry_run_touches_nothing(cuecap: CliRun, rec: Path) -> None:
    with open(rec, "ab") as f:
        f.write(b"\x01\x02\x03")
    index_path(rec).unlink()
    before = {p: p.read_bytes() for p in rec.parent.iterdir()}
    code, _, err = cuecap("log", "repair", rec, "--dry-run")
    assert code == 0
    assert "would be done" in err
    assert "cut-short last record removed (3 bytes" in err
    assert {p: p.read_bytes() for p in rec.parent.iterdir()} == before


def test_plain_pdrecord_file_gets_index_and_manifest(
    tmp_path: Path, records: list[tuple[float, bytes]]
) -> None:
    path = tmp_path / "pd.bin"
    path.write_bytes(b"".join(len(raw).to_bytes(4, "little") + raw for _, raw in records))
    report = repair(path, NOW)
    assert report.index_before == "missing"
    assert report.manifest_before == "missing"
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["records"] == len(records)
    assert manifest["extra"]["times_estimated"] == len(records)
    assert len(read_frames(path)) == len(records)


def test_second_tail_backup_does_not_replace_the_first(rec: Path) -> None:
    with open(rec, "ab") as f:
        f.write(b"\x09")
    repair(rec, NOW)
    with open(rec, "ab") as f:
        f.write(b"\x08\x07")
    report = repair(rec, NOW)
    assert Path(f"{rec}.tail.bak").read_bytes() == b"\x09"
    assert report.tail_backup is not None
    assert report.tail_backup.name == "a.bin.tail.1.bak"
    assert report.tail_backup.read_bytes() == b"\x08\x07"


def test_a_file_system_failure_is_a_clear_error_and_changes_nothing(
    cuecap: CliRun, rec: Path
) -> None:
    index_path(rec).unlink()  # something to repair
    blocker = Path(f"{index_path(rec)}.repairing")
    blocker.mkdir()  # the temporary index cannot be written
    before = rec.read_bytes()
    code, _, err = cuecap("log", "repair", rec)
    assert code == 2
    assert f"cuecap: error: {blocker}: cannot repair:" in err
    assert rec.read_bytes() == before and not index_path(rec).exists()
