"""SimulatorSource: the world as an in-process source, in virtual time or paced."""

from __future__ import annotations

import asyncio

import pytest

from engine.core.clock import ManualClock, SystemClock
from engine.core.frame import Frame, Gap
from engine.sim.world import SimWorld
from engine.sources.base import Source
from engine.sources.simulator import SimulatorSource


async def collect(source: SimulatorSource) -> list[Frame]:
    frames: list[Frame] = []
    async with asyncio.timeout(20):
        async for item in source:
            assert isinstance(item, Frame)
            frames.append(item)
    return frames


async def test_virtual_time_follows_the_world_and_moves_a_manual_clock() -> None:
    world = SimWorld(seed=6, fps=2, image_size=(64, 48), idle=(2.0, 4.0))
    clock = ManualClock(5000.0)
    source = SimulatorSource(world, clock=clock, paced=False, duration=150.0, name="pd")
    seen_clock = []
    frames: list[Frame] = []
    async for item in source:
        assert isinstance(item, Frame)
        seen_clock.append(clock.time())
        frames.append(item)
    expected = list(world.events(5000.0, 5150.0))
    assert [(f.time, f.raw) for f in frames] == expected
    assert seen_clock == [
        f.time for f in frames
    ]  # the clock is at each frame's time when handed out
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert {f.source for f in frames} == {"pd"}
    assert source.start == 5000.0
    assert source.stats.frames == len(frames) and source.stats.bytes == sum(
        len(f.raw) for f in frames
    )
    activity = [f.time for f in frames if f.kind == "electrode_state"]
    assert activity == world.activity(source.start, 5150.0) and len(activity) > 20


async def test_it_is_a_source() -> None:
    source: Source = SimulatorSource(SimWorld(fps=0), paced=False, start=0.0, until=1.0)
    items = [item async for item in source]
    assert items and not any(isinstance(i, Gap) for i in items)
    assert source.name == "sim"
    await source.aclose()


async def test_paced_frames_are_never_early() -> None:
    clock = SystemClock()
    source = SimulatorSource(
        SimWorld(seed=1, fps=0), clock=clock, paced=True, speed=2.0, duration=0.6
    )
    frames = await collect(source)
    assert source.start is not None
    expected = list(SimWorld(seed=1, fps=0).events(source.start, source.start + 0.6))
    assert [f.raw for f in frames] == [raw for _, raw in expected]
    for frame, (t, _) in zip(frames, expected, strict=True):
        # Received no earlier than due: start + (event offset) / speed.
        assert frame.time >= source.start + (t - source.start) / 2.0 - 0.002


async def test_aclose_ends_a_paced_stream_from_another_task() -> None:
    source = SimulatorSource(SimWorld(seed=1, fps=0), paced=True)
    frames: list[Frame] = []

    async def read() -> None:
        async for item in source:
            frames.append(item)  # type: ignore[arg-type]
            if len(frames) == 5:
                asyncio.get_running_loop().call_soon(asyncio.ensure_future, source.aclose())

    async with asyncio.timeout(5):
        await read()
    assert 5 <= len(frames) < 50
    assert [item async for item in source] == []


async def test_breaking_out_early_and_closing_is_clean() -> None:
    source = SimulatorSource(SimWorld(seed=2, fps=5, image_size=(64, 48)), paced=False, start=0.0)
    n = 0
    async for _ in source:
        n += 1
        if n == 1000:
            break
    await source.aclose()
    assert source.stats.frames == 1000


def test_bad_arguments() -> None:
    world = SimWorld(fps=0)
    with pytest.raises(ValueError, match="speed"):
        SimulatorSource(world, speed=0)
    with pytest.raises(ValueError, match="until"):
        SimulatorSource(world, until=5.0, duration=5.0)
    with pytest.raises(ValueError, match="duration"):
        SimulatorSource(world, duration=-1)
