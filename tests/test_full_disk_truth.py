"""A full disk on real file systems: figures tell the truth, nothing litters, recording resumes.

Two kinds of full: a small tmpfs really running out of space (needs root, to
mount it), and the process's file-size limit (``full_disk_after``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from full_disk import can_mount, fill, full_disk_after, small_file_system
from test_recorder import Rig

from engine.cli.main import main
from engine.events import RecordingErrored, RecordingStopped
from engine.recording.format import INDEX_ENTRY, INDEX_MAGIC, index_path, manifest_path
from engine.recording.reader import RecordingReader
from engine.recording.writer import RecordingWriter

IMAGE = 20_000


class Disk:
    """Somewhere to record that runs out of space, and a way to give space back."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.stack = contextlib.ExitStack()
        self.root = tmp_path / "fs"
        self.filler: Path | None = None

    def __enter__(self) -> Disk:
        if self.kind == "tmpfs":
            if not can_mount():
                pytest.skip("mounting a small tmpfs needs root; the file-size limit case runs")
            self.stack.enter_context(small_file_system(self.root, 1024 * 1024))
            self.filler = fill(self.root, leave=300_000)
        else:
            self.root.mkdir()
            self.stack.enter_context(full_disk_after(256 * 1024))
        return self

    def free(self) -> None:
        if self.filler is not None:
            self.filler.unlink()
            self.filler = None
        else:
            self.stack.close()  # the size limit is lifted

    def __exit__(self, *exc: object) -> None:
        self.stack.close()


@pytest.fixture(params=["tmpfs", "file-size-limit"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Disk]:
    with Disk(request.param, tmp_path) as d:
        yield d


def fill_up(rig: Rig, t: float = 100.0) -> float:
    rig.feed("electrode_state", t)
    for _ in range(200):
        t += 0.1
        rig.feed("image", t, size=IMAGE)
        if rig.recorder.state == "error":
            return t
    raise AssertionError("the disk never filled up")


def assert_truthful(path: Path, rig: Rig) -> None:
    """Every figure about ``path`` is what the disk holds, and tools read it as it is."""
    (manifest,) = [m for m in rig.recorder.segments if m.path == str(path)]
    reader = RecordingReader(path)
    frames = list(reader)
    assert manifest.complete and manifest.stop_reason == "error"
    assert "error" in manifest.extra
    assert len(frames) == manifest.records > 0
    assert reader.truncated_bytes == 0
    assert manifest.bytes == reader.bytes == path.stat().st_size
    assert reader.index_problem is None and reader.estimated_times == 0
    assert index_path(path).stat().st_size == len(INDEX_MAGIC) + INDEX_ENTRY.size * len(frames)
    on_disk = reader.manifest
    assert on_disk is not None and on_disk["records"] == len(frames) and on_disk["complete"]
    assert on_disk["counts"] == {"electrode_state": 1, "image": len(frames) - 1}
    (stopped,) = [e for e in rig.events if isinstance(e, RecordingStopped) and e.path == str(path)]
    assert stopped.records == len(frames) and stopped.bytes == manifest.bytes
    assert [e for e in rig.events if isinstance(e, RecordingErrored)]
    assert not list(path.parent.glob("*.tmp"))
    result = CliRunner().invoke(main, ["log", "info", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "truncated   none" in result.stdout


def test_after_a_failed_write_the_figures_are_what_the_disk_holds(disk: Disk) -> None:
    rig = Rig(disk.root, pre_roll=0, post_roll=100, flush_interval=0.01, retry_after=5)
    fill_up(rig)
    assert rig.recorder.state == "error"
    assert_truthful(disk.root / "rec" / "1.bin", rig)


def test_the_recorder_records_again_once_space_returns(disk: Disk) -> None:
    rig = Rig(disk.root, pre_roll=0, post_roll=100, flush_interval=0.01, retry_after=5)
    t = fill_up(rig)
    first = disk.root / "rec" / "1.bin"
    disk.free()
    t += 5
    rig.recorder.tick(t)
    assert rig.recorder.state == "idle"
    rig.feed("electrode_state", t + 0.1)
    assert rig.recorder.state == "recording"
    for i in range(5):
        rig.feed("image", t + 0.2 + i * 0.1, size=IMAGE)
    path = rig.recorder.path
    assert path is not None
    rig.recorder.close()
    assert len(list(RecordingReader(path))) == 6
    assert_truthful(first, rig)  # the failed one is still as it was


async def test_the_retry_timer_resumes_by_itself(tmp_path: Path) -> None:
    with Disk("tmpfs", tmp_path) as disk:
        rig = Rig(disk.root, pre_roll=0, post_roll=100, flush_interval=0.01, retry_after=0.05)
        t = fill_up(rig)
        disk.free()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if rig.recorder.state == "idle":
                break
        assert rig.recorder.state == "idle"
        rig.feed("electrode_state", t + 1)
        assert rig.recorder.state == "recording"
        rig.recorder.close()


def test_a_recording_that_cannot_be_created_leaves_no_files(tmp_path: Path) -> None:
    with Disk("tmpfs", tmp_path) as disk:
        fill(disk.root)  # not a byte left
        with pytest.raises(OSError, match="cannot create recording"):
            RecordingWriter(disk.root / "x.bin")
        assert sorted(p.name for p in disk.root.iterdir()) == ["filler"]


def test_the_manifest_is_finished_in_place_when_no_temporary_fits(tmp_path: Path) -> None:
    with Disk("tmpfs", tmp_path) as disk:
        writer = RecordingWriter(disk.root / "x.bin", opened_at=1.0)
        writer.write(b"\x1a\x02ab", 1.0)
        writer.flush(1.0)
        fill(disk.root)
        manifest = writer.close("done", 2.0)
        assert manifest.records == 1
        assert not list(disk.root.glob("*.tmp"))
        on_disk = RecordingReader(disk.root / "x.bin").manifest
        assert on_disk is not None and on_disk["complete"] and on_disk["stop_reason"] == "done"
        assert os.path.getsize(manifest_path(disk.root / "x.bin")) > 0


def test_what_a_failure_would_check_stays_bounded_with_a_long_flush_interval(
    tmp_path: Path,
) -> None:
    from engine.recording import writer as writer_module

    writer = RecordingWriter(tmp_path / "x.bin", opened_at=0.0, flush_interval=3600.0)
    most = 0
    for i in range(150_000):
        writer.write(b"\x1a\x00", i * 1e-4)
        most = max(most, len(writer._pending) // INDEX_ENTRY.size)
    writer.close("done", 20.0)
    assert most <= writer_module._MAX_PENDING // INDEX_ENTRY.size
    assert len(list(RecordingReader(tmp_path / "x.bin"))) == 150_000
