"""``cuecap graph``: the recorder's machine as mermaid text, labelled with its settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.recorder.config import RecorderConfig
from engine.recorder.graph import GraphError, draw_image, mermaid
from engine.recorder.machine import TRANSITIONS

RULES = """\
sources:
  sim: {type: simulator}
recorders:
  moves:
    source: sim
    activity:
      - {type: message, types: [electrode_state]}
      - {type: step, field: active_capacitance.calibrated, delta: 2}
    post_roll: 3s
    max_segment_bytes: 1MB
"""


def test_mermaid_has_every_state_and_transition_with_settings() -> None:
    config = RecorderConfig.model_validate(
        {
            "activity": [{"type": "message", "types": ["electrode_state"]}],
            "post_roll": 4,
            "min_activity": 3,
            "activity_window": 2,
            "max_segment_seconds": 600,
        }
    )
    text = mermaid("moves", config)
    assert text.splitlines()[1] == "recorder moves"
    assert "stateDiagram-v2" in text
    for state in ("idle", "recording", "cooling_down", "disabled", "error", "closed"):
        assert f'state "{state}" as {state}' in text
    assert "idle --> recording: activity - electrode_state (3 hits within 2s)" in text
    assert "recording --> cooling_down: no activity for 2s" in text
    assert "cooling_down --> idle: no activity for post_roll 4s" in text
    assert "rotate at 600s [internal]" in text
    assert "error --> idle: retry after 30s" in text
    assert "[*] --> idle" in text
    edges = {
        line.split(":")[0].strip()
        for line in text.splitlines()
        if "-->" in line and "[*]" not in line
    }
    expected = set()
    for transition in TRANSITIONS:
        sources = (
            transition["source"]
            if isinstance(transition["source"], list)
            else [transition["source"]]
        )
        for source in sources:
            expected.add(f"{source} --> {transition['dest'] or source}")
    assert edges == expected


def test_disabled_recorder_starts_disabled() -> None:
    assert "[*] --> disabled" in mermaid("off", RecorderConfig(enabled=False))


def test_cli_prints_mermaid_from_rule_files(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    result = CliRunner().invoke(main, ["graph", "moves", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "active_capacitance.calibrated steps by more than 2" in result.output
    assert "rotate at 1000000 bytes" in result.output
    out = tmp_path / "moves.mmd"
    result = CliRunner().invoke(main, ["graph", "moves", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 0 and out.read_text().startswith("---\nrecorder moves")


def test_cli_unknown_recorder_and_bad_rules(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    result = CliRunner().invoke(main, ["graph", "mvoes", str(tmp_path)])
    assert (
        result.exit_code != 0
        and "no recorder 'mvoes'" in result.output
        and "moves" in result.output
    )
    (tmp_path / "rules.yaml").write_text(RULES.replace("delta: 2}", "delta: 2, deltta: 3}"))
    result = CliRunner().invoke(main, ["graph", "moves", str(tmp_path)])
    assert result.exit_code != 0 and "rules.yaml:" in result.output and "deltta" in result.output


def test_image_without_graphviz_says_how_to_get_one(tmp_path: Path) -> None:
    try:
        import graphviz  # noqa: F401
    except ImportError:
        with pytest.raises(GraphError, match="mermaid"):
            draw_image("moves", RecorderConfig(), tmp_path / "m.png")
    else:
        assert draw_image("moves", RecorderConfig(), tmp_path / "m.svg").exists()
