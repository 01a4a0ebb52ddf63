"""A soak: ten million messages through the full pipeline, with rotation; memory stays flat.

The ingest bench's blaster (its own process) sends small PurpleDrop events as
fast as the socket takes them; one engine (websocket source, an activity
recorder that rotates its segments every 2 MB, the rulebook with a message
rule) takes all of them. The engine's resident memory is sampled as the
stream goes; flat means the last sample is within 10 % (and 8 MB) of the
first taken after the warm-up.

    python bench/soak.py [--events N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
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

RULES = """\
settings:
  recordings: {root}/recordings
sources:
  lab: {{type: websocket, url: "{uri}"}}
recorders:
  moves:
    source: lab
    activity:
      - {{type: message, types: [electrode_state]}}
      - {{type: step, field: active_capacitance.calibrated, delta: 2.0}}
    pre_roll: 0.002
    post_roll: 0.003
    max_segment_bytes: 2MB
rules:
  moved:
    when: {{type: message, source: lab, types: electrode_state}}
    do: {{type: log, level: debug, message: moved}}
"""


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def soak(rules_path: Path, events: int, every: float) -> tuple[list[tuple[int, float]], int]:
    from engine.rules.loader import load_rules
    from engine.runtime.engine import Engine

    engine = Engine(load_rules([rules_path], env={}))
    samples: list[tuple[int, float]] = []

    async def sample() -> None:
        while True:
            frames = engine.stats.frames["lab"]
            samples.append((frames, rss_mb()))
            if frames >= events:  # the whole stream is in (the blaster would send it again)
                engine.request_stop("stream received")
            await asyncio.sleep(every if frames < events * 0.95 else 0.01)

    sampler = asyncio.get_running_loop().create_task(sample())
    try:
        summary = await engine.run()
    finally:
        sampler.cancel()
    samples.append((summary.frames["lab"], rss_mb()))
    return samples, summary.segment_count or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="a short run (checks it works)")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = 300_000
    from harness import blaster

    with (
        blaster({"small": args.events}) as port,
        tempfile.TemporaryDirectory(prefix="cuecap-soak-") as tmp,
    ):
        root = Path(tmp)
        rules = root / "rules.yaml"
        rules.write_text(RULES.format(root=root, uri=f"ws://127.0.0.1:{port}/small"))
        started = time.perf_counter()
        samples, segments = asyncio.run(soak(rules, args.events, 1.0))
        seconds = time.perf_counter() - started
    frames = samples[-1][0]
    warm = next((s for s in samples if s[0] >= frames // 10), samples[0])
    peak = max(mb for _, mb in samples)
    last = samples[-1][1]
    print(
        f"{frames:,} messages in {seconds:.0f} s ({frames / seconds:,.0f}/s), {segments} segments"
    )
    print(f"RSS MB: first {samples[0][1]:.1f}, after warm-up {warm[1]:.1f} "
          f"(at {warm[0]:,} messages), last {last:.1f}, max {peak:.1f}")  # fmt: skip
    flat = last <= warm[1] * 1.1 or last - warm[1] <= 8
    print("memory is flat" if flat else "memory GREW")
    if frames < args.events:
        print(f"LOST: {args.events - frames:,} messages never reached the engine")
    if not args.quick:
        from results import report

        report("soak", "rss growth after warm-up", last - warm[1], "MB", target=8, better="lower")
        report("soak", "messages lost", args.events - frames, "", target=0, better="lower")
    return 0 if flat and frames >= args.events else 1


if __name__ == "__main__":
    sys.exit(main())
