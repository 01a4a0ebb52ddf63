"""Retention: a pure planner (age, size, free space; oldest first) and its executor."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from engine.core.clock import ManualClock
from engine.core.retention import DAY, FileEntry
from engine.shots import RetentionConfig, ShotsConfig, ShotService, apply_retention, plan_retention

NOW = 1_800_000_000.0


def entries(*specs: tuple[str, int, float]) -> list[FileEntry]:
    return [FileEntry(Path(name), size, NOW - age_days * DAY) for name, size, age_days in specs]


def names(plan: list) -> list[str]:
    return [str(d.entry.path) for d in plan]


def test_keep_days_deletes_only_older_files() -> None:
    files = entries(("new.jpg", 10, 0.5), ("old.jpg", 10, 8), ("edge.jpg", 10, 6.99))
    plan = plan_retention(files, NOW, keep_days=7)
    assert names(plan) == ["old.jpg"] and plan[0].reason == "older than 7 days"


def test_max_bytes_deletes_oldest_first_until_under() -> None:
    files = entries(("c.jpg", 40, 1), ("a.jpg", 40, 3), ("b.jpg", 40, 2))
    assert names(plan_retention(files, NOW, max_bytes=80)) == ["a.jpg"]
    assert names(plan_retention(files, NOW, max_bytes=79)) == ["a.jpg", "b.jpg"]
    assert plan_retention(files, NOW, max_bytes=120) == []


def test_age_then_size_then_free_space_combine() -> None:
    files = entries(("d1.jpg", 50, 10), ("d2.jpg", 50, 3), ("d3.jpg", 50, 2), ("d4.jpg", 50, 1))
    plan = plan_retention(files, NOW, keep_days=7, max_bytes=100, free_bytes=0, min_free_bytes=150)
    assert names(plan) == ["d1.jpg", "d2.jpg", "d3.jpg"]
    assert [d.reason.split()[0] for d in plan] == ["older", "folder", "less"]


def test_stale_temporaries_go_fresh_ones_stay() -> None:
    temps = [
        FileEntry(Path(".a.jpg.x.part"), 5, NOW - 7200),
        FileEntry(Path(".b.jpg.y.part"), 5, NOW - 10),
    ]
    plan = plan_retention([], NOW, keep_days=1, temporaries=temps)
    assert names(plan) == [".a.jpg.x.part"]


def _make(path: Path, size: int, age_days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    t = NOW - age_days * DAY
    os.utime(path, (t, t))
    return path


def test_executor_deletes_plan_and_empty_day_folders_only(tmp_path: Path) -> None:
    old = _make(tmp_path / "srv" / "2026.01.01" / "cam" / "a.jpg", 100, 30)
    keep = _make(tmp_path / "srv" / "2026.02.01" / "cam" / "b.JPG", 100, 1)
    other = _make(tmp_path / "srv" / "2026.01.01" / "notes.txt", 5, 30)
    empty_day = old.parent
    fresh = tmp_path / "srv" / "2026.03.01"
    fresh.mkdir()
    report = apply_retention(tmp_path, RetentionConfig(keep_days=7), NOW)
    assert not old.exists() and keep.exists() and other.exists()
    assert len(report.deleted) == 1 and report.freed == 100
    assert not empty_day.exists() and other.parent.exists() and report.folders_removed == 2
    just_made = tmp_path / "new-day"
    just_made.mkdir()
    apply_retention(tmp_path, RetentionConfig(keep_days=7), just_made.stat().st_mtime + 1)
    assert just_made.exists()  # may be about to receive a shot
    assert "deleted 1 files (100 bytes)" in report.summary()


def test_dry_run_changes_nothing_and_missing_folder_is_fine(tmp_path: Path) -> None:
    f = _make(tmp_path / "a.jpg", 10, 30)
    report = apply_retention(tmp_path, RetentionConfig(keep_days=1), NOW, dry_run=True)
    assert f.exists() and len(report.deleted) == 1
    assert apply_retention(tmp_path / "nope", RetentionConfig(keep_days=1), NOW).deleted == []


def test_min_free_bytes_uses_the_disk(tmp_path: Path) -> None:
    a = _make(tmp_path / "a.jpg", 10, 2)
    b = _make(tmp_path / "b.jpg", 10, 1)
    huge = RetentionConfig(min_free_bytes=2**62)  # no disk has this much free: delete everything
    report = apply_retention(tmp_path, huge, NOW)
    assert not a.exists() and not b.exists()
    assert [d.entry.path.name for d in report.deleted] == ["a.jpg", "b.jpg"]


async def test_service_applies_retention_at_start(tmp_path: Path) -> None:
    old = _make(tmp_path / "old.jpg", 10, 30)
    settings = ShotsConfig(folder=str(tmp_path), retention={"keep_days": 1, "interval": 3600})
    service = ShotService({}, settings, clock=ManualClock(NOW))
    await service.start()
    for _ in range(200):
        if not old.exists():
            break
        await asyncio.sleep(0.005)
    await service.aclose()
    assert not old.exists()


def test_retention_config_needs_a_limit() -> None:
    with pytest.raises(ValueError, match="retention needs"):
        RetentionConfig()
