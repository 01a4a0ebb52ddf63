"""record_stream: every way a session ends closes the file with the reason, losing nothing."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest
from scripted_server import ScriptedServer, sample_events

from engine.core.clock import ManualClock
from engine.recording.reader import RecordingReader
from engine.recording.writer import RecordingWriter
from engine.sources.log import LogSource
from engine.sources.session import record_stream
from engine.sources.websocket import WebSocketSource

EVENTS = sample_events(50)


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "source.bin"
    with RecordingWriter(path, opened_at=100.0) as writer:
        for i, raw in enumerate(EVENTS):
            writer.write(raw, 100.0 + i * 0.1)
    return path


async def test_max_records(recording: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    summary = await record_stream(LogSource(recording), RecordingWriter(out), max_records=7)
    assert summary.stop_reason == "count" and summary.records == 7 and summary.ok
    assert [f.raw for f in RecordingReader(out)] == EVENTS[:7]


async def test_a_full_disk_stops_the_session_and_keeps_what_was_written(
    recording: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.bin"
    writer = RecordingWriter(out)
    real_write = writer._write_data
    calls = 0

    def fill_up(data: bytes) -> int:
        nonlocal calls
        calls += 1
        if calls > 20:  # 10 records fit, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(data)

    writer._write_data = fill_up  # type: ignore[method-assign]
    summary = await record_stream(LogSource(recording), writer, clock=ManualClock(200.0))
    assert summary.stop_reason == "write error"
    assert summary.error == f"{out}: write failed: No space left on device"
    reader = RecordingReader(out)
    assert [f.raw for f in reader] == EVENTS[:10] and reader.truncated_bytes == 0
    manifest = reader.manifest
    assert manifest is not None and manifest["complete"] and manifest["records"] == 10
    assert (
        manifest["stop_reason"] == "write error" and "No space left" in manifest["extra"]["error"]
    )


async def test_stop_event_and_idle_flush(tmp_path: Path) -> None:
    """Three messages, then silence: they reach the disk while the session still runs."""
    out = tmp_path / "out.bin"
    stop = asyncio.Event()
    async with ScriptedServer(EVENTS[:3]) as server:
        writer = RecordingWriter(out, flush_interval=0.02)
        session = asyncio.ensure_future(
            record_stream(WebSocketSource(server.uri), writer, stop=stop)
        )
        expected = sum(4 + len(raw) for raw in EVENTS[:3])
        async with asyncio.timeout(10):
            while not (out.stat().st_size == expected and writer.records == 3):
                await asyncio.sleep(0.005)
        assert not session.done()
        assert [f.raw for f in RecordingReader(out)] == EVENTS[:3]  # readable mid-session
        stop.set()
        summary = await session
    assert summary.stop_reason == "stopped" and summary.records == 3 and summary.ok


async def test_duration_ends_a_silent_stream(tmp_path: Path) -> None:
    async with ScriptedServer([]) as server:
        summary = await record_stream(
            WebSocketSource(server.uri), RecordingWriter(tmp_path / "out.bin"), duration=0.05
        )
    assert summary.stop_reason == "duration" and summary.records == 0 and summary.ok
    manifest = RecordingReader(tmp_path / "out.bin").manifest
    assert manifest is not None and manifest["complete"] and manifest["stop_reason"] == "duration"


async def test_bad_limits(recording: Path, tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "out.bin")
    with pytest.raises(ValueError, match="max_records must be >= 1"):
        await record_stream(LogSource(recording), writer, max_records=0)
    with pytest.raises(ValueError, match="duration must be >= 0"):
        await record_stream(LogSource(recording), writer, duration=-1)
    writer.close()
