"""Start-up: the wall time of ``cuecap check rules/`` (the shipped rule files), whole
process, against the interpreter's own start (``python -c pass``).

A check loads the rule files, their pydantic models and CEL conditions and
prints what they do: the time between saving a rule file and knowing it is
right. Rounds alternate the two commands, so a busy machine slows them alike;
figures are medians.

    python bench/startup.py [--rounds R] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "cuecap --help": [sys.executable, "-m", "engine", "--help"],
    "cuecap check rules/": [sys.executable, "-m", "engine", "check", "rules/"],
}


def wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a short run (checks it works)")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    for argv_ in COMMANDS.values():  # warm the page cache and the bytecode
        wall(argv_)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(rounds):
        for name, command in COMMANDS.items():
            times[name].append(wall(command))
    print(f"{'':22} {'median s':>9} {'min s':>7} {'max s':>7}   ({rounds} rounds)")
    for name, values in times.items():
        print(f"{name:22} {statistics.median(values):9.3f} {min(values):7.3f} {max(values):7.3f}")
    check = statistics.median(times["cuecap check rules/"])
    print(f"cuecap check rules/ {check:.2f} s (target <= 0.4)")
    if not args.quick:
        from results import report

        report("startup", "cuecap check rules/ wall", check, "s", target=0.4, better="lower")
    return 0


if __name__ == "__main__":
    sys.exit(main())
