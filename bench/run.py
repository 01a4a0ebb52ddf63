"""Run every benchmark, one after another, in one command: ``python bench/run.py``.

Each benchmark compares cuecap side by side against its baseline in the same
run and prints its own table and ratios. ``--quick`` makes each one short
(a smoke run that checks they all still work, not a measurement).

    python bench/run.py [--quick] [--out FILE] [NAME ...]     # NAME: see BENCHES

Every figure with a target also goes to ``bench/results.json`` (machine-readable).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = (
    "ingest", "recorder", "rules", "shots", "footprint", "startup", "streams", "lateness", "soak",
    "logtools", "sim_world", "mcap_format", "http_page", "cluster", "fanout",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHES)}")
    parser.add_argument("--quick", action="store_true", help="short smoke runs")
    parser.add_argument(
        "--out", type=Path, default=HERE / "results.json", help="the results file to write"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    sys.path.insert(0, str(HERE))  # no bench is named like a standard module: none hides one
    load = os.getloadavg()[0]
    print(f"cuecap benchmarks: {os.cpu_count()} CPUs, load average {load:.2f}", flush=True)
    failed: list[str] = []
    for name in args.names or BENCHES:
        print(f"\n=== {name} " + "=" * (60 - len(name)), flush=True)
        started = time.perf_counter()
        module = importlib.import_module(name)
        bench_args = ["--quick"] if args.quick else []
        result = module.main(bench_args)
        if isinstance(result, int) and result != 0:
            failed.append(name)
        print(f"({name}: {time.perf_counter() - started:.1f} s)", flush=True)
    import results

    out = args.out
    results.write(out, quick=args.quick)
    print(f"\nresults: {out}")
    missed = [r for r in results.RESULTS if r["met"] is False]
    for r in missed:
        print(f"target not met: {r['bench']} {r['name']} = {r['value']:.3g} (target {r['target']})")
    if failed:
        print(f"\ntargets not met: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
