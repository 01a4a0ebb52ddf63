"""``cuecap shot``: one shot from the command line, ad hoc or from rule files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.core.frame import Frame
from engine.shots.testing import HttpCameraServer


@pytest.fixture
def cam() -> Any:
    with HttpCameraServer(auth=("digest", "admin", "pw123")) as s:
        yield s


def run(*args: Any, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def test_ad_hoc_url_to_a_file_and_to_stdout(tmp_path: Path, cam: HttpCameraServer) -> None:
    out = tmp_path / "sub" / "door.jpg"
    args = (
        "shot",
        "door",
        "--url",
        cam.url(),
        "--auth",
        "digest",
        "--user",
        "admin",
        "--password-env",
        "DOOR_PW",
    )
    result = run(*args, "-o", out, env={"DOOR_PW": "pw123"})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out) and out.read_bytes() == cam.jpeg
    result = run(*args, "-o", "-", env={"DOOR_PW": "pw123"})
    assert result.exit_code == 0 and result.stdout_bytes == cam.jpeg


def test_failure_exits_1_with_the_reason_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "x.jpg"
    with HttpCameraServer() as plain:
        result = run("shot", "door", "--url", plain.url("/html"), "--tries", "1", "-o", out)
    assert result.exit_code == 1
    assert "error:" in result.stderr and "not an image: an HTML page" in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_camera_from_rule_files_into_its_folder(tmp_path: Path) -> None:
    with HttpCameraServer() as s:
        rules = tmp_path / "cams.yaml"
        rules.write_text(
            f"""
settings:
  shots:
    folder: {tmp_path / "shots"}
    file_name: "{{camera}}-{{seq}}.jpg"
cameras:
  gate: {{type: http, url: "{s.url()}"}}
"""
        )
        result = run("shot", "gate", rules)
        assert result.exit_code == 0, result.output
        assert Path(result.output.strip()) == tmp_path / "shots" / "gate-1.jpg"
        folder = tmp_path / "into"
        folder.mkdir()
        result = run("shot", "gate", rules, "-o", folder)
        assert Path(result.output.strip()) == folder / "gate-1.jpg"
        result = run("shot", "nope", rules)
        assert (
            result.exit_code == 2
            and "no camera named 'nope'" in result.stderr
            and "gate" in result.stderr
        )


def test_bad_input_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "cameras:\n  gate: {type: http, url: 'http://c/x', file_name: '{camera.__class__}'}\n"
    )
    result = run("shot", "gate", bad)
    assert result.exit_code == 2 and "bad.yaml:2" in result.stderr and "attribute" in result.stderr
    result = run("shot", "gate", "--url", "http://user:pw@cam/x")
    assert result.exit_code == 2 and "credentials in the URL" in result.stderr
    result = run("shot", "gate", "--url", "http://cam/x", "--at", "yesterday")
    assert result.exit_code == 2 and "--at" in result.stderr


def test_stream_camera_shoots_a_past_frame_from_its_recordings(tmp_path: Path) -> None:
    from engine.recording.writer import RecordingWriter
    from engine.sim import SimWorld

    start = 1_700_000_000.0
    folder = tmp_path / "recordings"
    folder.mkdir()
    writer = RecordingWriter(folder / "run.bin", source="sim", opened_at=start)
    images = {}
    for t, raw in SimWorld(seed=1, fps=5, image_size=(64, 48)).events(start, until=start + 2):
        writer.write(raw, t)
        frame = Frame(raw, t, 0)
        if frame.kind == "image":
            images[t] = frame.message.image_data
    writer.close("done", start + 2)
    rules = tmp_path / "cams.yaml"
    rules.write_text(
        "sources:\n  sim: {type: simulator}\ncameras:\n  bench: {type: stream, source: sim}\n"
    )
    result = run("shot", "bench", rules, "--at", f"@{start + 1}")
    assert result.exit_code == 2 and "give the camera a 'recordings:' folder" in result.stderr

    rules.write_text(
        "sources:\n  sim: {type: simulator}\n"
        f"cameras:\n  bench: {{type: stream, source: sim, recordings: '{folder}'}}\n"
    )
    out = tmp_path / "past.jpg"
    result = run("shot", "bench", rules, "--at", f"@{start + 1}", "-o", out)
    assert result.exit_code == 0, result.output
    nearest = min(images, key=lambda t: abs(t - (start + 1)))
    assert out.read_bytes() == images[nearest]


def test_stream_camera_now_takes_the_first_frame_its_source_sends(tmp_path: Path) -> None:
    rules = tmp_path / "cams.yaml"
    rules.write_text(
        "sources:\n  sim: {type: simulator, seed: 2, fps: 5, image_size: [64, 48]}\n"
        "cameras:\n  bench: {type: stream, source: sim}\n"
    )
    out = tmp_path / "now.jpg"
    result = run("shot", "bench", rules, "-o", out)
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")


def test_stream_camera_whose_source_is_down_says_so(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    rules = tmp_path / "cams.yaml"
    rules.write_text(
        f"sources:\n  pd: {{type: websocket, url: 'ws://127.0.0.1:{port}'}}\n"
        "cameras:\n  scope: {type: stream, source: pd, timeout: 0.5}\n"
    )
    result = run("shot", "scope", rules)
    assert result.exit_code == 1
    assert "camera 'scope': source 'pd': no message in 0.5 s" in result.stderr


def test_the_shipped_camera_as_the_readme_shows(tmp_path: Path, monkeypatch: Any) -> None:
    """`make demo`, then `cuecap shot bench` and `cuecap shot bench --at` a recorded moment."""
    import json
    import shutil
    from datetime import datetime

    shutil.copytree(Path(__file__).resolve().parents[1] / "rules", tmp_path / "rules")
    monkeypatch.chdir(tmp_path)
    assert run("run", "--for", "8", "--fast", "--no-http").exit_code == 0
    [manifest] = sorted(tmp_path.glob("recordings/moves/*-001.bin.json"))
    segment = json.loads(manifest.read_text())
    middle = (segment["first_time"] + segment["last_time"]) / 2
    moment = datetime.fromtimestamp(middle).isoformat(timespec="seconds")  # local, as typed
    result = run("shot", "bench", "--at", moment)
    assert result.exit_code == 0, result.output
    past = Path(result.stdout.strip())
    assert past.is_file() and past.is_relative_to(tmp_path / "shots")
    result = run("shot", "bench")
    assert result.exit_code == 0, result.output
    now = Path(result.stdout.strip())
    assert now.read_bytes().startswith(b"\xff\xd8") and now != past
