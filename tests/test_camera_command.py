"""Command cameras: real programs (Python with Pillow, PyAV's FFmpeg), killed on timeout."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from procfs import gone

from engine.shots import CaptureError, CaptureRequest, ShotsConfig, ShotService, camera_config
from engine.shots.backends.command import CommandCamera

PY = sys.executable

WRITE_JPEG = """
import sys
from PIL import Image
Image.new("RGB", (16, 12), "blue").save(sys.argv[1], "JPEG")
"""
STDOUT_JPEG = """
import io, sys
from PIL import Image
out = io.BytesIO()
Image.new("RGB", (16, 12), "green").save(out, "JPEG")
sys.stdout.buffer.write(out.getvalue())
"""
HANG = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(sys.argv[1], "w") as f:
    f.write(f"{child.pid}")
time.sleep(60)
"""
FAIL = """
import sys
print("connecting to", sys.argv[1:], file=sys.stderr)
print("Connection refused", file=sys.stderr)
sys.exit(3)
"""
# What `ffmpeg -f lavfi -i testsrc -frames:v 1 OUT.jpg` does, through PyAV's bundled FFmpeg.
FFMPEG_GRAB = """
import sys, av
source = av.open("testsrc=size=64x48:rate=5", format="lavfi")
frame = next(source.decode(video=0))
out = av.open(sys.argv[1], "w", format="image2")
stream = out.add_stream("mjpeg")
stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuvj420p"
for packet in stream.encode(frame.reformat(format="yuvj420p")):
    out.mux(packet)
for packet in stream.encode():
    out.mux(packet)
out.close()
"""


def script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def request(live: bool = True, time: float | None = None, timeout: float = 5.0) -> CaptureRequest:
    return CaptureRequest(
        camera="cam", task="t", time=time, live=live, figures=False, timeout=timeout
    )


async def capture(argv: list[str], env: dict[str, str] | None = None, **kw: Any) -> bytes:
    cfg = camera_config({"type": "command", "argv": argv, **kw})
    return await CommandCamera("cam", cfg, environ=env or {}).capture(request())


async def test_program_writes_output_file(tmp_path: Path) -> None:
    data = await capture([PY, script(tmp_path, "w.py", WRITE_JPEG), "{output}"])
    assert data.startswith(b"\xff\xd8") and data.rstrip(b"\0").endswith(b"\xff\xd9")


async def test_program_stdout_is_the_image_without_output_placeholder(tmp_path: Path) -> None:
    data = await capture([PY, script(tmp_path, "s.py", STDOUT_JPEG)])
    assert data.startswith(b"\xff\xd8")


FFMPEG_ARGVS = [pytest.param("pyav", id="pyav-ffmpeg")]
if shutil.which("ffmpeg"):
    FFMPEG_ARGVS.append(pytest.param("ffmpeg", id="ffmpeg-binary"))


@pytest.mark.parametrize("kind", FFMPEG_ARGVS)
async def test_ffmpeg_grabs_one_frame(tmp_path: Path, kind: str) -> None:
    if kind == "ffmpeg":
        argv = [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48",
            "-frames:v",
            "1",
            "-y",
            "{output}",
        ]
    else:
        argv = [PY, script(tmp_path, "grab.py", FFMPEG_GRAB), "{output}"]
    import io

    from PIL import Image

    data = await capture(argv)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.size == (64, 48)


async def test_failure_reports_exit_status_and_last_stderr_line_with_secrets_hidden(
    tmp_path: Path,
) -> None:
    argv = [PY, script(tmp_path, "f.py", FAIL), "rtsp://admin:{password}@cam/1"]
    with pytest.raises(CaptureError) as info:
        await capture(argv, env={"CAM_PASS": "hunter2"}, secret_env={"password": "CAM_PASS"})
    assert info.value.reason.endswith("exited with status 3: Connection refused")
    with pytest.raises(CaptureError) as info:
        await capture(
            [
                PY,
                "-c",
                "import sys; print(sys.argv[1], file=sys.stderr); sys.exit(1)",
                "{password}",
            ],
            env={"CAM_PASS": "hunter2"},
            secret_env={"password": "CAM_PASS"},
        )
    assert "hunter2" not in info.value.reason and "***" in info.value.reason


async def test_missing_program_and_missing_secret_are_permanent(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="program not found: no-such-grabber") as info:
        await capture(["no-such-grabber", "{output}"])
    assert not info.value.retryable
    with pytest.raises(CaptureError, match="CAM_PASS") as info:
        await capture([PY, "-c", "pass", "{password}"], secret_env={"password": "CAM_PASS"})
    assert not info.value.retryable


async def test_program_that_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="exited without writing the shot"):
        await capture([PY, "-c", "pass", "{output}"])


async def test_archive_argv_gets_the_time_and_live_without_archive_refuses(tmp_path: Path) -> None:
    record = tmp_path / "args.txt"
    grab = script(
        tmp_path, "a.py", WRITE_JPEG + f"\nopen({str(record)!r}, 'w').write(sys.argv[2])\n"
    )
    cfg = camera_config(
        {
            "type": "command",
            "argv": [PY, grab, "{output}", "live"],
            "archive_argv": [PY, grab, "{output}", "{epoch}"],
        }
    )
    cam = CommandCamera("cam", cfg)
    await cam.capture(request(live=False, time=1234.5))
    assert record.read_text() == "1234"
    await cam.capture(request())
    assert record.read_text() == "live"
    plain = CommandCamera(
        "cam", camera_config({"type": "command", "argv": [PY, grab, "{output}", "x"]})
    )
    with pytest.raises(CaptureError, match="no archive_argv"):
        await plain.capture(request(live=False, time=1.0))


async def test_timeout_kills_the_program_and_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    cameras = {
        "slow": {
            "type": "command",
            "argv": [PY, script(tmp_path, "h.py", HANG), str(pids)],
            "timeout": 1.0,
        }
    }
    settings = ShotsConfig(folder=str(tmp_path / "shots"), max_tries=1)
    async with ShotService(cameras, settings) as service:
        result = await service.shoot("slow")
    assert result == "error" and "gave no shot within 1 s" in result.reason
    child = int(pids.read_text())
    deadline = time.monotonic() + 2
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gone(child)
    assert not (tmp_path / "shots").exists() or not any((tmp_path / "shots").rglob("*.jpg"))
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("cuecap-shot-*/shot.jpg"))
