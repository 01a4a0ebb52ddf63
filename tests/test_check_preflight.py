"""``cuecap check`` warns about what will fail at first use; ``--probe`` tries everything once."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.rules.loader import load_rules
from engine.rules.preflight import warnings
from engine.shots.testing import HttpCameraServer

CAMERAS = """\
cameras:
  yard:
    type: command
    argv: [ffmpeg, -loglevel, error, -rtsp_transport, tcp,
           -i, "rtsp://viewer:{password}@192.168.1.21/stream1",
           -frames:v, "1", -y, "{output}"]
    secret_env: {password: YARD_PASSWORD}
  gate:
    type: http
    url: http://192.168.1.20/snap.jpg
    auth: {type: digest, username: admin, password_env: GATE_PASSWORD}
rules:
  hook:
    when: {type: schedule, every: 1min}
    do: {type: run, argv: [./notify.sh, "{rule}"], cwd: /nonexistent}
"""


def load(tmp_path: Path, text: str = CAMERAS) -> object:
    path = tmp_path / "cams.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules([path], env={})


def test_unset_and_empty_secrets_and_missing_programs_are_named(tmp_path: Path) -> None:
    rules = load(tmp_path)
    found = [str(w) for w in warnings(rules, {"GATE_PASSWORD": " "}, lambda program: None)]
    path = tmp_path / "cams.yaml"
    assert found == [
        f"{path}:2:3: camera 'yard': its {{password}} comes from $YARD_PASSWORD, which is not "
        "set; every shot will fail until it is set",
        f"{path}:2:3: camera 'yard': program 'ffmpeg' is not on PATH "
        "(install it, e.g. apt-get install ffmpeg)",
        f"{path}:8:3: camera 'gate': its password comes from $GATE_PASSWORD, which is empty; "
        "every shot will fail until it is set",
        f"{path}:13:3: rule 'hook': run: program /nonexistent/./notify.sh does not exist",
    ]


def test_nothing_to_say_when_the_machine_has_it_all(tmp_path: Path) -> None:
    script = tmp_path / "notify.sh"
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    rules = load(tmp_path, CAMERAS.replace("/nonexistent", str(tmp_path)))
    env = {"GATE_PASSWORD": "pw", "YARD_PASSWORD": "pw"}
    assert warnings(rules, env, lambda program: f"/usr/bin/{program}") == []
    script.chmod(0o644)
    [problem] = warnings(rules, env, lambda program: f"/usr/bin/{program}")
    assert problem.message.endswith("notify.sh is not executable")


def run_check(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_check_flags_the_unset_secret_and_the_missing_ffmpeg(tmp_path: Path) -> None:
    """With an empty PATH, ffmpeg is missing whatever this machine has installed."""
    (tmp_path / "bin").mkdir()
    load(tmp_path)  # writes cams.yaml
    code, out, err = run_check(
        str(tmp_path / "cams.yaml"),
        env={"PATH": str(tmp_path / "bin"), "GATE_PASSWORD": None, "YARD_PASSWORD": "x"},  # type: ignore[dict-item]
    )
    assert code == 0
    assert "warning: camera 'yard': program 'ffmpeg' is not on PATH" in err
    assert "warning: camera 'gate': its password comes from $GATE_PASSWORD, which is not set" in err
    assert "YARD_PASSWORD" not in err
    assert out.rstrip().endswith("ok: the rule files are valid (3 warnings above)")


def test_a_stream_camera_without_its_source_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("cameras:\n  scope: {type: stream, source: pd}\n", "utf-8")
    code, _, err = run_check(str(tmp_path / "c.yaml"), env={})
    assert code == 2
    assert "c.yaml:2:33: unknown source 'pd' (known sources: none declared)" in err


PROBED = """\
sources:
  sim: {{type: simulator, seed: 1, fps: 5, first_burst_delay: 0}}
cameras:
  bench: {{type: stream, source: sim}}
  gate: {{type: http, url: "{ok}"}}
  broken: {{type: http, url: "{broken}"}}
  script:
    type: command
    argv: ["{python}", -c, "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())", "{jpeg}"]
"""


@pytest.fixture
def camera() -> object:
    with HttpCameraServer() as server:
        yield server


def test_probe_tries_each_source_and_camera_once(tmp_path: Path, camera: HttpCameraServer) -> None:
    jpeg = tmp_path / "frame.jpg"
    jpeg.write_bytes(camera.jpeg)
    (tmp_path / "p.yaml").write_text(
        PROBED.format(
            ok=camera.url(),
            broken=camera.url("/status/503"),
            python=sys.executable,
            jpeg=jpeg,
        ),
        encoding="utf-8",
    )
    code, out, err = run_check(
        str(tmp_path / "p.yaml"), "--probe", "--timeout", "3", env={"PATH": os.environ["PATH"]}
    )
    assert code == 1, err
    lines = [line for line in out.splitlines() if line.startswith("probe ")]
    assert lines[0].startswith("probe source sim: ok, first message (")
    assert lines[1].startswith("probe camera bench: ok, ")  # a frame the source just sent
    assert lines[2].startswith(f"probe camera gate: ok, {len(camera.jpeg)} bytes of JPEG in ")
    assert lines[3].startswith("probe camera broken: FAILED, ") and "503" in lines[3]
    assert lines[4].startswith(f"probe camera script: ok, {len(camera.jpeg)} bytes of JPEG")
    assert camera.requests.count("/status/503") == 1  # one try, no retries
    assert "cuecap: error: 1 of 5 probes failed" in err
    assert not list(tmp_path.rglob("shots"))  # nothing written


def test_a_stream_camera_on_a_source_without_frames(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        "sources:\n  sim: {type: simulator, fps: 0}\ncameras:\n  bench: {type: stream, source: sim}\n",
    )
    [problem] = warnings(rules, {}, lambda program: None)
    assert problem.message == (
        "camera 'bench': its source 'sim' is a simulator with fps: 0, which sends no camera "
        "frames; every shot will fail"
    )
    assert warnings(load(tmp_path, "sources:\n  sim: {type: simulator}\n"), {}, str) == []


def test_probe_with_nothing_to_try(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("settings: {}\n", encoding="utf-8")
    code, out, _ = run_check(str(tmp_path / "r.yaml"), "--probe", env={})
    assert code == 0 and out.rstrip().endswith("probe: no sources or cameras")
