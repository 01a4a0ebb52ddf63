"""What a run did, counted as it happens: frames, firings, segments, shots, errors.

One object instead of counters spread over the engine: the core updates it
as frames, firings and events pass, the status page and metrics read it
while the engine runs, and the summary at the end is drawn from it. Lists
kept for the summary are bounded (a run of months must not grow without
limit); the counts go on beyond.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from engine.events import Event, RecordingErrored, ShotErrored, ShotSaved
from engine.runtime.rulebook import Firing
from engine.runtime.summary import Segment, Summary

MAX_KEPT = 100_000  # firings, notes, shot paths and error lines kept for the summary


class RunStats:
    """Counters and bounded lists of one engine run."""

    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self.max_kept = max_kept
        self.frames: Counter[str] = Counter()  # frames handled, per source
        self.invalid: Counter[str] = Counter()  # of those, not PurpleDrop events
        self.frame_errors = 0  # frames whose handling raised
        self.firings: list[Firing] = []
        self.firing_counts: Counter[str] = Counter()
        self.notes: list[tuple[Firing, str]] = []
        self.segments: list[Segment] = []  # closed by recorders that were replaced or closed
        self.segment_count = 0  # every segment, also those beyond ``segments``
        self.shots_ok: list[str] = []
        self.shots_failed: list[str] = []
        self.shot_counts: Counter[str] = Counter()  # "ok", "failed": every shot
        self.errors: list[str] = []
        self.error_count = 0

    def fired(self, firing: Firing) -> None:
        self.firing_counts[firing.rule] += 1
        if len(self.firings) < self.max_kept:
            self.firings.append(firing)

    def observe(self, event: Event) -> None:
        """Count what an event reports (shots saved and failed, recorder errors)."""
        if isinstance(event, ShotSaved):
            self.shot_counts["ok"] += 1
            if len(self.shots_ok) < self.max_kept:
                self.shots_ok.append(str(event.path))
        elif isinstance(event, ShotErrored):
            self.shot_counts["failed"] += 1
            if len(self.shots_failed) < self.max_kept:
                self.shots_failed.append(f"{event.camera}: {event.reason}")
        elif isinstance(event, RecordingErrored):
            self.error(f"recorder {event.recorder}: {event.error}")

    def shot_refused(self, camera: str, reason: str) -> None:
        """A shot the shot service refused to queue: it failed, and says why."""
        self.shot_counts["failed"] += 1
        if len(self.shots_failed) < self.max_kept:
            self.shots_failed.append(f"{camera}: {reason}")

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_kept:
            self.errors.append(message)

    def note(self, firing: Firing, what: str) -> None:
        if len(self.notes) < self.max_kept:
            self.notes.append((firing, what))

    def segments_closed(self, recorder: str, manifests: Iterable[Any], count: int) -> None:
        """A recorder is done: its last segments (as it kept them) and how many it made."""
        self.segments.extend(Segment.from_manifest(recorder, m) for m in manifests)
        self.segment_count += count

    def summary(
        self, *, started: float, ended: float, reason: str, sources: Iterable[str], dry_run: bool
    ) -> Summary:
        """The run's outcome; ``sources``: every source the run had, frames or not."""
        if self.frame_errors:  # only the first ones went to the log, with their tracebacks
            self.error(f"{self.frame_errors} frame(s) could not be handled (see the log)")
        return Summary(
            started=started,
            ended=ended,
            reason=reason or "stopped",
            firings=list(self.firings),
            firing_counts=Counter(self.firing_counts),
            segments=sorted(self.segments, key=lambda s: (s.first_time or 0.0, s.recorder)),
            segment_count=self.segment_count,
            shots_ok=list(self.shots_ok),
            shots_failed=list(self.shots_failed),
            shot_counts=Counter(self.shot_counts),
            notes=list(self.notes),
            frames={name: self.frames[name] for name in sources},
            invalid={name: self.invalid[name] for name in sources if self.invalid[name]},
            errors=list(self.errors),
            error_count=self.error_count,
            dry_run=dry_run,
        )
