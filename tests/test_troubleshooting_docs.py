"""The messages docs/troubleshooting.md quotes are the ones cuecap prints."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from logfixtures import image, jpeg, write_recording

from engine.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")

CAMS = """\
cameras:
  gate:
    type: http
    url: http://127.0.0.1:9/snap.jpg
    auth: {type: digest, username: admin, password_env: GATE_PASSWORD}
"""
BAD = """\
rules:
  tl:
    whn: {type: schedule, every: 10min}
    do: {type: shot, cameras: gate}
"""


def cuecap(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, list(args), env=env, catch_exceptions=False, prog_name="cuecap"
    )
    return result.exit_code, result.stdout + result.stderr


def quoted(output: str) -> list[str]:
    """The lines of ``output`` that are not log lines (those carry a time stamp)."""
    return [line for line in output.splitlines() if line and not line[:4].isdigit()]


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CUECAP_RULES", raising=False)
    monkeypatch.delenv("GATE_PASSWORD", raising=False)
    return tmp_path


def test_no_rules_folder(lab: Path) -> None:
    code, out = cuecap("run")
    assert code == 2 and out.strip() in DOC


def test_rule_file_errors(lab: Path) -> None:
    (lab / "rules").mkdir()
    (lab / "rules" / "lab.yaml").write_text(BAD, encoding="utf-8")
    code, out = cuecap("check")
    assert code == 2
    lines = out.strip().splitlines()
    assert lines[-1] in DOC and lines[-2] in DOC


def test_camera_messages(lab: Path) -> None:
    assert cuecap("init")[0] == 0
    (lab / "rules" / "cams.yaml").write_text(CAMS, encoding="utf-8")
    code, out = cuecap("shot", "gate")
    assert code == 1 and quoted(out) and all(line in DOC for line in quoted(out))
    code, out = cuecap("check")
    [warning] = [line for line in out.splitlines() if "warning:" in line]
    assert code == 0 and warning in DOC
    code, out = cuecap("shot", "gaet")
    assert code == 2 and out.strip() in DOC
    script = "from shot_saver import ShotSaver\nShotSaver().save('uR76TlcA_O4Yazs8u')\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1] in DOC


def test_an_unreachable_purpledrop(lab: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    code, out = cuecap("record", f"ws://127.0.0.1:{port}", "x.bin", "--max-retries", "1")
    assert code == 1
    [line] = [line for line in out.splitlines() if line.startswith("error:")]
    assert line.replace(f":{port}:", ":9:") in DOC


def test_a_range_that_holds_nothing_and_a_mistyped_command(lab: Path) -> None:
    t0 = 1_700_000_000.0
    records = [(t0 + i * 0.5, image(t0 + i * 0.5, jpeg(i))) for i in range(20)]
    records.append((t0 + 10.012, image(t0 + 10.012, jpeg(20))))
    write_recording(lab / "run.bin", records)
    code, out = cuecap("log", "video", "run.bin", "-o", "run.mp4", "--from", "1:00")
    assert code == 2 and out.strip() in DOC
    code, out = cuecap("sht")
    assert code == 2 and out.strip().splitlines()[-1] in DOC
