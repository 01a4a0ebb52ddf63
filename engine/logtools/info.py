"""``log info``: what a recording holds, in one streaming pass.

Counts and bytes per message type, receive-time span, the server timestamps'
span, the index's state, a cut-short tail, records that are not events, and
what the manifest says (why it started and stopped, gaps). Where the manifest
and the records disagree (a recorder that crashed before its last manifest
update), both are shown: the records are the truth, the difference is a clue.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.core.fieldpath import image_bytes, image_path
from engine.core.humanize import format_bytes
from engine.core.schema import PURPLEDROP
from engine.logtools.inputs import LogInput, Progress


@dataclass
class TypeStats:
    count: int = 0
    bytes: int = 0


@dataclass
class LogInfo:
    """The facts ``log info`` prints (``to_dict`` for ``--json``)."""

    path: str
    size: int
    records: int = 0
    record_bytes: int = 0
    truncated_bytes: int = 0
    invalid: int = 0
    types: dict[str, TypeStats] = field(default_factory=dict)
    first_time: float | None = None
    last_time: float | None = None
    first_timestamp: float | None = None
    last_timestamp: float | None = None
    index: str = "present"
    estimated_times: int = 0
    image_size: tuple[int, int] | None = None
    manifest: dict[str, Any] | None = None
    schema: str = "protobuf.PurpleDropEvent"  # the records' message type
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        if self.first_time is None or self.last_time is None:
            return None
        return self.last_time - self.first_time

    @property
    def what(self) -> str:
        """What one record is called: "PurpleDrop event", or the message's full name."""
        return "PurpleDrop event" if self.schema == PURPLEDROP.name else self.schema

    @property
    def gaps(self) -> list[dict[str, Any]]:
        return list((self.manifest or {}).get("gaps") or [])

    def rate(self, kind: str) -> float | None:
        """Messages per second of one type over the whole span."""
        duration = self.duration
        if not duration:
            return None
        return self.types[kind].count / duration

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration"] = self.duration
        data["types"] = {
            k: {**asdict(v), "rate": self.rate(k)} for k, v in sorted(self.types.items())
        }
        data["gaps"] = self.gaps
        return data


def summarize(log: LogInput, progress: Progress | None = None) -> LogInfo:
    """Read the whole recording once and collect its facts."""
    info = LogInfo(path=str(log.path), size=log.size, manifest=log.manifest, schema=log.schema.name)
    image = image_path(log.schema)
    image_kind = image.kind if image is not None else None
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    first_image: bytes | None = None
    for frame in log.frames(progress=progress):
        kind = frame.kind
        if kind is None or not frame.valid:
            if kind is not None:
                log.note_invalid(frame)
            continue
        counts[kind] += 1
        sizes[kind] += frame.size + 4
        if info.first_time is None:
            info.first_time = frame.time
        info.last_time = frame.time
        stamp = frame.timestamp
        if stamp is not None:
            if info.first_timestamp is None or stamp < info.first_timestamp:
                info.first_timestamp = stamp
            if info.last_timestamp is None or stamp > info.last_timestamp:
                info.last_timestamp = stamp
        if kind == image_kind and first_image is None:
            first_image = image_bytes(frame)
    reader = log.reader
    info.records = reader.records
    info.record_bytes = reader.bytes
    info.truncated_bytes = reader.truncated_bytes
    info.invalid = log.invalid
    info.estimated_times = reader.estimated_times
    info.types = {k: TypeStats(counts[k], sizes[k]) for k in sorted(counts)}
    if reader.index_problem:
        info.index = reader.index_problem
    info.image_size = _image_size(first_image) if first_image else None
    info.problems = log.problems()
    info.notes = log.notes()
    return info


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a camera frame, read from its header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except (UnidentifiedImageError, OSError):
        return None


# -- text ----------------------------------------------------------------------


def format_time(t: float | None, utc: bool = False) -> str:
    """An epoch time as an ISO datetime with its offset (local time unless ``utc``)."""
    if t is None:
        return "-"
    when = datetime.fromtimestamp(t).astimezone() if not utc else datetime.fromtimestamp(t, tz=UTC)
    return when.isoformat(timespec="milliseconds")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.3f} s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:06.3f} ({seconds:.1f} s)"


def format_info(info: LogInfo, utc: bool = False) -> str:
    """The human-readable report of ``log info``."""
    lines = [
        f"recording   {info.path}",
        f"size        {format_bytes(info.size)} ({info.size} bytes), {info.records} records",
        f"first       {format_time(info.first_time, utc)}  ({_epoch(info.first_time)})",
        f"last        {format_time(info.last_time, utc)}  ({_epoch(info.last_time)})",
        f"duration    {format_duration(info.duration)}",
    ]
    if info.schema != PURPLEDROP.name:
        lines.append(f"schema      {info.schema}")
    if info.first_timestamp is not None:
        lines.append(
            f"timestamps  {format_time(info.first_timestamp, utc)} .. "
            f"{format_time(info.last_timestamp, utc)} (server clock)"
        )
    if info.estimated_times:
        lines.append(
            f"index       {info.index}: {info.estimated_times} of {info.records} receive times "
            "estimated from message timestamps"
        )
    else:
        lines.append(f"index       {info.index}")
    tail = (
        f"{info.truncated_bytes} bytes (last record cut short)" if info.truncated_bytes else "none"
    )
    lines.append(f"truncated   {tail}")
    if info.invalid:
        lines.append(f"invalid     {info.invalid} records are not {info.what}s")
    if info.image_size:
        lines.append(f"images      {info.image_size[0]}x{info.image_size[1]}")
    if info.types:
        width = max(len(k) for k in info.types)
        lines.append("")
        lines.append(f"{'type':<{width}}  {'count':>9}  {'bytes':>11}  {'rate':>10}")
        for kind, stats in info.types.items():
            rate = info.rate(kind)
            rate_text = f"{rate:.2f}/s" if rate is not None else "-"
            lines.append(
                f"{kind:<{width}}  {stats.count:>9}  {format_bytes(stats.bytes):>11}  {rate_text:>10}"
            )
    lines.extend(_manifest_lines(info, utc))
    for note in info.notes + info.problems:
        lines.append(f"warning: {note}")
    return "\n".join(lines)


def _epoch(t: float | None) -> str:
    return "-" if t is None else f"@{t:.6f}"


def _manifest_lines(info: LogInfo, utc: bool) -> list[str]:
    m = info.manifest
    if m is None:
        return ["", "manifest    none (a plain pdrecord file?)"]
    lines = [""]
    facts = [
        ("recorder", m.get("recorder")),
        ("source", m.get("source")),
        ("opened", format_time(m.get("opened_at"), utc) if m.get("opened_at") else None),
        ("closed", format_time(m.get("closed_at"), utc) if m.get("closed_at") else None),
        ("started", m.get("start_reason")),
        ("stopped", m.get("stop_reason")),
        ("complete", "yes" if m.get("complete") else "no (still recording, or the recorder died)"),
    ]
    if m.get("first_activity") is not None:
        facts.append(
            (
                "activity",
                f"{format_time(m.get('first_activity'), utc)} .. "
                f"{format_time(m.get('last_activity'), utc)}",
            )
        )
    for key, value in facts:
        if value not in (None, ""):
            lines.append(f"{key:<11} {value}")
    said = m.get("records")
    if isinstance(said, int) and said != info.records:
        lines.append(f"{'':<11} the manifest says {said} records; the file holds {info.records}")
    gaps = info.gaps
    if gaps:
        total = sum(float(g.get("seconds", 0) or 0) for g in gaps)
        lines.append(f"gaps        {len(gaps)}, {total:.3f} s in all")
        for gap in gaps:
            lines.append(
                f"  {format_time(gap.get('start'), utc)} .. {format_time(gap.get('end'), utc)}"
                f"  {float(gap.get('seconds', 0) or 0):.3f} s  {gap.get('reason', '')}"
            )
    else:
        lines.append("gaps        none")
    extra = m.get("extra") or {}
    for key, value in sorted(extra.items()):
        lines.append(f"extra       {key} = {value}")
    return lines
