"""The figures a benchmark measured, for the machine-readable results file.

Each bench prints its own table for people and calls ``report`` for the
figures that matter (ratios against its baseline, with their targets);
``bench/run.py`` writes them all to ``bench/results.json`` after the run.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS: list[dict[str, Any]] = []


def report(
    bench: str,
    name: str,
    value: float,
    unit: str = "",
    *,
    target: float | None = None,
    better: str = "higher",
) -> None:
    """One measured figure; ``target`` is met when ``value`` is at least it (or at most,
    when ``better`` is "lower")."""
    met = None
    if target is not None:
        met = value >= target if better == "higher" else value <= target
    RESULTS.append(
        {
            "bench": bench,
            "name": name,
            "value": value,
            "unit": unit,
            "target": target,
            "better": better,
            "met": met,
        }
    )


def write(path: Path, *, quick: bool) -> None:
    document = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg()[0],
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "quick": quick,
        "results": RESULTS,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
