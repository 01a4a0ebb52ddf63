"""Three engines as real processes on a real nats-server: one killed, one restarted.

Three rules fire every second and each takes a shot from one HTTP camera
whose limit is 2 at once (three engines running three fires at the same
instant would make three). One engine is SIGKILLed while its fire's actions
run, another is stopped cleanly and started again. Every fire due runs
exactly once, the camera never serves more than its limit at once, and
every shot asked ends exactly once, none lost, none doubled.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from engine.cluster.testing import LocalSite


async def test_three_engines_one_killed_one_restarted(tmp_path: Path) -> None:
    async with LocalSite(tmp_path / "site", rules=3, camera_delay=0.4, max_in_flight=2) as site:
        for i in range(3):
            site.start_engine(i)
        await site.wait_started([0, 1, 2])
        start = time.time()
        await asyncio.sleep(3)
        killed = await site.kill_mid_fire([0, 1, 2])
        await asyncio.sleep(3)
        restarted = next(i for i in site.alive() if i != killed)
        assert await site.terminate(restarted) == 0
        site.start_engine(restarted)
        await site.wait_started([restarted])
        await asyncio.sleep(4)
        end = time.time() - 3  # fires after this may still be running when the site stops
        await asyncio.sleep(2.5)
        await site.stop_all()
        await asyncio.sleep(0.3)  # the last events reach the listener
        report = site.report(start, end)
    print("\n".join(report.lines()))
    assert report.expected >= 3 * 9
    assert report.double_fires == 0
    assert report.missed_fires == 0
    assert report.lost_shots == 0 and report.doubled_shots == 0
    assert report.max_in_flight == 2  # the limit held, and was needed
    assert report.failovers, "the killed engine's fire never ran elsewhere"
    assert report.redelivered >= 1
