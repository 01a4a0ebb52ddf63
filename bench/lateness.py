"""Schedule lateness under load: how late live schedules fire while the engine ingests flat out.

The ingest bench's blaster (its own process) sends small PurpleDrop events as
fast as the socket takes them; one engine records them (a websocket source,
an activity recorder) while ten rules fire every second on APScheduler. Each
firing's lateness is the wall time at which the engine handed it to the rule
runner minus the instant it was due. The same schedules on an idle engine
are the baseline.

    python bench/lateness.py [--events N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

RULES = 10


def rules_text(root: Path, uri: str | None) -> str:
    lines = ["settings:", f"  recordings: {root}/recordings", "  timezone: UTC"]
    if uri:
        lines += [
            "sources:",
            f'  lab: {{type: websocket, url: "{uri}"}}',
            "recorders:",
            "  moves:",
            "    source: lab",
            "    activity:",
            "      - {type: message, types: [electrode_state]}",
            "      - {type: step, field: active_capacitance.calibrated, delta: 2.0}",
            "    pre_roll: 0.002",
            "    post_roll: 0.003",
        ]
    lines.append("rules:")
    for i in range(RULES):
        lines.append(
            f"  tick{i}: {{when: {{type: schedule, every: 1s}}, "
            "do: {type: log, level: debug, message: t}}"
        )
    return "\n".join(lines) + "\n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(rules_path: Path, seconds: float) -> tuple[list[float], int]:
    from engine.events import Event, RuleFired
    from engine.rules.loader import load_rules
    from engine.runtime.engine import Engine

    late: list[float] = []

    def heard(event: Event) -> None:
        if isinstance(event, RuleFired):
            late.append(time.time() - event.time)

    engine = Engine(load_rules([rules_path], env={}))
    engine.subscribe(heard)
    summary = await engine.run(duration=seconds)
    return late, sum(summary.frames.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3_000_000, help="small events to blast")
    parser.add_argument("--seconds", type=float, default=12.0, help="seconds of each run")
    parser.add_argument("--quick", action="store_true", help="a short run (checks it works)")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.seconds = 200_000, 3.0
    from harness import blaster

    with (
        blaster({"small": args.events}) as port,
        tempfile.TemporaryDirectory(prefix="cuecap-lateness-") as tmp,
    ):
        root = Path(tmp)
        idle_rules = root / "idle.yaml"
        idle_rules.write_text(rules_text(root, None), encoding="utf-8")
        busy_rules = root / "busy.yaml"
        busy_rules.write_text(rules_text(root, f"ws://127.0.0.1:{port}/small"), encoding="utf-8")
        idle, _ = asyncio.run(measure(idle_rules, args.seconds))
        started = time.perf_counter()
        busy, frames = asyncio.run(measure(busy_rules, args.seconds))
        elapsed = time.perf_counter() - started
    print(f"{'':22} {'firings':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in (("idle engine", idle), ("ingesting flat out", busy)):
        ms = [1000 * v for v in values]
        print(
            f"{name:22} {len(ms):8d} {statistics.median(ms):8.2f} "
            f"{percentile(ms, 0.99):8.2f} {max(ms):8.2f}"
        )
    p99 = 1000 * percentile(busy, 0.99)
    print(
        f"ingesting {frames / elapsed:,.0f} msg/s while firing; p99 lateness {p99:.2f} ms (target <= 10)"
    )
    if not args.quick:
        from results import report

        report(
            "lateness",
            "p99 schedule lateness while ingesting",
            p99,
            "ms",
            target=10,
            better="lower",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
