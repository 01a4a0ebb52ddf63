"""``log repair``: make a damaged recording whole again without losing a byte.

What a crash or a full disk leaves behind, and what repair does about it:

- a last record cut short: its bytes are moved to ``NAME.bin.tail.bak`` (so
  nothing recorded is ever thrown away, and a later tool could salvage it),
  then the recording is truncated after its last complete record;
- an index that is missing, has a wrong header, points at wrong offsets or
  holds more or fewer entries than there are records: a new one is built in
  one streaming pass. Entries that were right keep their receive times; the
  others are estimated from the messages' own timestamps (as the reader
  does), and the manifest says how many in ``extra.times_estimated``. The
  old index is kept as ``NAME.bin.idx.bak`` (it may hold real times);
- a manifest that is missing, unreadable or out of date (a recorder that
  died between updates): rewritten from the records, keeping what it said
  about who recorded and why, with ``extra.repaired`` saying what was done.

Running it again on a repaired recording changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.logtools.errors import LogToolError
from engine.logtools.inputs import LogInput, Progress
from engine.recording.format import INDEX_ENTRY, INDEX_MAGIC, RECORD_HEADER
from engine.recording.reader import RecordingReader
from engine.recording.writer import Manifest, _atomic_write_text

# A file changed this recently, by a recorder that has not closed it, is
# probably still being written: repairing it would race the recorder.
BUSY_SECONDS = 5.0


@dataclass
class RepairReport:
    path: Path
    records: int = 0
    good_bytes: int = 0
    truncated_bytes: int = 0
    tail_backup: Path | None = None
    index_before: str = "valid"
    index_rebuilt: bool = False
    index_backup: Path | None = None
    estimated_times: int = 0
    manifest_before: str = "up to date"
    manifest_updated: bool = False
    manifest_backup: Path | None = None
    invalid: int = 0
    dry_run: bool = False
    actions: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.actions)


def _free_name(base: Path) -> Path:
    """``base``, or ``base`` with a number before ``.bak`` if that exists already."""
    if not base.exists():
        return base
    stem = base.name[: -len(".bak")] if base.name.endswith(".bak") else base.name
    n = 1
    while True:
        candidate = base.with_name(f"{stem}.{n}.bak")
        if not candidate.exists():
            return candidate
        n += 1


def _index_state(index_path: Path, records: int, problem: str | None) -> str:
    """``valid`` or what is wrong with the index, for a file of ``records`` records."""
    try:
        size = index_path.stat().st_size
    except FileNotFoundError:
        return "missing"
    if problem:
        return problem
    entries, partial = divmod(size - len(INDEX_MAGIC), INDEX_ENTRY.size)
    if size < len(INDEX_MAGIC):
        return "index has a wrong header"
    if entries != records or partial:
        more = f" and {partial} stray bytes" if partial else ""
        return f"index has {entries} entries{more} for {records} records"
    return "valid"


def repair(
    path: str | os.PathLike[str],
    now: float,
    *,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> RepairReport:
    """Repair the recording at ``path`` (see the module docstring); ``now`` is epoch seconds.

    A file-system failure (a read-only folder, a full disk) is a ``LogToolError``
    naming the file; what was there before is left as it was or kept as a backup.
    """
    try:
        return _repair(path, now, dry_run=dry_run, force=force, progress=progress)
    except OSError as exc:
        where = exc.filename or path
        raise LogToolError(f"{where}: cannot repair: {exc.strerror or exc}") from None


def _repair(
    path: str | os.PathLike[str],
    now: float,
    *,
    dry_run: bool,
    force: bool,
    progress: Progress | None,
) -> RepairReport:
    log = LogInput(path)
    if log.mcap is not None:
        raise LogToolError(
            f"{path}: is MCAP; repair fixes .bin recordings (`cuecap log convert {path} "
            "OUT.bin` keeps what an MCAP file holds)"
        )
    reader = log.reader
    assert isinstance(reader, RecordingReader)  # MCAP refused above
    report = RepairReport(path=log.path, dry_run=dry_run)
    manifest_data = log.manifest
    manifest_exists = reader.manifest_path.exists()
    if not force and not (manifest_data or {}).get("complete", True):
        age = now - log.path.stat().st_mtime
        if age < BUSY_SECONDS:
            raise LogToolError(
                f"{log.path}: changed {age:.1f} s ago and its manifest says it is not closed: "
                "is it still being recorded? Stop the recorder first, or use --force"
            )

    tmp_index = reader.index_path.with_name(reader.index_path.name + ".repairing")
    counts: Counter[str] = Counter()
    first_time: float | None = None
    last_time: float | None = None
    try:
        with open(tmp_index, "wb", buffering=1 << 20) as index:
            index.write(INDEX_MAGIC)
            offset = 0
            for frame in log.frames(progress=progress):
                index.write(INDEX_ENTRY.pack(offset, frame.time))
                offset += RECORD_HEADER.size + frame.size
                counts[frame.kind or "unknown"] += 1
                if first_time is None:
                    first_time = frame.time
                last_time = frame.time
        report.records = reader.records
        report.good_bytes = reader.bytes
        report.truncated_bytes = reader.truncated_bytes
        report.estimated_times = reader.estimated_times
        report.invalid = log.invalid
        report.index_before = _index_state(reader.index_path, reader.records, reader.index_problem)

        if report.index_before != "valid":
            report.index_rebuilt = True
            report.actions.append(f"index rebuilt ({report.index_before})")
            if report.estimated_times:
                report.actions.append(
                    f"{report.estimated_times} receive time(s) estimated from message timestamps"
                )
            if not dry_run:
                if reader.index_path.exists():
                    report.index_backup = _free_name(Path(f"{reader.index_path}.bak"))
                    shutil.copy2(reader.index_path, report.index_backup)
                os.replace(tmp_index, reader.index_path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_index.unlink()

    if report.truncated_bytes:
        report.tail_backup = _free_name(Path(f"{log.path}.tail.bak"))
        report.actions.append(
            f"cut-short last record removed ({report.truncated_bytes} bytes after byte "
            f"{report.good_bytes}, kept in {report.tail_backup.name})"
        )
        if not dry_run:
            _move_tail(log.path, report.good_bytes, report.tail_backup)

    manifest = _updated_manifest(log, manifest_data, counts, first_time, last_time, report)
    if manifest is not None:
        if not manifest_exists:
            report.manifest_before = "missing"
        elif manifest_data is None:
            report.manifest_before = "unreadable"
        else:
            report.manifest_before = "out of date"
        report.manifest_updated = True
        report.actions.append(f"manifest rewritten ({report.manifest_before})")
        if not dry_run:
            if manifest_exists and manifest_data is None:
                report.manifest_backup = _free_name(Path(f"{reader.manifest_path}.bak"))
                shutil.copy2(reader.manifest_path, report.manifest_backup)
            manifest.extra["repaired"] = {
                "at": now,
                "actions": list(report.actions),
                **({"tail_backup": report.tail_backup.name} if report.tail_backup else {}),
            }
            _atomic_write_text(reader.manifest_path, manifest.to_json())
    return report


def _move_tail(path: Path, keep: int, backup: Path) -> None:
    """Copy the bytes after ``keep`` to ``backup`` (synced to disk), then truncate."""
    with open(path, "r+b") as f:
        f.seek(keep)
        tail = f.read()
        with open(backup, "xb") as out:
            out.write(tail)
            out.flush()
            os.fsync(out.fileno())
        f.truncate(keep)


def _updated_manifest(
    log: LogInput,
    data: dict[str, Any] | None,
    counts: Counter[str],
    first_time: float | None,
    last_time: float | None,
    report: RepairReport,
) -> Manifest | None:
    """The manifest the repaired recording should have, or None if the current one is right."""
    if data is not None:
        try:
            manifest = Manifest.from_dict(data)
        except TypeError:
            data = None
    if data is None:
        manifest = Manifest(path=str(log.path), start_reason="unknown (rebuilt by log repair)")
    facts: dict[str, Any] = {
        "records": report.records,
        "bytes": report.good_bytes,
        "counts": dict(counts),
        "first_time": first_time,
        "last_time": last_time,
    }
    stale = data is None or not manifest.complete or report.changed
    stale = stale or any(getattr(manifest, k) != v for k, v in facts.items())
    if not stale:
        return None
    for key, value in facts.items():
        setattr(manifest, key, value)
    if report.index_rebuilt:
        if report.estimated_times:
            manifest.extra["times_estimated"] = report.estimated_times
        else:
            manifest.extra.pop("times_estimated", None)
    if not manifest.complete:
        manifest.complete = True
        manifest.stop_reason = manifest.stop_reason or "unknown (not closed; repaired)"
    if manifest.closed_at is None:
        manifest.closed_at = last_time
    return manifest
