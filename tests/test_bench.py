"""Every benchmark runs: ``bench/run.py --quick`` as the docs show it, in a scratch folder.

Speed is never asserted here (a shared 2-core machine makes timings flaky);
what is checked is that every bench starts, runs to its end, prints its table
and the results file is written where it is asked, so a bench broken by a change is
seen by the suite and not at the next measurement.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run.py"


def benches() -> tuple[str, ...]:
    """``BENCHES`` of bench/run.py, read without importing it (bench/ is not a package)."""
    for node in ast.parse(RUN.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "BENCHES":
            names: tuple[str, ...] = ast.literal_eval(node.value)
            return names
    raise AssertionError("bench/run.py has no BENCHES")


def test_every_bench_runs_quick_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    kept = ROOT / "bench" / "results.json"
    before = kept.read_bytes() if kept.exists() else None
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    text = done.stdout + done.stderr
    assert "Traceback" not in text, text[-4000:]
    assert "was never awaited" not in text, text[-4000:]
    names = benches()
    assert len(names) >= 10
    for name in names:
        assert f"=== {name} " in done.stdout, f"{name} did not start"
        assert f"({name}: " in done.stdout, f"{name} did not finish:\n{text[-4000:]}"
    # A missed target may make the exit code 1 in a quick run; nothing else may.
    assert done.returncode == 0 or "targets not met" in done.stdout, text[-4000:]
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["quick"] is True
    # Quick figures are not measurements: most benches keep them to their tables.
    assert isinstance(document["results"], list)
    assert (kept.read_bytes() if kept.exists() else None) == before  # the measured file kept
