"""The YAML in the screenshots documentation loads as it stands."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from engine.shots import ShotsFile

DOC = Path(__file__).resolve().parent.parent / "docs" / "shots.md"


def test_documented_yaml_validates() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 2
    cameras = yaml.safe_load(blocks[0])
    settings = yaml.safe_load(blocks[1])
    parsed = ShotsFile.model_validate({**cameras, "shots": settings["settings"]["shots"]})
    assert set(parsed.cameras) == {"gate", "yard", "scope", "custom"}
    assert parsed.shots.retention is not None and parsed.shots.retention.max_bytes == 20 * 2**30
