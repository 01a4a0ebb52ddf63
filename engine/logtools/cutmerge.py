"""``log cut`` and ``log merge``: new recordings from parts of old ones.

Both copy records byte for byte with their receive times through the
ordinary ``RecordingWriter``, so the outputs have an index and a manifest
like any recording, and PurpleDrop's reader still reads them. Ranges are
half-open, so cutting a recording at the same time twice and merging the
pieces gives back a byte-identical ``.bin`` with the same index times.

Manifests only state facts the tool knows: a cut keeps the gaps inside its
range and the activity span only when that span lies wholly inside (what
happened between the first and last activity is not in the manifest); a
merge takes the union of the inputs' gaps and the outer activity span.
"""

from __future__ import annotations

import contextlib
import heapq
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.core.frame import Frame
from engine.core.schema import PURPLEDROP, Schema
from engine.logtools.errors import LogToolError
from engine.logtools.inputs import LogInput, Progress
from engine.logtools.timerange import TimeRange
from engine.recording.format import RecordingError, companion_paths
from engine.recording.writer import Manifest, RecordingWriter


def _remove_outputs(path: Path) -> None:
    for p in companion_paths(path):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _refuse_existing(out: Path) -> None:
    for p in companion_paths(out):
        if p.exists():
            raise LogToolError(
                f"{p}: already exists; refusing to overwrite (choose another -o, or -f/--force)"
            )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class _Output:
    """A ``RecordingWriter`` that removes its files if the copy does not finish."""

    def __init__(
        self, out: Path, manifest: Manifest, force: bool = False, schema: Schema = PURPLEDROP
    ) -> None:
        if force:
            _remove_outputs(out)  # -f/--force: replace, as every other output of cuecap log
        _refuse_existing(out)
        self.out = out
        try:
            self.writer = RecordingWriter(
                out,
                recorder=manifest.recorder,
                source=manifest.source,
                opened_at=manifest.opened_at,
                start_reason=manifest.start_reason,
                extra=manifest.extra,
                schema=schema,
            )
        except RecordingError as exc:
            raise LogToolError(str(exc)) from None
        self.estimated = 0

    def copy(self, frames: Iterator[Frame]) -> None:
        write = self.writer.write
        for frame in frames:
            write(frame.raw, frame.time)

    def finish(self, manifest: Manifest) -> Manifest:
        writer = self.writer
        m = writer.manifest
        m.gaps = [dict(g) for g in manifest.gaps]
        m.first_activity, m.last_activity = manifest.first_activity, manifest.last_activity
        if self.estimated:
            m.extra["times_estimated"] = self.estimated
        if m.opened_at is None:
            m.opened_at = m.first_time
        return writer.close(stop_reason=manifest.stop_reason, closed_at=m.last_time)

    def abort(self) -> None:
        with contextlib.suppress(RecordingError):
            self.writer.close(stop_reason="aborted")
        _remove_outputs(self.out)


def _source_manifest(log: LogInput) -> dict[str, Any]:
    return log.manifest or {}


def cut(
    log: LogInput,
    out: str | os.PathLike[str],
    time_range: TimeRange,
    progress: Progress | None = None,
    force: bool = False,
) -> Manifest:
    """Copy the records of ``log`` received in ``time_range`` to a new recording ``out``.

    ``force`` replaces an existing ``out`` (and its index and manifest).
    """
    out = Path(out)
    if _same_file(log.path, out):
        raise LogToolError(f"{out}: is the input; write the cut to another file")
    source = _source_manifest(log)
    plan = Manifest(
        path=str(out),
        recorder=str(source.get("recorder") or ""),
        source=str(source.get("source") or ""),
        start_reason=f"cut from {log.path.name}",
        stop_reason="end of cut",
        extra={
            **(source.get("extra") or {}),
            "cut": {"from": str(log.path), "start": time_range.start, "end": time_range.end},
        },
    )
    plan.extra.pop("times_estimated", None)
    output = _Output(out, plan, force, log.schema)
    try:
        output.copy(log.frames(time_range=time_range, progress=progress))
        output.estimated = log.estimated_times
        m = output.writer.manifest
        if m.records == 0:
            raise LogToolError(
                f"{log.path}: no records in {log.describe(time_range)}; nothing to cut"
            )
        if m.first_time is not None and m.last_time is not None:
            plan.gaps = _gaps_within(source.get("gaps") or [], m.first_time, m.last_time)
            first, last = source.get("first_activity"), source.get("last_activity")
            if (
                first is not None
                and last is not None
                and first in time_range
                and last in time_range
            ):
                plan.first_activity, plan.last_activity = first, last
        return output.finish(plan)
    except BaseException:
        output.abort()
        raise


def _gaps_within(gaps: Sequence[dict[str, Any]], first: float, last: float) -> list[dict[str, Any]]:
    """Gaps that lie between the first and last record kept (a gap sits between two records)."""
    return [
        dict(g)
        for g in gaps
        if isinstance(g.get("start"), int | float) and first <= g["start"] and g["end"] <= last
    ]


def merge(
    logs: Sequence[LogInput],
    out: str | os.PathLike[str],
    interleave: bool = False,
    progress: Progress | None = None,
    force: bool = False,
) -> Manifest:
    """Join recordings into ``out``, in receive-time order; ``force`` replaces ``out``.

    Without ``interleave``, the inputs must not overlap in time: they are
    concatenated, earliest first (whatever order they were given in). With
    it, their records are merged one by one by receive time (on equal times,
    the input that starts first goes first).
    """
    out = Path(out)
    if not logs:
        raise LogToolError("merge needs at least one recording")
    for log in logs:
        if _same_file(log.path, out):
            raise LogToolError(f"{out}: is one of the inputs; write the merge to another file")
    present = [log for log in logs if log.first_time() is not None]
    if not present:
        raise LogToolError("all inputs are empty; nothing to merge")
    order = sorted(present, key=lambda log: log.first_time() or 0.0)  # never None in present
    manifests = [_source_manifest(log) for log in order]
    plan = Manifest(
        path=str(out),
        recorder=_common(m.get("recorder") for m in manifests),
        source=_common(m.get("source") for m in manifests),
        start_reason="merge of " + ", ".join(log.path.name for log in order),
        stop_reason="end of merge",
        extra={"merged_from": [str(log.path) for log in order], "interleaved": interleave},
    )
    plan.gaps = sorted(
        (dict(g) for m in manifests for g in (m.get("gaps") or [])), key=lambda g: g.get("start", 0)
    )
    firsts = [m["first_activity"] for m in manifests if m.get("first_activity") is not None]
    lasts = [m["last_activity"] for m in manifests if m.get("last_activity") is not None]
    if firsts and lasts:
        plan.first_activity, plan.last_activity = min(firsts), max(lasts)
    total = sum(log.size for log in order)
    schema = order[0].schema
    for log in order[1:]:
        if not log.schema.same_as(schema):
            raise LogToolError(
                f"{log.path} holds {log.schema.name} messages, {order[0].path} "
                f"{schema.name}: recordings of different schemas do not merge"
            )
    output = _Output(out, plan, force, schema)
    try:
        if interleave:
            output.copy(_interleaved(order, _offset_progress(progress, order, total)))
        else:
            output.copy(_concatenated(order, progress))
        output.estimated = sum(log.estimated_times for log in order)
        return output.finish(plan)
    except BaseException:
        output.abort()
        raise


def _common(values: Iterable[object]) -> str:
    distinct = list(dict.fromkeys(str(v) for v in values if v))
    return ", ".join(distinct)


def _concatenated(order: Sequence[LogInput], progress: Progress | None) -> Iterator[Frame]:
    done = 0
    previous: LogInput | None = None
    last: float | None = None
    for log in order:
        first = log.first_time()
        if previous is not None and last is not None and first is not None and first < last:
            raise LogToolError(
                f"{log.path} starts at @{first:.6f}, before {previous.path} ends (@{last:.6f}); "
                "the recordings overlap: use --interleave to merge them record by record"
            )
        step = None if progress is None else (lambda n, base=done: progress(base + n))
        for frame in log.frames(progress=step):
            last = frame.time
            yield frame
        done += log.size
        previous = log


def _offset_progress(
    progress: Progress | None, order: Sequence[LogInput], total: int
) -> list[Progress | None]:
    """One progress callback per input, summing their positions."""
    if progress is None:
        return [None] * len(order)
    positions = [0] * len(order)

    def make(i: int) -> Progress:
        def update(n: int) -> None:
            positions[i] = n
            progress(min(sum(positions), total))

        return update

    return [make(i) for i in range(len(order))]


def _interleaved(order: Sequence[LogInput], progress: list[Progress | None]) -> Iterator[Frame]:
    streams = [
        ((frame.time, i, frame.seq, frame) for frame in log.frames(progress=p))
        for i, (log, p) in enumerate(zip(order, progress, strict=True))
    ]
    for _, _, _, frame in heapq.merge(*streams):
        yield frame
