"""``cuecap run``, ``check``, ``replay`` and ``schema`` from the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import run_cli as cli

from engine.recording.reader import RecordingReader

REPO = Path(__file__).resolve().parents[1]


def test_check_explains_the_default_rules() -> None:
    code, out, _ = cli("check", cwd=REPO)
    assert code == 0
    assert "sim: simulator (seed 1" in out
    assert "bench: stream: image frames of source sim" in out
    assert "moves: source sim, activity: electrodes, capacitance step" in out
    assert "when every 5s" in out and "do   shot from bench" in out
    assert "when event recording.started (recorder=moves)" in out
    assert out.count("    next: ") == 1
    assert out.rstrip().endswith("ok: the rule files are valid")


@pytest.mark.parametrize(
    "example", sorted((REPO / "examples" / "rules").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_example_rule_set_is_valid(example: Path) -> None:
    code, out, err = cli("check", str(example))
    assert code == 0, err
    assert "ok: the rule files are valid" in out


def test_check_lists_every_error_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent(
            """\
            rules:
              a:
                when: {type: schedule, cron: "* * *"}
                do: {type: shot, cameras: nowhere}
              b:
                when: {type: schedule, every: 5s}
                do: {type: shot, cameras: nowhere}
            """
        ),
        encoding="utf-8",
    )
    code, out, err = cli("check", str(bad))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"{bad}:3:34: cron: bad cron expression '* * *'")
    assert lines[1] == f"{bad}:7:31: unknown camera 'nowhere' (known cameras: none declared)"
    assert lines[2] == "2 errors; nothing was started"


def test_check_without_rules_here_says_what_to_do(tmp_path: Path) -> None:
    code, _, err = cli("check", cwd=tmp_path)
    assert code == 2
    assert "no rules/ folder here" in err


def test_the_published_schema_is_the_current_one() -> None:
    code, out, _ = cli("schema")
    assert code == 0
    published = (REPO / "rules" / "cuecap.schema.json").read_text(encoding="utf-8")
    assert out == published, "a config model changed: cuecap schema -o rules/cuecap.schema.json"
    schema = json.loads(out)
    assert set(schema["properties"]) == {
        "settings", "sources", "cameras", "recorders", "rules", "targets"
    }  # fmt: skip
    assert schema["$defs"]["Rule"]["additionalProperties"] is False


def test_run_fast_on_the_default_rules_prints_a_summary(tmp_path: Path) -> None:
    code, out, _ = cli(
        "run", str(REPO / "rules"), "--fast", "--for", "30", "--no-http",
        "--recordings", str(tmp_path / "rec"), "--shots", str(tmp_path / "shots"),
    )  # fmt: skip
    assert code == 0
    assert out.startswith("ran 30.0 s (ran for 30 s); sim: ")
    segments = int(out.split("segments recorded: ")[1].split("\n")[0])
    assert segments >= 2
    assert len(list((tmp_path / "rec" / "moves").glob("*.bin"))) == segments
    shots = len(list((tmp_path / "shots").glob("*.jpg")))
    assert f"shots taken: {shots}, failed: 0" in out
    timelapse = int(out.split("  timelapse: ")[1].split(" ")[0])
    assert timelapse in (5, 6)  # every 5 s on the clock within [start, start + 30)


SIGNAL_RULES = """\
settings:
  recordings: rec
  stop_timeout: 60
sources:
  sim: {type: simulator, seed: 4, fps: 0, first_burst_delay: 0.2, moves_per_burst: [6, 6]}
recorders:
  moves:
    activity: [{type: message, types: [electrode_state]}]
    post_roll: 30s
"""


def run_until_recording(tmp_path: Path) -> subprocess.Popen[str]:
    """``cuecap run`` in ``tmp_path`` as a real process, returned once a recording is open."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "--no-watch", "--no-http"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not list(tmp_path.glob("rec/moves/*.bin")):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            raise AssertionError(f"no recording started (exit {process.returncode}): {err}")
        time.sleep(0.05)
    return process


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_cleanly_closing_every_recording(
    tmp_path: Path, sig: signal.Signals
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "rules.yaml").write_text(SIGNAL_RULES, encoding="utf-8")
    process = run_until_recording(tmp_path)
    try:
        process.send_signal(sig)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert f"stopping: {sig.name} received" in err
    assert "segments recorded: 1" in out
    (path,) = tmp_path.glob("rec/moves/*.bin")
    manifest = RecordingReader(path).manifest
    assert manifest["complete"] is True
    assert manifest["stop_reason"] == "shutdown"
    assert manifest["records"] == len(list(RecordingReader(path))) > 0


def test_a_second_signal_cuts_running_actions_short_but_closes_recordings(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    slow = f"""\
rules:
  slow:
    when: {{type: event, event: engine.started}}
    do: {{type: run, argv: ["{sys.executable}", -c, "import time; time.sleep(60)"], timeout: 120}}
"""
    (tmp_path / "rules" / "rules.yaml").write_text(SIGNAL_RULES, encoding="utf-8")
    (tmp_path / "rules" / "slow.yaml").write_text(slow, encoding="utf-8")
    process = run_until_recording(tmp_path)
    try:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert process.poll() is None  # waiting for the slow action, up to stop_timeout
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "SIGTERM again: stopping now" in err
    (path,) = tmp_path.glob("rec/moves/*.bin")
    manifest = RecordingReader(path).manifest
    assert manifest["complete"] is True
    assert manifest["stop_reason"] == "aborted"
