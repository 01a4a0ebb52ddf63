"""Retention, decided: keep N days, at most N bytes, at least N bytes free; oldest go first.

The pure planner that shots and recordings share: it decides from a listing
(path, size, time), the time now and the free space, so every rule is
testable without a disk. The drivers (``engine.shots.retention``,
``engine.recorder.retention``) list their folders and delete what it says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DAY = 86400.0
STALE_TEMP = 3600.0  # a temporary this old belongs to no running shot


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
