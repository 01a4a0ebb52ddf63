"""``cuecap sim``: the command, in process and as a real process stopped with Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from websockets.sync.client import connect

from engine.cli.main import main
from engine.recording.writer import RecordingWriter
from engine.sim.world import SimWorld

URI = re.compile(r"ws://127\.0\.0\.1:(\d+)")


def test_runs_for_a_duration_and_summarises() -> None:
    result = CliRunner().invoke(
        main,
        [
            "sim",
            "--port",
            "0",
            "--fps",
            "2",
            "--image-size",
            "64x48",
            "--duration",
            "2",
            "--speed",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert URI.match(lines[0]) and "seed 0" in lines[0] and "2 fps 64x48" in lines[0]
    assert re.search(r"stream ended: sent \d+ events .* to 0 clients", result.output)


def test_replay_serves_the_file_to_a_client(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    records = [raw for _, raw in SimWorld(seed=1, fps=0).events(0.0, 2.0)]
    with RecordingWriter(path) as writer:
        for i, raw in enumerate(records):
            writer.write(raw, 100.0 + i * 0.01)
    received: list[bytes] = []
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "-q",
            "sim",
            "--port",
            "0",
            "--replay",
            str(path),
            "--speed",
            "max",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = URI.search(process.stdout.readline()).group(1)  # type: ignore[union-attr]
        with connect(f"ws://127.0.0.1:{port}", max_size=None, proxy=None) as ws:
            for message in ws:
                received.append(message)  # type: ignore[arg-type]
        rest = process.stdout.read()
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()
    assert received == records
    assert f"sent {len(records)} events" in rest and "to 1 client" in rest


def test_ctrl_c_exits_cleanly_with_a_summary() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "-q", "sim", "--port", "0", "--fps", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = URI.search(process.stdout.readline()).group(1)  # type: ignore[union-attr]
        with connect(f"ws://127.0.0.1:{port}", max_queue=None, proxy=None) as ws:
            ws.recv(timeout=10)
            process.send_signal(signal.SIGINT)
        rest = process.stdout.read()
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()
    assert "stopped: sent" in rest and "to 1 client" in rest


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    for args, message in [
        (["--image-size", "big"], "is not like 1024x768"),
        (["--idle", "9-3"], "minimum is above the maximum"),
        (["--speed", "0"], "must be above 0"),
        (
            ["--replay", str(tmp_path / "x.bin"), "--fps", "3"],
            "--fps: only for the simulated world",
        ),
    ]:
        result = runner.invoke(main, ["sim", "--port", "0", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_a_missing_recording_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["sim", "--port", "0", "--replay", str(tmp_path / "none.bin")]
    )
    assert result.exit_code == 2  # bad input, as `cuecap log info none.bin` says it
    assert "none.bin: no such recording" in result.output
