"""``cuecap init`` and what a ``pip install`` brings: a new user's first minutes, end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import run_cli as cuecap

from engine.recording.reader import RecordingReader

ROOT = Path(__file__).resolve().parent.parent


def test_init_then_run_records_and_shoots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cuecap("init")
    assert code == 0, err
    assert out.splitlines()[:2] == ["wrote rules/cuecap.yaml", "wrote rules/cuecap.schema.json"]
    text = (tmp_path / "rules" / "cuecap.yaml").read_text("utf-8")
    assert text.startswith("# yaml-language-server: $schema=cuecap.schema.json\n")
    from engine.rules.schema import schema_text

    assert (tmp_path / "rules" / "cuecap.schema.json").read_text("utf-8") == schema_text()
    code, out, err = cuecap("run", "--for", "12", "--fast", "--no-http")
    assert code == 0, err
    recordings = sorted(tmp_path.glob("recordings/moves/*.bin"))
    assert recordings and all(len(list(RecordingReader(p))) > 0 for p in recordings)
    shots = sorted(tmp_path.glob("shots/**/*.jpg"))
    assert len(shots) >= 2 and all(s.read_bytes().startswith(b"\xff\xd8") for s in shots)


def test_init_never_overwrites_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "cuecap.yaml").write_text("mine\n", encoding="utf-8")
    code, out, err = cuecap("init", "lab")
    assert code == 2 and out == ""
    assert "lab/cuecap.yaml already exists; nothing was written (use -f/--force" in err
    assert (tmp_path / "lab" / "cuecap.yaml").read_text("utf-8") == "mine\n"
    assert not (tmp_path / "lab" / "cuecap.schema.json").exists()
    code, out, _ = cuecap("init", "lab", "--force", "--examples")
    assert code == 0
    assert "next: cuecap check lab" in out
    assert (tmp_path / "lab" / "cuecap.yaml").read_text("utf-8") != "mine\n"
    assert (tmp_path / "examples" / "shot_saver_simple.py").is_file()
    assert (tmp_path / "examples" / "rules" / "lab-timelapse.yaml").is_file()


def test_init_into_a_place_that_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    code, _, err = cuecap("init", str(tmp_path / "file" / "rules"))
    assert code == 2 and "cuecap: error: cannot write" in err


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    [built] = out.glob("cuecap-*.whl")
    return built


def test_the_wheel_carries_the_rules_examples_and_seed_modules(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("rules", "examples"):
        for path in (ROOT / shipped).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                name = f"engine/_shipped/{path.relative_to(ROOT).as_posix()}"
                assert name in names, f"{name} is not in the wheel"
    assert {"shot_saver.py", "event_recorder.py", "engine/cli/init.py"} <= names


def test_a_pip_install_inits_from_its_own_copy(wheel: Path, tmp_path: Path) -> None:
    """Installed elsewhere (not this checkout), init copies the wheel's rules and they run."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import engine, shot_saver, event_recorder; from engine.shipped import shipped; "
        "print(engine.__file__); print(shipped('rules'))"
    )
    where = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert where == [str(target / "engine" / "__init__.py"), str(target / "engine/_shipped/rules")]
    done = subprocess.run(
        [sys.executable, "-m", "engine", "init"], cwd=work, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (work / "rules" / "cuecap.yaml").read_bytes() == (
        ROOT / "rules" / "cuecap.yaml"
    ).read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "engine", "check"], cwd=work, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and "ok: the rule files are valid" in done.stdout, done.stderr
