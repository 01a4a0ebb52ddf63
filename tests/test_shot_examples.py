"""The seed's examples, with a configured camera, run as real scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("shot_saver_*.py"))


def test_all_five_seed_examples_are_here() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {
        "shot_saver_simple",
        "shot_saver_folder",
        "shot_saver_datetime",
        "shot_saver_status",
        "shot_saver_bytes",
    } <= names


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_and_saves(example: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUECAP_CAMERA")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, str(example)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "failed" not in done.stdout
    shots = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jpg"))
    expected = {
        "shot_saver_simple": 1,
        "shot_saver_folder": 2,
        "shot_saver_datetime": 1,
        "shot_saver_status": 1,
        "shot_saver_bytes": 0,
    }[example.stem]
    assert len(shots) == expected, shots
    for shot in shots:
        data = (tmp_path / shot).read_bytes()
        assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
    if example.stem == "shot_saver_status":
        assert [
            line.split("] ")[1] for line in done.stdout.splitlines() if line.startswith("[")
        ] == ["in_queue", "saving", "success"]
    if example.stem == "shot_saver_datetime":
        assert shots == ["shots/midnight_shot.jpg"]
    if example.stem == "shot_saver_bytes":
        assert "bytes of JPEG" in done.stdout and "grabbed" in done.stdout
