"""Chaos run of a site: N engines on one nats-server, random kills and server restarts.

    python bench/cluster.py [--engines 3] [--minutes 2] [--seed 1] [--quick]

Three rules fire every second, each taking a shot from one HTTP camera with a
limit of 2 shots at once. While it runs, every few seconds one of these
happens at random: an engine is SIGKILLed (and started again a little later),
an engine is stopped with SIGTERM and started again, or the nats-server is
stopped and started again on the same port and store. At the end it prints
double fires, missed fires, lost shots, the most shots the camera served at
once, and the failover time (from a kill to the killed engine's fire running
on another engine, which ``ack_wait`` bounds). Goal: 0, 0, 0, at the limit,
under 2 s. Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.cluster.testing import LocalSite

ACK_WAIT = 1.5  # seconds: the failover time is this plus a fetch


async def chaos(folder: Path, engines: int, seconds: float, seed: int) -> int:
    rng = random.Random(seed)
    async with LocalSite(folder, rules=3, max_in_flight=2, ack_wait=ACK_WAIT) as site:
        for i in range(engines):
            site.start_engine(i)
        await site.wait_started(list(range(engines)))
        start = time.time()
        counts = {"kill": 0, "restart": 0, "server": 0}
        while time.time() - start < seconds:
            await asyncio.sleep(rng.uniform(3.0, 6.0))
            if time.time() - start >= seconds:
                break
            action = rng.choice(["kill", "kill", "restart", "server"])
            alive = site.alive()
            if action in ("kill", "restart") and len(alive) < 2:
                action = "server"
            counts[action] += 1
            if action == "kill":
                victim = await site.kill_mid_fire(alive)
                print(f"{time.time() - start:6.1f} s  SIGKILL engine {victim}", flush=True)
                await asyncio.sleep(rng.uniform(1.0, 3.0))
                site.start_engine(victim)
            elif action == "restart":
                victim = rng.choice(alive)
                print(f"{time.time() - start:6.1f} s  SIGTERM engine {victim}, start again",
                      flush=True)  # fmt: skip
                await site.terminate(victim)
                site.start_engine(victim)
            else:
                down = rng.uniform(0.5, 2.0)
                print(f"{time.time() - start:6.1f} s  nats-server down for {down:.1f} s",
                      flush=True)  # fmt: skip
                site.nats.stop()
                await asyncio.sleep(down)
                site.nats.start()
        end = time.time() - 4  # fires after this may still be running when the site stops
        await asyncio.sleep(4)
        await site.stop_all()
        await asyncio.sleep(0.5)
        report = site.report(start, end)
    print(f"\n{engines} engines, {seconds:g} s, {counts['kill']} kills, "
          f"{counts['restart']} clean restarts, {counts['server']} server restarts")  # fmt: skip
    for line in report.lines():
        print(line)
    ok = (
        report.double_fires == 0
        and report.missed_fires == 0
        and report.lost_shots == 0
        and report.doubled_shots == 0
        and report.max_in_flight <= report.limit
        and all(f < 2.0 for f in report.failovers)
    )
    print("goal (0 double, 0 missed, 0 lost, in flight <= limit, failover < 2 s):",
          "met" if ok else "NOT met")  # fmt: skip
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="20 s (a smoke run)")
    args = parser.parse_args(argv)
    seconds = 20.0 if args.quick else args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="cuecap-chaos-") as folder:
        return asyncio.run(chaos(Path(folder), args.engines, seconds, args.seed))


if __name__ == "__main__":
    sys.exit(main())
