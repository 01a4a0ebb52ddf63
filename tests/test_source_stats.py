"""A source's counters stay bounded however many gaps and errors it meets."""

from __future__ import annotations

from engine.core.frame import Gap
from engine.sources.base import KEPT, SourceStats
from engine.sources.session import RecordingSummary


def test_gaps_and_errors_keep_the_newest_and_count_them_all() -> None:
    stats = SourceStats()
    for i in range(KEPT * 3):
        stats.note_gap(Gap(source="s", start=float(i), end=i + 0.5, reason=f"lost {i}"))
        stats.note_error(f"error {i}")
    assert len(stats.gaps) == KEPT and len(stats.errors) == KEPT
    assert stats.gaps[0].start == 2 * KEPT and stats.gaps[-1].start == 3 * KEPT - 1
    assert stats.errors[-1] == f"error {3 * KEPT - 1}"
    assert stats.gap_count == 3 * KEPT
    assert stats.gap_seconds == 0.5 * 3 * KEPT


def test_a_summary_counts_every_gap_not_only_those_kept() -> None:
    stats = SourceStats()
    for i in range(KEPT + 5):
        stats.note_gap(Gap(source="s", start=float(i), end=i + 2.0, reason="closed"))
    summary = RecordingSummary(
        path="x.bin", records=0, bytes=0, counts={}, started_at=0.0, stopped_at=1.0,
        stop_reason="end", gaps=list(stats.gaps), gap_count=stats.gap_count,
        gap_seconds=stats.gap_seconds,
    )  # fmt: skip
    assert f"gaps: {KEPT + 5} ({2.0 * (KEPT + 5):.1f} s without data)" in "\n".join(summary.lines())
