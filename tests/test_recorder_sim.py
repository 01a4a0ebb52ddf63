"""End to end over the simulator: one file per burst, pre_roll before it to post_roll after it.

In virtual time the simulator's ground truth and the receive times are the
same numbers, so the files must hold exactly the stream's records inside each
burst's window, and nothing from the idle stretches. On loopback (a real
websocket, real time sped up) times shift by the network, so the test checks
the shape: one file per burst, every move of a burst in its file.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from recorder_streams import read_segments

from engine.core.clock import ManualClock, SystemClock
from engine.core.frame import Frame
from engine.events import Event
from engine.recorder.config import RecorderConfig
from engine.recorder.recorder import Recorder
from engine.sim.server import start_sim_server
from engine.sim.world import SimWorld
from engine.sources.simulator import SimulatorSource
from engine.sources.websocket import WebSocketSource

START = 1_700_000_000.0
PRE, POST = 1.0, 2.0


def world() -> SimWorld:
    return SimWorld(seed=7, fps=2, image_size=(64, 48), idle=(4.0, 8.0), max_bursts=4)


async def record_virtual(config: RecorderConfig, root: Path) -> tuple[Recorder, list[Frame], list]:
    sim = world()
    bursts = sim.bursts(START)
    clock = ManualClock(START)
    recorder = Recorder("sim", config, root=root, emit=lambda e: None, clock=clock)
    source = SimulatorSource(sim, paced=False, clock=clock, start=START, until=bursts[-1].end + 10)
    frames: list[Frame] = []
    async for item in source:
        assert isinstance(item, Frame)
        frames.append(item)
        recorder.feed(item)
        recorder.tick(clock.time())
    recorder.tick(clock.time() + 60)
    return recorder, frames, bursts


async def test_one_file_per_burst_exactly_its_window(tmp_path: Path) -> None:
    config = RecorderConfig(
        activity=[{"type": "message", "types": ["electrode_state"]}], pre_roll=PRE, post_roll=POST
    )
    recorder, frames, bursts = await record_virtual(config, tmp_path)
    assert len(bursts) == 4
    assert len(recorder.segments) == len(bursts)
    on_disk = read_segments(recorder.segments)
    for burst, manifest, records in zip(bursts, recorder.segments, on_disk, strict=True):
        assert (manifest.first_activity, manifest.last_activity) == (burst.start, burst.end)
        window = [f for f in frames if burst.start - PRE <= f.time <= burst.end + POST]
        assert [(f.time, f.raw) for f in records] == [(f.time, f.raw) for f in window]
        assert records[0].time >= burst.start - PRE and records[-1].time <= burst.end + POST
        assert manifest.counts["electrode_state"] == len(burst.activity)
    # The idle stretches are not on disk: the files hold only the windows' records.
    outside = [
        f for f in frames if not any(b.start - PRE <= f.time <= b.end + POST for b in bursts)
    ]
    assert len(outside) > 1000
    assert sum(m.records for m in recorder.segments) == len(frames) - len(outside)
    assert all(p.suffix in (".bin", ".idx", ".json") for p in tmp_path.rglob("*") if p.is_file())


async def test_capacitance_steps_extend_but_never_split_a_burst(tmp_path: Path) -> None:
    config = RecorderConfig(
        activity=[
            {"type": "message", "types": ["electrode_state"]},
            {"type": "step", "field": "active_capacitance.calibrated", "delta": 2.0},
        ],
        pre_roll=PRE,
        post_roll=POST,
    )
    recorder, _, bursts = await record_virtual(config, tmp_path)
    assert len(recorder.segments) == len(bursts)
    for burst, manifest in zip(bursts, recorder.segments, strict=True):
        assert manifest.first_activity == burst.start
        assert burst.end <= manifest.last_activity <= burst.settled + 0.05
        assert manifest.extra["activity"].get("step", 0) > 0


async def test_loopback_websocket_one_file_per_burst(tmp_path: Path) -> None:
    speed = 10.0  # ten stream seconds per real second; rolls scaled to match
    sim_world = SimWorld(seed=11, fps=0, idle=(4.0, 5.0), max_bursts=3, first_burst_delay=1.0)
    bursts = sim_world.bursts(0.0)
    config = RecorderConfig(
        activity=[{"type": "message", "types": ["electrode_state"]}],
        pre_roll=PRE / speed,
        post_roll=POST / speed,
    )
    events: list[Event] = []
    clock = SystemClock()
    recorder = Recorder("live", config, root=tmp_path, emit=events.append, clock=clock)
    server = await start_sim_server(
        world=sim_world, speed=speed, duration=bursts[-1].end + 1.0, wait_for_clients=1
    )
    source = WebSocketSource(server.uri, clock=clock, max_retries=0)

    async def close_when_done() -> None:
        while not server.finished.is_set():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        await source.aclose()

    closer = asyncio.create_task(close_when_done())
    try:
        async with asyncio.timeout(30):
            with contextlib.suppress(ConnectionError):
                async for item in source:
                    if isinstance(item, Frame):
                        recorder.feed(item)
    finally:
        closer.cancel()
        await source.aclose()
        await server.close()
    recorder.close()
    assert len(recorder.segments) == len(bursts)
    for burst, manifest in zip(bursts, recorder.segments, strict=True):
        assert manifest.counts.get("electrode_state") == len(burst.activity)
    assert [e.name for e in events].count("recording.started") == len(bursts)
