"""Streams per core: how many simulated PurpleDrops one engine keeps up with.

Each stream is a ``cuecap sim`` in its own process (a 30 fps 1024x768 camera
plus the background traffic and bursts of moves, in real time). One engine in
this process takes N of them, each with an activity recorder and a 5 s
timelapse from its stream camera. N doubles until the engine falls behind: a
receive lag over 1 s at the 99th percentile (the receive time minus the
message's own timestamp, above the least seen on that stream: the constant
offset of the simulator's clock is not lag), or a stream lost. Prints, per N, the engine's CPU (% of a
core, and per stream) and the lag; then the largest N that held.

    python bench/streams.py [--max N] [--seconds S] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from harness import free_port, wait_listening

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
CUECAP = [sys.executable, "-m", "engine"]
SAMPLE_EVERY = 25  # frames between lag samples (a sample decodes the message)
MAX_LAG = 1.0


class LagProbe:
    """A source that passes frames through and samples their receive lag."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.stats = inner.stats
        self.lags: list[float] = []

    @property
    def notify(self) -> Any:
        return self.inner.notify

    @notify.setter
    def notify(self, value: Any) -> None:
        self.inner.notify = value

    async def __aiter__(self) -> AsyncIterator[Any]:
        count = 0
        async for item in self.inner:
            count += 1
            if count % SAMPLE_EVERY == 0 and getattr(item, "kind", None) == "active_capacitance":
                stamp = item.event.active_capacitance.timestamp
                self.lags.append(item.time - (stamp.seconds + stamp.nanos / 1e9))
            yield item

    async def aclose(self) -> None:
        await self.inner.aclose()


def rules_text(root: Path, ports: list[int]) -> str:
    lines = ["settings:", f"  recordings: {root}/recordings", f"  shots: {{folder: {root}/shots}}"]
    lines.append("sources:")
    lines += [
        f'  pd{i}: {{type: websocket, url: "ws://127.0.0.1:{p}"}}' for i, p in enumerate(ports)
    ]
    lines.append("cameras:")
    lines += [f"  cam{i}: {{type: stream, source: pd{i}}}" for i in range(len(ports))]
    lines.append("recorders:")
    for i in range(len(ports)):
        lines += [
            f"  moves{i}:",
            f"    source: pd{i}",
            "    activity: [{type: message, types: [electrode_state]}]",
            "    pre_roll: 2s",
            "    post_roll: 3s",
        ]
    lines.append("rules:")
    lines += [
        f"  timelapse{i}: {{when: {{type: schedule, every: 5s}}, do: {{type: shot, cameras: cam{i}}}}}"
        for i in range(len(ports))
    ]
    return "\n".join(lines) + "\n"


async def run_engine(rules_path: Path, seconds: float) -> tuple[dict[str, LagProbe], Any, float]:
    """Runs the engine; returns the probes, the summary and its steady CPU (% of a core)."""
    from engine.core.clock import SYSTEM_CLOCK
    from engine.rules.loader import load_rules
    from engine.runtime.engine import Engine
    from engine.runtime.sources import build_source

    rules = load_rules([rules_path], env={})
    probes = {
        name: LagProbe(build_source(name, config, SYSTEM_CLOCK))
        for name, config in rules.sources.items()
    }
    engine = Engine(rules, sources=probes)  # type: ignore[arg-type]
    marks: list[tuple[float, float]] = []

    def mark() -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        marks.append((usage.ru_utime + usage.ru_stime, time.perf_counter()))

    async def window() -> None:  # start-up (imports, connects) is not steady state
        await asyncio.sleep(seconds / 4)
        mark()
        await asyncio.sleep(seconds / 2)
        mark()

    sampler = asyncio.get_running_loop().create_task(window())
    summary = await engine.run(duration=seconds)
    await sampler
    (cpu0, t0), (cpu1, t1) = marks
    return probes, summary, 100 * (cpu1 - cpu0) / (t1 - t0)


def one(n: int, seconds: float, root: Path) -> tuple[float, float, float, bool]:
    """CPU % of a core, p50 and p99 lag (s), and whether every stream delivered."""
    ports = [free_port() for _ in range(n)]
    sims = [
        subprocess.Popen(
            [*CUECAP, "-q", "sim", "--port", str(p), "--seed", str(i), "--fps", "30"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, p in enumerate(ports)
    ]
    try:
        for p in ports:
            wait_listening(p)
        rules = root / f"streams{n}.yaml"
        rules.write_text(rules_text(root / f"n{n}", ports), encoding="utf-8")
        probes, summary, cpu = asyncio.run(run_engine(rules, seconds))
    finally:
        for sim in sims:
            sim.terminate()
        for sim in sims:
            sim.wait(10)
    # The simulator's clock and send batching put a constant offset between a message's
    # own time and its arrival; falling behind is the lag above that stream's least.
    lags = sorted(
        lag - min(probe.lags) for probe in probes.values() if probe.lags for lag in probe.lags
    )
    delivered = all(summary.frames.get(name, 0) > 100 * seconds for name in probes)
    if not lags:
        return cpu, float("inf"), float("inf"), False
    p50 = lags[len(lags) // 2]
    p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))]
    return cpu, p50, p99, delivered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=32, help="the most streams to try")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per step")
    parser.add_argument("--quick", action="store_true", help="a short run (checks it works)")
    args = parser.parse_args(argv)
    if args.quick:
        args.max, args.seconds = 2, 4.0
    held = 0
    per_stream = float("nan")
    print(f"{'streams':>7} {'CPU %':>7} {'% / stream':>10} {'lag p50 ms':>10} {'lag p99 ms':>10}")
    with tempfile.TemporaryDirectory(prefix="cuecap-streams-") as tmp:
        n = 1
        while n <= args.max:
            cpu, p50, p99, delivered = one(n, args.seconds, Path(tmp))
            ok = delivered and p99 <= MAX_LAG
            print(f"{n:7d} {cpu:7.1f} {cpu / n:10.2f} {1000 * p50:10.1f} {1000 * p99:10.1f}"
                  f"{'' if ok else '   fell behind'}")  # fmt: skip
            if not ok:
                break
            held, per_stream = n, cpu / n
            n *= 2
    print(f"largest number of streams that held: {held} ({per_stream:.2f} % of a core each)")
    if not args.quick:
        from results import report

        report("streams", "streams one engine keeps up with", held, "streams")
        report("streams", "CPU per stream", per_stream, "% of a core", better="lower")
    return 0


if __name__ == "__main__":
    sys.exit(main())
