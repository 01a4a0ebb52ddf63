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
    for extra in ((), ("--at", f"@{start + 1}")):
        result = run("shot", "bench", rules, *extra)
        assert result.exit_code == 2 and "give the camera a 'recordings:' folder" in result.stderr

    rules.write_text(
        "sources:\n  sim: {type: simulator}\n"
        f"cameras:\n  bench: {{type: stream, source: sim, recordings: '{folder}'}}\n"
    )
    result = run("shot", "bench", rules)
    assert result.exit_code == 2 and "use --at" in result.stderr
    out = tmp_path / "past.jpg"
    result = run("shot", "bench", rules, "--at", f"@{start + 1}", "-o", out)
    assert result.exit_code == 0, result.output
    nearest = min(images, key=lambda t: abs(t - (start + 1)))
    assert out.read_bytes() == images[nearest]
