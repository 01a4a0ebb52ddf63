"""Every YAML example of the rule-file reference is a rule set that loads."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from engine.recording.writer import RecordingWriter
from engine.rules.loader import load_rules

DOC = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_reference_has_an_example_per_trigger_and_action() -> None:
    text = "\n".join(BLOCKS)
    for kind in ("schedule", "message", "event", "shot", "record", "run", "log"):
        assert f"type: {kind}" in text, kind
    assert len(BLOCKS) >= 12


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_example_loads(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths of the examples start here
    recording = tmp_path / "recordings" / "moves" / "moves-20250501-090000-001.bin"
    RecordingWriter(recording, opened_at=0.0).close("test", 0.0)
    path = tmp_path / "example.yaml"
    path.write_text(BLOCKS[index], encoding="utf-8")
    rules = load_rules([path], env={k: v for k, v in os.environ.items() if k != "PURPLEDROP_HOST"})
    assert rules.files == [path]
