"""LogSource: a recording replayed in virtual time or paced, gaps included."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripted_server import sample_events

from engine.core.clock import ManualClock
from engine.core.frame import Frame, Gap
from engine.recording.format import RecordingError
from engine.recording.reader import RecordingReader
from engine.recording.writer import RecordingWriter
from engine.sources.log import LogSource
from engine.sources.session import record_stream

T0 = 1_700_000_000.0
EVENTS = sample_events(12)
TIMES = [T0 + 0.25 * i for i in range(6)] + [T0 + 10.0 + 0.5 * i for i in range(6)]


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """Twelve events, with a 8.75 s gap noted between the 6th and the 7th."""
    path = tmp_path / "rec.bin"
    with RecordingWriter(path, source="pd", opened_at=T0) as writer:
        for raw, t in zip(EVENTS[:6], TIMES[:6], strict=True):
            writer.write(raw, t)
        writer.note_gap(Gap("pd", TIMES[5] + 0.1, TIMES[6] - 0.05, "closed by server (code 1001)"))
        for raw, t in zip(EVENTS[6:], TIMES[6:], strict=True):
            writer.write(raw, t)
    return path


async def collect(source: LogSource) -> list[Frame | Gap]:
    return [item async for item in source]


async def test_virtual_time_keeps_receive_times_and_moves_the_clock(recording: Path) -> None:
    clock = ManualClock(T0 - 5)
    seen_clock: list[float] = []
    source = LogSource(recording, name="replay", clock=clock)
    items = []
    async for item in source:
        items.append(item)
        seen_clock.append(clock.time())
    frames = [i for i in items if isinstance(i, Frame)]
    gaps = [i for i in items if isinstance(i, Gap)]
    assert [f.raw for f in frames] == EVENTS
    assert [f.time for f in frames] == TIMES
    assert [f.seq for f in frames] == list(range(12))
    assert {f.source for f in frames} == {"replay"}
    assert len(gaps) == 1 and items.index(gaps[0]) == 6  # right where it happened
    assert gaps[0].start == TIMES[5] + 0.1 and gaps[0].reason.startswith("closed by server")
    assert seen_clock[:6] == TIMES[:6] and seen_clock[7:] == TIMES[6:]
    assert seen_clock[6] == gaps[0].end
    assert source.stats.frames == 12 and source.stats.bytes == sum(map(len, EVENTS))
    assert source.stats.gaps == gaps and source.stats.errors == []


async def test_paced_replay_scales_the_original_timing(recording: Path) -> None:
    clock = ManualClock(5000.0)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    items = await collect(LogSource(recording, speed=4.0, clock=clock, sleep=sleep))
    frames = [i for i in items if isinstance(i, Frame)]
    assert [f.time for f in frames] == pytest.approx([5000.0 + (t - T0) / 4 for t in TIMES])
    assert sum(slept) == pytest.approx((TIMES[-1] - T0) / 4)
    (gap,) = [i for i in items if isinstance(i, Gap)]
    assert gap.start == pytest.approx(5000.0 + (TIMES[5] + 0.1 - T0) / 4)
    assert gap.duration == pytest.approx((TIMES[6] - 0.05 - TIMES[5] - 0.1) / 4)


async def test_infinite_speed_restamps_with_the_clock(recording: Path) -> None:
    clock = ManualClock(42.0)
    frames = [i for i in await collect(LogSource(recording, speed=float("inf"), clock=clock))]
    assert {i.time for i in frames if isinstance(i, Frame)} == {42.0}


async def test_truncated_tail_is_reported_and_the_rest_replays(recording: Path) -> None:
    data = recording.read_bytes()
    recording.write_bytes(data[:-7])  # a crash in the middle of the last record
    source = LogSource(recording)
    frames = [i for i in await collect(source) if isinstance(i, Frame)]
    assert [f.raw for f in frames] == EVENTS[:-1]
    assert len(source.stats.errors) == 1 and "cut short" in source.stats.errors[0]


async def test_invalid_records_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "odd.bin"
    with RecordingWriter(path, opened_at=T0) as writer:
        writer.write(EVENTS[0], T0)
        writer.write(b"\xffjunk", T0 + 1)
        writer.write(EVENTS[1], T0 + 2)
    source = LogSource(path)
    frames = await collect(source)
    assert [f.raw for f in frames] == [EVENTS[0], b"\xffjunk", EVENTS[1]]  # type: ignore[union-attr]
    assert source.stats.invalid == 1


async def test_aclose_ends_the_replay(recording: Path) -> None:
    source = LogSource(recording)
    first = await source.__anext__()
    assert isinstance(first, Frame)
    await source.aclose()
    assert await collect(source) == []


def test_bad_arguments(recording: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="speed must be > 0"):
        LogSource(recording, speed=0)
    with pytest.raises(RecordingError, match="no such recording"):
        LogSource(tmp_path / "missing.bin")


async def test_replaying_into_a_writer_reproduces_the_recording(
    recording: Path, tmp_path: Path
) -> None:
    """Virtual time end to end: the copy has the same records, times and gap."""
    out = tmp_path / "copy.bin"
    writer = RecordingWriter(out, source="replay", opened_at=T0)
    summary = await record_stream(LogSource(recording), writer, clock=ManualClock(T0))
    assert summary.stop_reason == "source ended" and summary.ok
    assert out.read_bytes() == recording.read_bytes()
    assert [f.time for f in RecordingReader(out)] == TIMES
    manifest = RecordingReader(out).manifest
    assert manifest is not None and len(manifest["gaps"]) == 1
    assert manifest["counts"] == RecordingReader(recording).manifest["counts"]  # type: ignore[index]
