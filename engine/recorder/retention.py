"""Retention of recordings: keep N days and/or N bytes per recorder, oldest first.

A recorder that runs for months fills the disk; its users deleted old files
by hand. With ``retention:`` the recorder does it: at its first tick and then
every ``interval`` seconds of its clock, the recordings under its folder
whose manifest names it are listed (a recording is its ``.bin``, ``.idx`` and
``.json``, counted and deleted together) and the shared pure planner
(``engine.core.retention``) decides what goes: older than ``keep_days``, then
the oldest while the recorder's files exceed ``max_bytes``, then the oldest
while the disk has less than ``min_free_bytes`` free.

Ages come from the manifests (the time of the last record), which are in the
recorder's own clock, so a run in virtual time keeps what a live run would.
Never deleted: the segment being written, an unfinished recording newer than
one ``interval`` (another process may be writing it), anything without a
manifest naming this recorder (not ours to judge). The listing and the
deletions are blocking I/O, so they run on a worker thread when the recorder
runs inside an event loop; one clean-up at a time.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time as wall
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.core.retention import Deletion, FileEntry, plan_retention
from engine.recorder.config import RecorderConfig, RecordingRetention
from engine.recording.format import companion_paths, read_manifest, remove_recording
from engine.shots.retention import RetentionReport, remove_empty_folders

log = logging.getLogger(__name__)

MAX_LISTED = 100_000  # recordings looked at per clean-up: a bound on its time and memory


def scope(root: Path, name: str, config: RecorderConfig, source: str) -> Path:
    """The folder holding every file of this recorder: its folder template's fixed part."""
    folder = config.folder.replace("{recorder}", name).replace("{source}", source)
    fixed: list[str] = []
    for part in folder.strip().strip("/").split("/"):
        if not part or "{" in part or "%" in part:
            break
        fixed.append(part)
    return root.joinpath(*fixed)


def _manifest(path: Path) -> dict[str, Any] | None:
    return read_manifest(Path(f"{path}.json"))


def _size(path: Path) -> int:
    total = 0
    for part in companion_paths(path):
        try:
            total += part.stat().st_size
        except OSError:
            continue
    return total


def list_recordings(
    folder: Path, recorder: str, now: float, settle: float, writing: Path | None
) -> list[FileEntry]:
    """This recorder's finished recordings under ``folder``: path, bytes of all three files, time.

    ``time`` is the manifest's last record (else its close, else its opening).
    """
    out: list[FileEntry] = []
    if not folder.is_dir():
        return out
    paths = sorted([*folder.rglob("*.bin"), *folder.rglob("*.mcap")])  # format pdrecord or mcap
    for count, path in enumerate(paths):
        if count >= MAX_LISTED:
            log.warning("recorder %s retention: more than %d recordings", recorder, MAX_LISTED)
            break
        if writing is not None and path == writing:
            continue
        manifest = _manifest(path)
        if manifest is None or manifest.get("recorder") != recorder:
            continue
        times = [manifest.get(k) for k in ("last_time", "closed_at", "opened_at")]
        time = next((t for t in times if isinstance(t, int | float)), None)
        if time is None:
            continue
        if not manifest.get("complete") and now - time < settle:
            continue  # perhaps still being written, by us or another process
        out.append(FileEntry(path, _size(path), float(time)))
    return out


def plan(
    entries: list[FileEntry], now: float, config: RecordingRetention, free_bytes: int | None = None
) -> list[Deletion]:
    """What to delete, oldest first (pure); ``free_bytes``: the disk's free space now."""
    return plan_retention(
        entries,
        now,
        keep_days=config.keep_days,
        max_bytes=config.max_bytes,
        free_bytes=free_bytes,
        min_free_bytes=config.min_free_bytes,
    )


def apply(
    folder: Path,
    recorder: str,
    config: RecordingRetention,
    now: float,
    writing: Path | None,
) -> RetentionReport:
    """List, plan, delete; remove folders left empty (blocking: run it on a worker thread)."""
    report = RetentionReport()
    entries = list_recordings(folder, recorder, now, config.interval, writing)
    free = None
    if config.min_free_bytes is not None and folder.is_dir():
        free = shutil.disk_usage(folder).free
    for deletion in plan(entries, now, config, free):
        try:
            remove_recording(deletion.entry.path)
        except OSError as exc:
            report.errors.append(f"{deletion.entry.path}: {exc.strerror or exc}")
            continue
        report.deleted.append(deletion)
        report.freed += deletion.entry.size
    if folder.is_dir():
        # Folder times are the file system's: an empty folder younger than a minute may be
        # about to receive the next segment, and one emptied just now goes at the next run.
        remove_empty_folders(folder, wall.time(), report)
    return report


class RetentionTimer:
    """Runs ``apply`` for one recorder at its first tick and every ``interval`` after."""

    def __init__(
        self,
        recorder: str,
        folder: Path,
        config: RecordingRetention,
        report: Callable[[RetentionReport], None] | None = None,
    ) -> None:
        self.recorder = recorder
        self.folder = folder
        self.config = config
        self.next_at: float | None = None
        self.running = False
        self.runs = 0
        self.last: RetentionReport | None = None
        self._report = report

    def tick(self, now: float, writing: Path | None) -> None:
        if self.running or (self.next_at is not None and now < self.next_at):
            return
        self.next_at = now + self.config.interval
        self.running = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._done(apply(self.folder, self.recorder, self.config, now, writing))
            return
        future = loop.run_in_executor(
            None, apply, self.folder, self.recorder, self.config, now, writing
        )
        future.add_done_callback(self._finished)

    def _finished(self, future: asyncio.Future[RetentionReport]) -> None:
        if future.cancelled():
            self.running = False
            return
        error = future.exception()
        if error is not None:
            self.running = False
            log.error("recorder %s retention failed: %s", self.recorder, error)
            return
        self._done(future.result())

    def _done(self, report: RetentionReport) -> None:
        self.running = False
        self.runs += 1
        self.last = report
        if report.deleted or report.errors:
            log.info("recorder %s retention: %s", self.recorder, report.summary())
        if self._report is not None:
            self._report(report)


def timer_for(name: str, config: RecorderConfig, root: Path, source: str) -> RetentionTimer | None:
    if config.retention is None:
        return None
    return RetentionTimer(name, scope(root, name, config, source), config.retention)
