"""Rule matching: what event-fired rules cost per frame, side by side in one run.

The same simulated PurpleDrop stream (capacitance at 50 Hz, camera frames,
bursts of electrode moves) goes through three loops over the same frames,
already in memory so only matching is measured:

  (a) bare      the loop alone, reading each frame's type (the floor)
  (b) cuecap    ``Rulebook.on_frame``: routed by message type (first byte),
                CEL only on the types a rule can match
  (c) naive     decode every frame, then test every rule on it (type, then CEL):
                what a rule engine without routing does

and a fourth, the whole engine in virtual time (source, recorder, frame
cache, rules and their actions) against the bare source loop, so the ratio
is what ``cuecap replay`` and ``run --fast`` pay for everything.

    python bench/rules.py [--seconds S] [--rounds R] [--pairs P] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

T0 = 1_700_000_000.0
SIM = {"seed": 5, "fps": 10, "image_size": [160, 120], "idle": [3, 8]}

RULES = """\
settings: {{timezone: UTC, recordings: {root}/rec}}
sources:
  sim: {{type: simulator, seed: 5, fps: 10, image_size: [160, 120], idle: [3, 8]}}
recorders:
  moves:
    activity: [{{type: message, types: [electrode_state]}}]
rules:
  moved:      {{when: {{type: message, types: electrode_state}}, do: {{type: log, message: m, level: debug}}}}
  moved-2:    {{when: {{type: message, types: electrode_state}}, cooldown: 2s, do: {{type: log, message: m, level: debug}}}}
  big:        {{when: {{type: message, where: "active_capacitance.calibrated > 30.0"}}, cooldown: 1s, do: {{type: log, message: b, level: debug}}}}
  small:      {{when: {{type: message, where: "active_capacitance.calibrated < -30.0"}}, do: {{type: log, message: s, level: debug}}}}
  hot:        {{when: {{type: message, types: temperature_control, where: "temperatures[0] > 90.0"}}, do: {{type: log, message: h, level: debug}}}}
  high-volts: {{when: {{type: message, where: "hv_regulator.voltage > 400.0"}}, do: {{type: log, message: v, level: debug}}}}
  scan:       {{when: {{type: message, types: scan_capacitance, where: "measurements.size() > 200"}}, do: {{type: log, message: c, level: debug}}}}
  started:    {{when: {{type: event, event: recording.started}}, do: {{type: log, message: r, level: debug}}}}
"""


def load(root: Path):
    from engine.rules.loader import load_rules

    path = root / "rules.yaml"
    path.write_text(textwrap.dedent(RULES.format(root=root)), encoding="utf-8")
    return load_rules([path], env={})


def stream(seconds: float) -> list:
    from engine.core.frame import Frame
    from engine.sim.world import SimWorld

    world = SimWorld(SIM["seed"], **{k: v for k, v in SIM.items() if k != "seed"})
    return [Frame(raw, t, i, "sim") for i, (t, raw) in enumerate(world.events(T0, T0 + seconds))]


def fresh(frames: list) -> list:
    """Undecoded copies: every contender pays its own decoding."""
    from engine.core.frame import Frame

    return [Frame(f.raw, f.time, f.seq, f.source) for f in frames]


def bare(frames: list, rules) -> int:
    n = 0
    for frame in frames:
        if frame.kind is not None:
            n += 1
    return n


def cuecap(frames: list, rules) -> int:
    from engine.runtime.rulebook import Rulebook

    book = Rulebook(rules.rules)
    kinds = book.kinds
    fired = 0
    for frame in frames:
        if kinds is None or frame.kind in kinds:
            fired += len(book.on_frame(frame))
    return fired


def naive(frames: list, rules) -> int:
    from engine.rules.model import MessageTrigger
    from engine.runtime.policy import FiringPolicy

    triggers = [
        (name, t, FiringPolicy(rule.mode, rule.max, rule.cooldown))
        for name, rule in rules.rules.items()
        for t in rule.when
        if isinstance(t, MessageTrigger)
    ]
    fired = 0
    for frame in frames:
        event = frame.event  # decode everything
        kind = event.WhichOneof("msg")
        for _, trigger, policy in triggers:
            if trigger.types and kind not in trigger.types:
                continue
            condition = trigger.condition
            if condition is not None and not condition.evaluate(frame):
                continue
            if policy.accepts(frame.time):
                fired += 1
    return fired


async def source_only(seconds: float) -> int:
    from engine.core.clock import ManualClock
    from engine.sim.world import SimWorld
    from engine.sources.simulator import SimulatorSource

    world = SimWorld(SIM["seed"], **{k: v for k, v in SIM.items() if k != "seed"})
    source = SimulatorSource(world, clock=ManualClock(T0), paced=False, duration=seconds)
    n = 0
    async for _ in source:
        n += 1
    return n


async def engine_run(seconds: float, rules) -> int:
    from engine.core.clock import ManualClock
    from engine.runtime.engine import Engine

    summary = await Engine(rules, clock=ManualClock(T0)).run(duration=seconds)
    return summary.frames["sim"]


def best(fn, rounds: int) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="seconds of simulated stream")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the matching loops")
    parser.add_argument("--pairs", type=int, default=7, help="paired rounds of source and engine")
    parser.add_argument("--quick", action="store_true", help="a short run (checks it works)")
    args = parser.parse_args(argv)
    seconds = 30.0 if args.quick else args.seconds
    rounds = 1 if args.quick else args.rounds
    pipeline_rounds = 1 if args.quick else args.pairs
    quick = args.quick
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rules = load(Path(tmp))
        frames = stream(seconds)
        n = len(frames)
        print(
            f"{n} frames ({seconds:g} s of simulated stream), {len(rules.rules)} rules, best of {rounds}"
        )
        rows = []
        for name, fn in (("bare", bare), ("cuecap", cuecap), ("naive", naive)):
            elapsed, fired = best(lambda fn=fn: fn(fresh(frames), rules), rounds)
            rows.append((name, elapsed, fired))
        base = rows[0][1]
        print(f"{'matching':<10} {'frames/s':>12} {'us/frame':>9} {'firings':>8} {'x bare':>7}")
        for name, elapsed, fired in rows:
            fired_text = "-" if name == "bare" else str(fired)
            print(f"{name:<10} {n / elapsed:>12,.0f} {elapsed / n * 1e6:>9.2f} {fired_text:>8} "
                  f"{elapsed / base:>7.1f}")  # fmt: skip
            results[name] = n / elapsed
        assert rows[1][2] == rows[2][2], "routing changed what fires"
        print(f"cuecap routing is {rows[2][1] / rows[1][1]:.1f}x faster than matching every rule")

        # Paired rounds: the source loop and the engine one after the other in each
        # round, so both see the same load; the ratio is the median of the rounds'.
        pairs = []
        for _ in range(pipeline_rounds):
            cpu = time.process_time()
            src, count = best(lambda: asyncio.run(source_only(seconds)), 1)
            src_cpu, cpu = time.process_time() - cpu, time.process_time()
            eng, handled = best(lambda: asyncio.run(engine_run(seconds, load(Path(tmp)))), 1)
            pairs.append((src, eng, src_cpu, time.process_time() - cpu))
        src = statistics.median(p[0] for p in pairs)
        eng = statistics.median(p[1] for p in pairs)
        ratios = sorted(p[0] / p[1] for p in pairs)
        ratio = statistics.median(ratios)
        cpu_ratio = statistics.median(p[2] / p[3] for p in pairs)
        print(
            f"{'pipeline':<10} {'frames/s':>12} {'us/frame':>9}   (medians of {len(pairs)} paired rounds)"
        )
        print(f"{'source':<10} {count / src:>12,.0f} {src / count * 1e6:>9.2f}")
        print(f"{'engine':<10} {handled / eng:>12,.0f} {eng / handled * 1e6:>9.2f}")
        print(f"the whole engine runs at {ratio:.2f} of the bare source loop's speed "
              f"(rounds {ratios[0]:.2f}-{ratios[-1]:.2f}; {seconds / eng:,.0f}x real time); "
              f"in CPU time {cpu_ratio:.2f}")  # fmt: skip
        results["engine_ratio"] = ratio
        if not quick:
            from results import report

            report("rules", "engine vs bare source loop (virtual time)", ratio, "x", target=0.7)
            report("rules", "engine vs bare source loop, CPU time", cpu_ratio, "x")
    return results


if __name__ == "__main__":
    main()
