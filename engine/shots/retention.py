"""Retention of shots: keep N days, at most N bytes, at least N bytes free; oldest go first.

The seed's users deleted old day folders by hand, or when the disk filled.
Here the pure planner (``engine.core.retention``) decides from a listing
(path, size, modification time), the time and the free space; this thin
executor lists the folder, deletes what the plan says, and removes folders
left empty. Only shot files (``patterns``) and stale temporaries are touched.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.retention import Deletion, FileEntry, plan_retention
from engine.shots.config import RetentionConfig
from engine.shots.paths import is_temp_name

EMPTY_DIR_GRACE = 60.0  # an empty folder this new may be about to receive a shot


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


def remove_empty_folders(root: Path, now: float, report: RetentionReport) -> None:
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
        remove_empty_folders(folder, now, report)
    return report
