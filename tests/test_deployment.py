"""deploy/cuecap.service and deploy/Containerfile start cuecap as they say, and stop it cleanly.

What is tested, and what cannot be here:

- The unit file passes ``systemd-analyze verify``. Its ``ExecStart`` line is
  run as systemd would run it (its ``WorkingDirectory``, ``Environment``,
  ``KillSignal``), with the three install paths (``/opt/cuecap``,
  ``/etc/cuecap``, ``/var/lib/cuecap``) moved into a temporary folder: it
  records, and on SIGTERM it closes the recording and exits 0 within
  ``TimeoutStopSec``. systemd itself does not start it (no systemd runs here).
- The container file's commands after the install (``ENV``, the ``RUN``
  that writes the starter rules and checks them, ``WORKDIR``, ``CMD``,
  ``STOPSIGNAL``) run in a fresh virtual environment holding the wheel of
  this checkout, with the same path moves. Docker cannot run here, so the
  image is not built; the install ``RUN`` (pip from the index) is not run by
  the suite either, since tests use no network.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.recording.reader import RecordingReader

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "cuecap.service"
CONTAINER = ROOT / "deploy" / "Containerfile"
DOC = ROOT / "docs" / "deployment.md"
BIN = Path(sys.executable).parent


def moved(text: str, tmp_path: Path, cuecap_bin: Path = BIN) -> str:
    """The install paths of the files, moved under ``tmp_path`` (and the venv's bin)."""
    return (
        text.replace("/opt/cuecap/bin", str(cuecap_bin))
        .replace("/etc/cuecap", str(tmp_path / "etc"))
        .replace("/var/lib/cuecap", str(tmp_path / "state"))
    )


def unit_service(text: str) -> dict[str, list[str]]:
    """The ``[Service]`` keys of a unit file (a key may repeat, as systemd allows)."""
    section, out = "", {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def stop_after_recording(
    argv: list[str], cwd: Path, env: dict[str, str], sig: signal.Signals, timeout: float
) -> tuple[int, str, str]:
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not list(cwd.glob("recordings/moves/*.bin")):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, err = process.communicate()
                raise AssertionError(f"no recording started (exit {process.returncode}): {err}")
            time.sleep(0.05)
        process.send_signal(sig)
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


def assert_closed_recording(cwd: Path) -> None:
    [path] = cwd.glob("recordings/moves/*.bin")
    manifest = RecordingReader(path).manifest
    assert manifest is not None and manifest["complete"] and manifest["stop_reason"] == "shutdown"


def test_the_docs_show_the_files_as_shipped() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert f"```ini\n{UNIT.read_text(encoding='utf-8')}```" in text
    assert f"```dockerfile\n{CONTAINER.read_text(encoding='utf-8')}```" in text


def test_systemd_verifies_the_unit(tmp_path: Path) -> None:
    unit = tmp_path / "cuecap.service"
    unit.write_text(moved(UNIT.read_text(encoding="utf-8"), tmp_path), encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


def test_the_units_exec_start_records_and_stops_on_its_kill_signal(tmp_path: Path) -> None:
    service = unit_service(moved(UNIT.read_text(encoding="utf-8"), tmp_path))
    cwd = Path(service["WorkingDirectory"][0])
    cwd.mkdir()  # StateDirectory= makes it
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    for assignment in service["Environment"]:
        key, _, value = assignment.partition("=")
        env[key] = value
    assert service["EnvironmentFile"] == [f"-{tmp_path / 'etc'}/secrets.env"]  # "-": optional
    rules = Path(env["CUECAP_RULES"])
    assert subprocess.run([str(BIN / "cuecap"), "init", str(rules)], check=False).returncode == 0
    sig = signal.Signals[service["KillSignal"][0]]
    code, out, err = stop_after_recording(
        shlex.split(service["ExecStart"][0]), cwd, env, sig, float(service["TimeoutStopSec"][0])
    )
    assert code == 0, err
    assert f"cuecap run: {rules}/cuecap.yaml" in err  # the start-up lines, for the journal
    assert f"stopping: {sig.name} received" in err and "segments recorded: 1" in out
    assert_closed_recording(cwd)


def container_steps(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    steps = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, rest = line.strip().partition(" ")
            steps.append((instruction.upper(), rest.strip()))
    return steps


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with this checkout's wheel; dependencies from the test venv (no network)."""
    base = tmp_path_factory.mktemp("container")
    dist = base / "dist"
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [wheel] = dist.glob("*.whl")
    # this pip installs into the new venv (--python): quicker than giving the venv its own
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    subprocess.run([*pip, "--quiet", "--no-deps", str(wheel)], check=True, capture_output=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir())
    (site / "zz-test-dependencies.pth").write_text(f"{deps}\n", encoding="utf-8")
    return venv


def test_the_container_commands_run_in_a_fresh_venv(tmp_path: Path, fresh_venv: Path) -> None:
    steps = container_steps(moved(CONTAINER.read_text(encoding="utf-8"), tmp_path))
    kinds = [kind for kind, _ in steps]
    assert kinds[0] == "FROM" and kinds[-1] == "CMD"
    install = next(rest for kind, rest in steps if kind == "RUN" and "pip install" in rest)
    assert "python -m venv" in install and "'/src[video]'" in install  # not run here
    env = {"HOME": str(tmp_path)}
    for kind, rest in steps:
        if kind == "ENV":
            for key, value in (pair.split("=", 1) for pair in shlex.split(rest)):
                env[key] = value.replace("$PATH", os.environ["PATH"])
    env["PATH"] = env["PATH"].replace(str(BIN), str(fresh_venv / "bin"))
    (tmp_path / "state").mkdir()
    [setup] = [rest for kind, rest in steps if kind == "RUN" and "cuecap init" in rest]
    setup = setup.split("&& cuecap init", 1)[1]  # useradd and chown need root: not here
    done = subprocess.run(
        ["bash", "-c", f"cuecap init{setup}"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "ok: the rule files are valid" in done.stdout
    assert shutil.which("cuecap", path=env["PATH"]) == str(fresh_venv / "bin" / "cuecap")
    workdir = Path(next(rest for kind, rest in steps if kind == "WORKDIR"))
    cmd = next(rest for kind, rest in steps if kind == "CMD")
    argv = [str(fresh_venv / "bin" / "cuecap"), *json.loads(cmd)[1:]]  # exec form: JSON
    sig = signal.Signals[next(rest for kind, rest in steps if kind == "STOPSIGNAL")]
    code, out, err = stop_after_recording(argv, workdir, env, sig, timeout=30)
    assert code == 0, err
    assert "segments recorded: 1" in out
    assert_closed_recording(workdir)
    # the starter rules shoot at each recording start: a pip user's first run records and shoots
    shots = list(workdir.glob("shots/**/*.jpg"))
    assert shots and f"shots taken: {len(shots)}, failed: 0" in out
