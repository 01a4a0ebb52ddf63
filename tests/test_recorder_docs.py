"""The examples in docs/recorders.md really work."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from engine.rules.loader import load_rules

DOC = Path(__file__).resolve().parent.parent / "docs" / "recorders.md"
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
YAML = [text for lang, text in BLOCKS if lang == "yaml"]
PYTHON = [text for lang, text in BLOCKS if lang == "python"]


@pytest.mark.parametrize("index", range(len(YAML)))
def test_yaml_examples_load(index: int, tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(YAML[index], encoding="utf-8")
    rules = load_rules([path], env={})
    assert rules.recorders


def test_python_example_runs() -> None:
    [code] = PYTHON
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {})
    lines = out.getvalue().splitlines()
    path, records, first, last = lines[0].split()
    assert path.endswith(".bin") and Path(path).exists()
    assert (int(records), float(first), float(last)) == (31, 1003.0, 1006.0)
    assert lines[1] == "['recording.started', 'recording.stopped']"


def test_documented_error_is_the_real_one(tmp_path: Path) -> None:
    path = tmp_path / "cuecap.yaml"
    path.write_text(YAML[0].replace("calibrated, delta", "calibratd, delta"), encoding="utf-8")
    with pytest.raises(Exception) as info:
        load_rules([path], env={})
    assert "active_capacitance has no field 'calibratd'" in str(info.value)
    assert re.search(r"cuecap\.yaml:\d+:\d+: ", str(info.value))
