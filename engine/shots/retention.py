"""Retention: keep N days, at most N bytes, at least N bytes free; oldest go first.

The seed's users deleted old day folders by hand, or when the disk filled.
Here a pure planner decides from a listing (path, size, modification time),
the time and the free space, so every rule is testable without a disk; a thin
executor lists the folder, deletes what the plan says, and removes folders
left empty. Only shot files (``patterns``) and stale temporaries are touched.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.shots.config import RetentionConfig
from engine.shots.paths import is_temp_name

DAY = 86400.0
STALE_TEMP = 3600.0  # a temporary this old belongs to no running shot
EMPTY_DIR_GRACE = 60.0  # an empty folder this new may be about to receive a shot


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: Path
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class Deletion:
    entry: FileEntry
    reason: str


def plan_retention(
    files: Iterable[FileEntry],
    now: float,
    *,
    keep_days: float | None = None,
    max_bytes: int | None = None,
    free_bytes: int | None = None,
    min_free_bytes: int | None = None,
    temporaries: Iterable[FileEntry] = (),
) -> list[Deletion]:
    """What to delete, oldest first, and why."""
    plan = [Deletion(t, "stale temporary") for t in temporaries if now - t.mtime >= STALE_TEMP]
    ordered = sorted(files, key=lambda e: (e.mtime, str(e.path)))
    kept: list[FileEntry] = []
    if keep_days is not None:
        cutoff = now - keep_days * DAY
        for entry in ordered:
            if entry.mtime < cutoff:
                plan.append(Deletion(entry, f"older than {keep_days:g} days"))
            else:
                kept.append(entry)
    else:
        kept = ordered
    total = sum(e.size for e in kept)
    freed = sum(d.entry.size for d in plan)
    start = 0
    if max_bytes is not None:
        while start < len(kept) and total > max_bytes:
            entry = kept[start]
            plan.append(Deletion(entry, f"folder over {max_bytes} bytes"))
            total -= entry.size
            freed += entry.size
            start += 1
    if min_free_bytes is not None and free_bytes is not None:
        while start < len(kept) and free_bytes + freed < min_free_bytes:
            entry = kept[start]
            plan.append(Deletion(entry, f"less than {min_free_bytes} bytes free"))
            freed += entry.size
            start += 1
    return plan


def _matches(name: str, patterns: Sequence[str]) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)


def list_folder(root: Path, patterns: Sequence[str]) -> tuple[list[FileEntry], list[FileEntry]]:
    """Shot files matching ``patterns`` and leftover temporaries under ``root``."""
    files: list[FileEntry] = []
    temps: list[FileEntry] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                if is_temp_name(entry.name):
                    target = temps
                elif _matches(entry.name, patterns):
                    target = files
                else:
                    continue
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            target.append(FileEntry(Path(entry.path), st.st_size, st.st_mtime))
    return files, temps


@dataclass
class RetentionReport:
    deleted: list[Deletion] = field(default_factory=list)
    freed: int = 0
    folders_removed: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"deleted {len(self.deleted)} files ({self.freed} bytes)"
        if self.folders_removed:
            text += f", {self.folders_removed} empty folders"
        if self.errors:
            text += f"; {len(self.errors)} errors, first: {self.errors[0]}"
        return text


def _remove_empty_folders(root: Path, now: float, report: RetentionReport) -> None:
    for folder, _dirs, _files in os.walk(root, topdown=False):
        path = Path(folder)
        if path == root:
            continue
        try:
            if not any(path.iterdir()) and now - path.stat().st_mtime >= EMPTY_DIR_GRACE:
                path.rmdir()
                report.folders_removed += 1
        except OSError:
            continue  # in use or just filled: next time


def apply_retention(
    root: str | os.PathLike[str], config: RetentionConfig, now: float, *, dry_run: bool = False
) -> RetentionReport:
    """Apply ``config`` to the shots under ``root`` (blocking: run it on a worker thread)."""
    folder = Path(root).expanduser()
    report = RetentionReport()
    if not folder.is_dir():
        return report
    files, temps = list_folder(folder, config.patterns)
    free = shutil.disk_usage(folder).free if config.min_free_bytes is not None else None
    plan = plan_retention(
        files,
        now,
        keep_days=config.keep_days,
        max_bytes=config.max_bytes,
        free_bytes=free,
        min_free_bytes=config.min_free_bytes,
        temporaries=temps,
    )
    for deletion in plan:
        if not dry_run:
            try:
                deletion.entry.path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                report.errors.append(f"{deletion.entry.path}: {exc.strerror or exc}")
                continue
        report.deleted.append(deletion)
        report.freed += deletion.entry.size
    if not dry_run:
        _remove_empty_folders(folder, now, report)
    return report
