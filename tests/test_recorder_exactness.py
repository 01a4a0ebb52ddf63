"""Exactness: every record of every burst window on disk exactly once, in order, nothing else.

Streams are generated in virtual time on a grid of 1/8 s (exact in binary), so
boundaries are hit exactly: a record at precisely ``first - pre_roll`` or
``last + post_roll`` must be in, one a grid step outside must be out.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recorder_streams import frame, read_segments, seqs_by_time

from engine.core.clock import ManualClock
from engine.core.frame import Frame
from engine.events import Event, EventKind
from engine.recorder.config import RecorderConfig
from engine.recorder.recorder import Recorder

STEP = 0.125
ACTIVITY = "electrode_state"


@dataclass
class Burst:
    first: float
    last: float


def bursts(
    times: list[float], post_roll: float, min_activity: int = 1, window: float = 1.0
) -> list[Burst]:
    """The recordings a stream's activity times call for (the specification, written plainly)."""
    out: list[Burst] = []
    pending: list[float] = []
    current: Burst | None = None
    for a in times:
        if current is not None:
            if a <= current.last + post_roll:
                current.last = a
                continue
            out.append(current)
            current = None
            pending = []
        pending = [h for h in pending if h >= a - window] + [a]
        if len(pending) >= min_activity:
            current = Burst(pending[0], a)
            pending = []
    if current is not None:
        out.append(current)
    return out


def expected(
    frames: list[Frame], found: list[Burst], pre_roll: float, post_roll: float
) -> list[list[int]]:
    """Per burst, the records inside its window and not inside an earlier one."""
    taken: set[int] = set()
    out = []
    for burst in found:
        lo, hi = burst.first - pre_roll, burst.last + post_roll
        seqs = [f.seq for f in frames if lo <= f.time <= hi and f.seq not in taken]
        taken.update(seqs)
        out.append(seqs)
    return out


@st.composite
def streams(draw: st.DrawFn) -> list[Frame]:
    n = draw(st.integers(min_value=1, max_value=160))
    steps = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    kinds = draw(
        st.lists(
            st.sampled_from(["temperature_control", "hv_regulator", "image", ACTIVITY]).filter(
                bool
            ),
            min_size=n,
            max_size=n,
        )
    )
    # Activity is rarer than background, in clusters: thin it out.
    keep = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    sizes = draw(st.lists(st.integers(0, 300), min_size=n, max_size=n))
    frames = []
    t = 1000.0
    for i in range(n):
        t += steps[i] * STEP
        kind = kinds[i] if kinds[i] != ACTIVITY or keep[i] else "temperature_control"
        frames.append(frame(kind, t, i, value=float(i), size=sizes[i]))
    return frames


def run(
    config: RecorderConfig, frames: list[Frame], root: Path, *, end: str = "tick"
) -> tuple[Recorder, list[Event]]:
    events: list[Event] = []
    clock = ManualClock(frames[0].time)
    recorder = Recorder("r", config, root=root, emit=events.append, clock=clock)
    for f in frames:
        clock.set(f.time)
        recorder.feed(f)
        assert recorder.state == recorder.policy.state
    if end == "tick":
        recorder.tick(frames[-1].time + 10_000)
        assert recorder.state in ("idle", "error")
    else:
        recorder.close()
    return recorder, events


def group_parts(recorder: Recorder, per_segment: list[list[int]]) -> list[list[int]]:
    """Join the rotated parts of each recording back together."""
    joined: dict[int, list[int]] = {}
    for manifest, seqs in zip(recorder.segments, per_segment, strict=True):
        joined.setdefault(manifest.extra["recording"], []).extend(seqs)
    return [joined[k] for k in sorted(joined)]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frames=streams(),
    pre_steps=st.integers(0, 16),
    post_steps=st.integers(0, 24),
    rotate_bytes=st.one_of(st.none(), st.integers(60, 2000)),
    rotate_steps=st.one_of(st.none(), st.integers(1, 40)),
    end=st.sampled_from(["tick", "close"]),
)
def test_every_window_record_exactly_once(
    frames: list[Frame],
    pre_steps: int,
    post_steps: int,
    rotate_bytes: int | None,
    rotate_steps: int | None,
    end: str,
) -> None:
    pre_roll, post_roll = pre_steps * STEP, post_steps * STEP
    config = RecorderConfig(
        activity=[{"type": "message", "types": [ACTIVITY]}],
        pre_roll=pre_roll,
        post_roll=post_roll,
        max_segment_bytes=rotate_bytes,
        max_segment_seconds=rotate_steps * STEP if rotate_steps else None,
        file_name="{seq}.bin",
    )
    with tempfile.TemporaryDirectory() as tmp:
        recorder, events = run(config, frames, Path(tmp), end=end)
        segments = read_segments(recorder.segments)
        per_segment = seqs_by_time(frames, segments)
    activity = [f.time for f in frames if f.kind == ACTIVITY]
    found = bursts(activity, post_roll)
    assert group_parts(recorder, per_segment) == expected(frames, found, pre_roll, post_roll)
    assert recorder.recordings == len(found)
    # No segment is empty, none over its limits (a lone oversized record may stand alone).
    for manifest, seqs in zip(recorder.segments, per_segment, strict=True):
        assert seqs, "empty segment"
        assert manifest.records == len(seqs)
        if rotate_bytes is not None and len(seqs) > 1:
            assert manifest.bytes <= rotate_bytes
        if rotate_steps is not None:
            assert manifest.last_time - manifest.first_time < rotate_steps * STEP
    # Each recording's manifests know its activity span.
    firsts = {}
    for manifest in recorder.segments:
        if manifest.first_activity is not None:
            firsts.setdefault(manifest.extra["recording"], manifest.first_activity)
    assert [firsts.get(i + 1) for i in range(len(found))] == [b.first for b in found]
    # Events: one started and one stopped per segment, in order, alternating.
    names = [e.name for e in events]
    assert names == [EventKind.RECORDING_STARTED, EventKind.RECORDING_STOPPED] * len(
        recorder.segments
    )


@settings(max_examples=80, deadline=None)
@given(
    frames=streams(),
    pre_steps=st.integers(0, 12),
    post_steps=st.integers(0, 16),
    min_activity=st.integers(2, 4),
    window_steps=st.integers(1, 16),
)
def test_min_activity_ignores_blips_and_keeps_the_first_hits_pre_roll(
    frames: list[Frame], pre_steps: int, post_steps: int, min_activity: int, window_steps: int
) -> None:
    pre_roll, post_roll, window = pre_steps * STEP, post_steps * STEP, window_steps * STEP
    config = RecorderConfig(
        activity=[{"type": "message", "types": [ACTIVITY]}],
        pre_roll=pre_roll,
        post_roll=post_roll,
        min_activity=min_activity,
        activity_window=window,
        file_name="{seq}.bin",
    )
    with tempfile.TemporaryDirectory() as tmp:
        recorder, _ = run(config, frames, Path(tmp))
        per_segment = seqs_by_time(frames, read_segments(recorder.segments))
    activity = [f.time for f in frames if f.kind == ACTIVITY]
    found = bursts(activity, post_roll, min_activity, window)
    assert per_segment == expected(frames, found, pre_roll, post_roll)


def test_boundaries_are_inclusive(tmp_path: Path) -> None:
    # Background every 0.5 s; activity at 10.0 and 12.0; pre 1.0, post 2.0.
    frames = []
    for i in range(60):
        t = i * 0.5
        frames.append(
            frame(ACTIVITY if t in (10.0, 12.0) else "temperature_control", t, i, value=float(i))
        )
    config = RecorderConfig(
        activity=[{"type": "message", "types": [ACTIVITY]}],
        pre_roll=1.0,
        post_roll=2.0,
        file_name="{seq}.bin",
    )
    recorder, events = run(config, frames, tmp_path)
    [segment] = read_segments(recorder.segments)
    assert [f.time for f in segment] == [9.0 + 0.5 * k for k in range(11)]  # 9.0 .. 14.0 inclusive
    [manifest] = recorder.segments
    assert (manifest.first_activity, manifest.last_activity) == (10.0, 12.0)
    assert manifest.closed_at == 14.0
    assert events[-1].data["reason"] == "post_roll"
