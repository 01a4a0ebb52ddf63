"""Every example in docs/schemas.md and docs/mcap.md runs as shown."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.recording.writer import RecordingWriter
from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules
from engine.sim.world import SimWorld

DOCS = Path(__file__).resolve().parent.parent / "docs"
BIN = Path(sys.executable).parent


def blocks(name: str, lang: str) -> list[str]:
    text = (DOCS / name).read_text(encoding="utf-8")
    return [
        body for kind, body in re.findall(r"```(\w+)\n(.*?)```", text, re.DOTALL) if kind == lang
    ]


def run_lines(block: str, cwd: Path) -> list[str]:
    """Run each command line of a ``sh`` block in ``cwd``; every one must succeed."""
    outputs = []
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        done = subprocess.run(
            ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout + done.stderr)
    return outputs


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with lab.proto and rules.yaml of docs/schemas.md, lab.pb made by its command."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lab.proto").write_text(blocks("schemas.md", "proto")[0], encoding="utf-8")
    run_lines(blocks("schemas.md", "sh")[0], tmp_path)
    (tmp_path / "rules.yaml").write_text(blocks("schemas.md", "yaml")[0], encoding="utf-8")
    return tmp_path


def test_the_descriptor_set_command_and_the_rules_check(lab: Path) -> None:
    assert (lab / "lab.pb").stat().st_size > 0
    rules = load_rules([lab / "rules.yaml"], env={})
    assert rules.recorders["alarms"].message_schema.kind_names == {"reading", "alarm"}
    (out,) = run_lines(blocks("schemas.md", "sh")[1], lab)
    assert "lab: websocket ws://lab-pc:9000, lab.Event messages" in out
    assert "alarms: source lab, activity: message, threshold" in out


def test_the_documented_error_is_the_real_one(lab: Path) -> None:
    rules = lab / "rules.yaml"
    rules.write_text(rules.read_text().replace("reading.celsius", "reading.celsuis"))
    with pytest.raises(RuleFileError) as err:
        load_rules([rules], env={})
    (documented,) = blocks("schemas.md", "text")
    assert str(err.value) == f"{lab / documented.strip()}"


def test_the_camera_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks("schemas.md", "python")[0], "docs/schemas.md", "exec"), {})
    path = tmp_path / "camera.yaml"
    path.write_text(blocks("schemas.md", "yaml")[1], encoding="utf-8")
    rules = load_rules([path], env={})
    assert rules.cameras["front"].source == "front"
    assert rules.sources["front"].schema_.loaded.image == "CompressedImage.data"


def test_the_recording_example_and_the_log_tools_on_it(lab: Path) -> None:
    exec(compile(blocks("schemas.md", "python")[1], "docs/schemas.md", "exec"), {})
    info, dump, _, plot = run_lines(blocks("schemas.md", "sh")[2], lab)
    assert "rates, alarm, reading (100 records)" in plot  # a panel per kind with numbers
    assert "100 records" in info and "schema      lab.Event" in info
    assert dump.count('"type":"alarm"') == 2 and "door open 9" in dump
    assert (lab / "readings.csv").read_text().splitlines()[0] == "time,seq,timestamp,celsius"
    assert (lab / "lab.png").read_bytes()[:4] == b"\x89PNG"


def test_cuecap_record_with_a_schema(lab: Path) -> None:
    from scripted_server import ScriptedServer

    from engine.logtools.inputs import LogInput
    from engine.schema_files import SchemaSpec, load_schema

    schema = load_schema(SchemaSpec(message="lab.Event", descriptor_set=str(lab / "lab.pb")))
    script = []
    for i in range(100):
        event = schema.message_class()
        event.reading.celsius = float(i)  # type: ignore[attr-defined]
        script.append(event.SerializeToString())
    block = blocks("schemas.md", "sh")[3]
    with ScriptedServer(script).threaded() as server:
        run_lines(block.replace("ws://lab-pc:9000", server.uri), lab)
    for name in ("live.bin", "live.mcap"):
        frames = list(LogInput(lab / name).frames())
        assert [f.raw for f in frames] == script and frames[5].message.celsius == 5.0


def test_the_mcap_recorder_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(blocks("mcap.md", "yaml")[0], encoding="utf-8")
    config = load_rules([path], env={}).recorders["moves"]
    assert config.format == "mcap" and config.path_template().text.endswith(".mcap")


def test_the_convert_commands(tmp_path: Path) -> None:
    world = SimWorld(5, fps=10.0, image_size=(160, 120), idle=(2.0, 4.0))
    with RecordingWriter(tmp_path / "session.bin", recorder="cuecap record") as writer:
        for t, raw in world.events(1_714_557_600.0, 1_714_557_610.0):
            writer.write(raw, t + 0.003)
    outputs = run_lines(blocks("mcap.md", "sh")[0], tmp_path)
    assert "records written to session.mcap (MCAP" in outputs[0]
    assert "index       present" in outputs[2]
    assert '"type":"active_capacitance"' in outputs[3]
    assert outputs[-1].strip() == "same records, same times"
