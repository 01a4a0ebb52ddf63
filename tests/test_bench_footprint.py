"""bench/footprint.py --stages times engine methods by name: those names must exist."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def footprint() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        import footprint as module  # bench/ is not a package
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_every_timed_stage_names_a_real_method(footprint: ModuleType) -> None:
    namespace: dict[str, object] = {}
    imports = re.findall(r"^from (engine\.\S+) import (\w+)$", footprint.STAGES, re.M)
    for module, name in imports:
        exec(f"from {module} import {name}", namespace)
    timed = re.findall(r'^timed\((\w+), "(\w+)", "([^"]+)"\)$', footprint.STAGES, re.M)
    assert len(timed) == 8
    for cls, method, label in timed:
        assert callable(getattr(namespace[cls], method, None)), f"{label}: {cls}.{method} is gone"


def test_the_cold_check_reads_a_detector_that_exists(footprint: ModuleType) -> None:
    from engine.recorder.detectors import StepDetector

    assert 'StepDetector("active_capacitance.calibrated", 15)' in footprint.COLD
    assert StepDetector("active_capacitance.calibrated", 15).kind == "active_capacitance"
