"""What a run did, in numbers and lines a person reads at the end of ``cuecap run``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from engine.runtime.rulebook import Firing


@dataclass(frozen=True, slots=True)
class Segment:
    """One recorded file: which recorder, what span of receive time, how much, why."""

    recorder: str
    path: str
    first_time: float | None
    last_time: float | None
    records: int
    bytes: int
    start_reason: str
    stop_reason: str

    @classmethod
    def from_manifest(cls, recorder: str, manifest: Any) -> Segment:
        return cls(
            recorder=recorder,
            path=str(manifest.path),
            first_time=manifest.first_time,
            last_time=manifest.last_time,
            records=manifest.records,
            bytes=manifest.bytes,
            start_reason=manifest.start_reason,
            stop_reason=manifest.stop_reason,
        )

    @property
    def seconds(self) -> float:
        if self.first_time is None or self.last_time is None:
            return 0.0
        return self.last_time - self.first_time


@dataclass
class Summary:
    """The outcome of one engine run (or replay)."""

    started: float
    ended: float
    reason: str
    firings: list[Firing] = field(default_factory=list)
    firing_counts: Counter[str] = field(default_factory=Counter)
    segments: list[Segment] = field(default_factory=list)
    shots_ok: list[str] = field(default_factory=list)  # paths, the first 100,000
    shots_failed: list[str] = field(default_factory=list)  # "camera: reason", likewise
    notes: list[tuple[Firing, str]] = field(default_factory=list)
    frames: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)  # frames that are no PurpleDrop event
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    shot_counts: Counter[str] = field(default_factory=Counter)  # "ok", "failed": every shot
    error_count: int | None = None  # every error, when more happened than ``errors`` keeps
    segment_count: int | None = None  # every segment, when more happened than ``segments`` keeps

    @property
    def shots_taken(self) -> int:
        return max(self.shot_counts["ok"], len(self.shots_ok))

    @property
    def shot_failures(self) -> int:
        return max(self.shot_counts["failed"], len(self.shots_failed))

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def render(self, tz: tzinfo, *, verbose: bool = False, limit: int = 20) -> str:
        """A few lines: segments with their spans, shots, firings per rule (all with ``verbose``)."""

        def clock(t: float | None) -> str:
            return "?" if t is None else datetime.fromtimestamp(t, tz).strftime("%H:%M:%S.%f")[:-3]

        lines = [
            f"ran {self.seconds:.1f} s ({self.reason}); "
            + ", ".join(
                f"{name}: {n} frames"
                + (f" ({bad} invalid)" if (bad := self.invalid.get(name)) else "")
                for name, n in sorted(self.frames.items())
            )
        ]
        what = "segments that would be recorded" if self.dry_run else "segments recorded"
        count = max(self.segment_count or 0, len(self.segments))
        lines.append(f"{what}: {count}")
        shown = self.segments if verbose else self.segments[:limit]
        for s in shown:
            lines.append(
                f"  {s.recorder}: {clock(s.first_time)} - {clock(s.last_time)} "
                f"({s.seconds:.1f} s, {s.records} messages, {s.bytes / 1e6:.2f} MB) "
                f"[{s.start_reason} -> {s.stop_reason}] {s.path}"
            )
        if len(shown) < count:
            lines.append(f"  ... and {count - len(shown)} more")
        if self.dry_run:
            shot_notes = [n for _, n in self.notes if n.startswith("shot ")]
            lines.append(f"shots that would be taken: {len(shot_notes)}")
        else:
            lines.append(f"shots taken: {self.shots_taken}, failed: {self.shot_failures}")
        total = sum(self.firing_counts.values())
        lines.append(f"rule firings: {total}")
        for rule, count in sorted(self.firing_counts.items()):
            times = [f.time for f in self.firings if f.rule == rule]
            span = f" (first {clock(times[0])}, last {clock(times[-1])})" if times else ""
            lines.append(f"  {rule}: {count}{span}")
        if verbose:
            lines.append("firings:")
            for f in self.firings:
                lines.append(f"  {clock(f.time)} {f.rule} <- {f.describe()}")
        for error in self.errors:
            lines.append(f"error: {error}")
        if self.error_count is not None and self.error_count > len(self.errors):
            lines.append(f"... and {self.error_count - len(self.errors)} more errors")
        return "\n".join(lines)
