"""EventRecorder: the seed's calls and errors, over real loopback websocket servers."""

from __future__ import annotations

import logging
import runpy
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from full_disk import full_disk_after
from scripted_server import ScriptedServer, sample_events

from engine.compat import EventRecorder
from engine.recording.format import RecordingError
from engine.recording.reader import RecordingReader
from engine.sim.server import run_sim_in_thread
from engine.sources.backoff import Backoff

FAST = Backoff(initial=0.01, maximum=0.05, jitter=0.5)
SCRIPT = sample_events(30)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.002)


@pytest.fixture
def stream() -> Iterator[ScriptedServer]:
    """A live-looking stream: the script again and again, one message every 0.5 ms."""
    with ScriptedServer(SCRIPT, then="repeat", interval=0.0005).threaded() as server:
        yield server


@pytest.fixture
def recorder(stream: ScriptedServer) -> Iterator[EventRecorder]:
    rec = EventRecorder(stream.uri, backoff=FAST)
    yield rec
    rec.close()


def assert_stream_slice(path: Path, records: int) -> None:
    """The file holds ``records`` consecutive messages of the script, with receive times."""
    reader = RecordingReader(path)
    frames = list(reader)
    assert len(frames) == records > 0
    raws = [f.raw for f in frames]
    start = SCRIPT.index(raws[0])
    assert raws == [SCRIPT[(start + i) % len(SCRIPT)] for i in range(len(raws))]
    assert reader.truncated_bytes == 0 and reader.estimated_times == 0
    times = [f.time for f in frames]
    assert times == sorted(times)
    manifest = reader.manifest
    assert manifest is not None and manifest["complete"] and manifest["records"] == records


def test_start_stop_start_again(recorder: EventRecorder, tmp_path: Path) -> None:
    for i in range(3):
        path = tmp_path / f"log{i}.bin"
        recorder.start(path)  # right after construction too: no race on the loop
        assert recorder.recording and recorder.output_file == str(path)
        assert recorder.recorder.state == "recording"  # a manual start of the engine's recorder
        wait_until(lambda: recorder.records >= 20)
        summary = recorder.stop()
        assert summary is not None and summary.ok and summary.stop_reason == "stopped"
        assert not recorder.recording and recorder.output_file is None
        assert recorder.recorder.state == "idle" and recorder.records == summary.records
        assert summary.manifest is not None and summary.manifest.start_reason == "start()"
        assert summary.manifest.stop_reason == "stopped"
        assert recorder.last_summary is summary
        assert_stream_slice(path, summary.records)
        assert sum(summary.counts.values()) == summary.records


def test_already_recording(recorder: EventRecorder, tmp_path: Path) -> None:
    recorder.start(tmp_path / "a.bin")
    with pytest.raises(RuntimeError, match=r"^Already recording\. Call stop\(\) first\.$"):
        recorder.start(tmp_path / "b.bin")
    assert not (tmp_path / "b.bin").exists()
    wait_until(lambda: recorder.records >= 5)
    summary = recorder.stop()
    assert summary is not None
    assert_stream_slice(tmp_path / "a.bin", summary.records)


def test_stop_when_not_recording_is_harmless(recorder: EventRecorder, tmp_path: Path) -> None:
    assert recorder.stop() is None
    assert recorder.stop() is None
    recorder.start(tmp_path / "a.bin")  # an earlier stop() does not cut this one short
    wait_until(lambda: recorder.records >= 5)
    summary = recorder.stop()
    assert summary is not None and summary.stop_reason == "stopped"


def test_unwritable_path_raises_and_leaves_the_recorder_usable(
    recorder: EventRecorder, tmp_path: Path
) -> None:
    (tmp_path / "taken").write_bytes(b"precious")  # a file where the folder should be
    with pytest.raises(RecordingError, match="cannot create folder"):
        recorder.start(tmp_path / "taken" / "a.bin")
    assert (tmp_path / "taken").read_bytes() == b"precious"
    assert not recorder.recording
    recorder.start(tmp_path / "ok.bin")
    wait_until(lambda: recorder.records >= 1)
    summary = recorder.stop()
    assert summary is not None and summary.records >= 1
    assert_stream_slice(tmp_path / "ok.bin", summary.records)


def test_start_replaces_an_existing_recording_and_says_so(
    recorder: EventRecorder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The original opened its file with 'wb': a demo run twice in one folder replaces its logs."""
    path = tmp_path / "log0.bin"
    recorder.start(path)
    wait_until(lambda: recorder.records >= 3)
    first = recorder.stop()
    assert first is not None
    (tmp_path / "log0.bin.idx").write_bytes(b"stale")  # replaced too, not appended to
    with caplog.at_level(logging.WARNING, logger="engine.compat.event_recorder"):
        recorder.start(path)
    assert f"replacing {path}, {path}.idx, {path}.json" in caplog.text
    wait_until(lambda: recorder.records >= 2)
    second = recorder.stop()
    assert second is not None
    assert_stream_slice(path, second.records)  # the new recording alone, index included


def test_closed_recorder_raises_thread_terminated(stream: ScriptedServer, tmp_path: Path) -> None:
    rec = EventRecorder(stream.uri)
    rec.close()
    assert not rec.thread.is_alive()
    with pytest.raises(RuntimeError, match=r"^EventRecorder thread has terminated\.$"):
        rec.start(tmp_path / "a.bin")
    with pytest.raises(RuntimeError, match="thread has terminated"):
        rec.stop()


def test_thread_dying_mid_recording_keeps_the_file(recorder: EventRecorder, tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    recorder.start(path)
    wait_until(lambda: recorder.records >= 10)
    assert recorder.loop is not None
    recorder.loop.call_soon_threadsafe(recorder.loop.stop)  # the loop dies under it
    recorder.thread.join(5)
    assert not recorder.thread.is_alive()
    with pytest.raises(RuntimeError, match="thread has terminated"):
        recorder.stop()
    reader = RecordingReader(path)
    frames = list(reader)
    assert len(frames) >= 10 and reader.truncated_bytes == 0
    manifest = reader.manifest
    assert manifest is not None and manifest["complete"]
    assert manifest["stop_reason"] == "cancelled" and manifest["records"] == len(frames)


def test_server_down_is_reported_not_fatal(tmp_path: Path) -> None:
    server = ScriptedServer(SCRIPT, then="repeat", interval=0.0005)
    with server.threaded():
        uri = server.uri
    # Nothing listens there any more.
    rec = EventRecorder(uri, backoff=FAST, max_retries=2)
    try:
        rec.start(tmp_path / "a.bin")
        wait_until(lambda: not rec.recording)  # gave up by itself
        assert rec.thread.is_alive()
        assert any("gave up after 2 retries" in e for e in rec.errors)
        summary = rec.stop()
        assert summary is not None and summary.records == 0
        assert summary.stop_reason == "source lost" and "connection refused" in (
            summary.error or ""
        )
        manifest = RecordingReader(tmp_path / "a.bin").manifest
        assert (
            manifest is not None
            and manifest["complete"]
            and manifest["stop_reason"] == "source lost"
        )
        with ScriptedServer(SCRIPT, then="repeat", interval=0.0005, port=server.port).threaded():
            rec.start(tmp_path / "b.bin")  # usable again once the server is back
            wait_until(lambda: rec.records >= 5)
            assert rec.connected
            again = rec.stop()
        assert again is not None and again.ok
    finally:
        rec.close()


def test_reconnects_while_recording(tmp_path: Path) -> None:
    server = ScriptedServer(SCRIPT, then="repeat", interval=0.0005)
    with server.threaded(), EventRecorder(server.uri, backoff=FAST) as rec:
        rec.start(tmp_path / "a.bin")
        wait_until(lambda: rec.records >= 10)
        server.restart()  # goes away and comes back on the same port
        before = rec.records
        wait_until(lambda: rec.records >= before + 10)
        summary = rec.stop()
    assert summary is not None and summary.ok
    assert summary.reconnects == 1 and len(summary.gaps) == 1
    reader = RecordingReader(tmp_path / "a.bin")
    assert len(list(reader)) == summary.records
    manifest = reader.manifest
    assert manifest is not None and len(manifest["gaps"]) == 1
    assert manifest["gaps"][0]["reason"].startswith("closed by server")


def test_records_the_simulator(tmp_path: Path) -> None:
    with run_sim_in_thread(seed=3, fps=5, speed=20.0) as sim, EventRecorder(sim.uri) as rec:
        rec.start(tmp_path / "sim.bin")
        wait_until(lambda: rec.records >= 200)
        summary = rec.stop()
    assert summary is not None and summary.ok
    frames = list(RecordingReader(tmp_path / "sim.bin"))
    assert len(frames) == summary.records
    assert all(f.valid for f in frames)
    assert {"active_capacitance", "group_capacitance"} <= set(summary.counts)


def test_demo_runs_against_the_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = runpy.run_path(str(Path(__file__).parent.parent / "examples" / "event_recorder_demo.py"))
    demo["main"](["--segments", "2", "--record", "0.3", "--pause", "0", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count("Starting capture") == 2 and out.count("Stopping Capture") == 2
    for i in range(2):
        manifest = RecordingReader(tmp_path / f"log{i}.bin").manifest
        assert manifest is not None and manifest["complete"] and manifest["records"] > 0


def test_write_error_ends_the_recording(tmp_path: Path) -> None:
    script = sample_events(10, image_every=2, image_size=20_000)
    server = ScriptedServer(script, then="repeat", interval=0.0005)
    with (
        server.threaded(),
        EventRecorder(server.uri, backoff=FAST) as rec,
        full_disk_after(256 * 1024),
    ):
        rec.start(tmp_path / "a.bin")
        wait_until(lambda: not rec.recording)  # ended by itself, the thread lives on
        assert rec.thread.is_alive() and rec.recorder.state == "error"
        summary = rec.stop()
    assert summary is not None and summary.stop_reason == "write error"
    assert "File too large" in (summary.error or "")
    manifest = RecordingReader(tmp_path / "a.bin").manifest
    assert manifest is not None and manifest["complete"] and manifest["stop_reason"] == "error"
