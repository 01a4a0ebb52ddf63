"""``cuecap record``: in-process with CliRunner, and as a process stopped by a signal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from scripted_server import ScriptedServer, sample_events

from engine.cli.main import main
from engine.recording.reader import RecordingReader

SCRIPT = sample_events(40, image_every=10, image_size=50_000)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["-q", "record", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_records_what_the_server_sent(tmp_path: Path) -> None:
    out = tmp_path / "log.bin"
    with ScriptedServer(SCRIPT).threaded() as server:
        code, stdout, _ = run(server.uri, str(out), "--count", str(len(SCRIPT)))
    assert code == 0
    reader = RecordingReader(out)
    assert [f.raw for f in reader] == SCRIPT
    assert reader.truncated_bytes == 0 and reader.estimated_times == 0
    manifest = reader.manifest
    assert manifest is not None and manifest["complete"]
    assert manifest["records"] == len(SCRIPT) and manifest["stop_reason"] == "count"
    assert manifest["counts"] == {
        "image": 4,
        "active_capacitance": 12,
        "group_capacitance": 12,
        "hv_regulator": 12,
    }
    assert manifest["recorder"] == "cuecap record" and manifest["source"] == server.uri
    assert f"{out}: 40 records" in stdout
    assert "  active_capacitance  12" in stdout and "  image               4" in stdout
    assert "reconnects: 0, gaps: 0" in stdout


def test_duration_and_json_summary(tmp_path: Path) -> None:
    out = tmp_path / "log.bin"
    with ScriptedServer(SCRIPT[:10], then="repeat", interval=0.001).threaded() as server:
        code, stdout, _ = run(server.uri, str(out), "--duration", "0.3", "--json")
    assert code == 0
    summary = json.loads(stdout)
    assert summary["stop_reason"] == "duration" and summary["error"] is None
    assert 0.3 <= summary["seconds"] < 10
    assert summary["records"] > 0
    assert summary["records"] == len(list(RecordingReader(out)))


def test_unwritable_file_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    code, _, stderr = run("ws://127.0.0.1:9", str(blocker / "log.bin"))
    assert code == 2
    assert f"cuecap: error: {blocker / 'log.bin'}: cannot create folder" in stderr


def test_existing_file_is_kept_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "log.bin"
    out.write_bytes(b"precious")
    code, _, stderr = run("ws://127.0.0.1:9", str(out), "--count", "3")
    assert code == 2 and "already exists; refusing to overwrite" in stderr
    assert out.read_bytes() == b"precious"
    with ScriptedServer(SCRIPT).threaded() as server:
        code, _, _ = run(server.uri, str(out), "--count", "3", "--overwrite")
    assert code == 0 and [f.raw for f in RecordingReader(out)] == SCRIPT[:3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://x", "f.bin"], "is not a websocket URI"),
        (["ws://x", "f.bin", "--max-size", "lots"], "is not a size"),
        (["ws://x", "f.bin", "--duration", "0"], "--duration"),
    ],
)
def test_bad_arguments_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, stderr = run(*args)
    assert code == 2 and message in stderr
    assert not (tmp_path / "f.bin").exists()


def test_server_never_there_exits_1_and_keeps_a_complete_file(tmp_path: Path) -> None:
    with ScriptedServer([]).threaded() as server:
        uri = server.uri  # nothing listens after this
    out = tmp_path / "log.bin"
    code, stdout, _ = run(uri, str(out), "--max-retries", "1", "--retry-initial", "0.01")
    assert code == 1
    assert "error: " in stdout and "gave up after 1 retries" in stdout
    manifest = RecordingReader(out).manifest
    assert (
        manifest is not None and manifest["complete"] and manifest["stop_reason"] == "source lost"
    )
    assert "connection refused" in manifest["extra"]["error"]


def _wait_for_records(path: Path, minimum_bytes: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while not (path.exists() and path.stat().st_size >= minimum_bytes):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no records arrived"
        time.sleep(0.01)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_across_a_server_restart(tmp_path: Path, signum: int) -> None:
    """The server goes away mid-recording and comes back: one file, one gap, exit 0."""
    out = tmp_path / "log.bin"
    server = ScriptedServer(SCRIPT[:10], then="repeat", interval=0.001)
    with server.threaded():
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine",
                "record",
                server.uri,
                str(out),
                "--retry-initial",
                "0.01",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for_records(out, 2000, proc)  # flushed within half a second, while it runs
            server.restart()
            _wait_for_records(out, out.stat().st_size + 2000, proc)
            proc.send_signal(signum)
            stdout, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, stderr
    assert f"{signal.Signals(signum).name}: stopping" in stderr
    assert "(stopped: stopped)" in stdout and "reconnects: 1, gaps: 1" in stdout
    reader = RecordingReader(out)
    frames = list(reader)
    assert reader.truncated_bytes == 0 and frames
    assert all(f.raw in SCRIPT[:10] for f in frames)
    manifest = reader.manifest
    assert manifest is not None and manifest["complete"] and manifest["records"] == len(frames)
    assert len(manifest["gaps"]) == 1 and manifest["stop_reason"] == "stopped"
