"""The engine over long runs and reloads: bounded summaries, no shot left behind."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC
from pathlib import Path

import pytest

from engine.core.clock import ManualClock
from engine.rules.loader import load_rules
from engine.runtime.engine import Engine
from engine.shots.frame_cache import FrameCache
from engine.shots.testing import make_jpeg

T0 = 1_700_000_000.0
RELEASE = threading.Event()


def held_jpeg(request: object) -> bytes:
    """A camera function that answers once the test lets it (runs on a worker thread)."""
    RELEASE.wait(10)
    return make_jpeg()


def rules_text(tmp_path: Path, *, timeout: str = "5s") -> str:
    return f"""\
settings:
  timezone: UTC
  shots: {{folder: {tmp_path / "shots"}}}
sources:
  sim: {{type: simulator, seed: 2, fps: 2, image_size: [64, 48]}}
cameras:
  bench: {{type: stream, source: sim}}
  held: {{type: python, function: "test_runtime_bounds:held_jpeg", timeout: {timeout}}}
rules:
  timelapse:
    when: {{type: schedule, every: 1s}}
    do: {{type: shot, cameras: bench}}
"""


async def test_a_long_run_keeps_bounded_lists_and_counts_everything(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(rules_text(tmp_path), encoding="utf-8")
    engine = Engine(load_rules([path], env={}), clock=ManualClock(T0))
    engine.stats.max_kept = 3
    summary = await engine.run(duration=12)

    fired = summary.firing_counts["timelapse"]
    assert fired >= 10 and len(summary.firings) == 3
    assert summary.shots_taken == fired and len(summary.shots_ok) == 3
    assert all(Path(p).exists() for p in summary.shots_ok)
    assert f"shots taken: {fired}, failed: 0" in summary.render(UTC)


async def test_a_shot_service_replaced_by_a_reload_finishes_before_the_run_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(rules_text(tmp_path), encoding="utf-8")
    RELEASE.clear()
    engine = Engine(load_rules([path], env={}), recordings=tmp_path / "rec")
    run = asyncio.create_task(engine.run())
    async with asyncio.timeout(10):
        while engine.shots is None or "held" not in engine.shots.cameras:
            await asyncio.sleep(0.01)
    old = engine.shots
    _, shot_path = old.submit("held")

    path.write_text(rules_text(tmp_path, timeout="6s"), encoding="utf-8")  # the camera changed
    changes = await engine.apply(load_rules([path], env={}))
    assert changes["cameras"] == ["held"] and engine.shots is not old
    engine.request_stop("test")
    await asyncio.sleep(0.05)
    RELEASE.set()  # the old service's shot ends only now, while the engine shuts down
    summary = await asyncio.wait_for(run, 10)

    assert old.closed and shot_path is not None and shot_path.exists()
    assert str(shot_path) in summary.shots_ok
    assert not engine._retiring


async def test_a_reload_that_fails_to_apply_changes_nothing_and_the_watcher_goes_on(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    path = folder / "rules.yaml"
    path.write_text(rules_text(tmp_path), encoding="utf-8")
    engine = Engine(
        load_rules([folder], env={}),
        recordings=tmp_path / "rec",
        watch=[folder],
        env={},
        reload_debounce=0.05,
    )
    run = asyncio.create_task(engine.run())
    try:
        async with asyncio.timeout(10):
            while not engine.sources:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # the watcher is up
            # Valid as a file (module:function), but the module does not exist: apply fails.
            path.write_text(
                rules_text(tmp_path).replace("test_runtime_bounds:held_jpeg", "no_such_mod:f"),
                encoding="utf-8",
            )
            while not engine.reloads:
                await asyncio.sleep(0.02)
            assert isinstance(engine.reloads[0], Exception)
            assert "no_such_mod" in str(engine.reloads[0])
            assert engine.rules.cameras["held"].function == "test_runtime_bounds:held_jpeg"
            path.write_text(rules_text(tmp_path, timeout="7s"), encoding="utf-8")
            while len(engine.reloads) < 2:
                await asyncio.sleep(0.02)
        assert isinstance(engine.reloads[1], dict) and "cameras" in engine.reloads[1]
    finally:
        engine.request_stop("test")
        await asyncio.wait_for(run, 10)


async def test_frames_that_fail_are_counted_in_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: FrameCache, frame: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(FrameCache, "update", broken)
    path = tmp_path / "rules.yaml"
    no_rules = rules_text(tmp_path).split("rules:\n  timelapse")[0]  # no shot waits for frames
    path.write_text(no_rules, encoding="utf-8")
    summary = await Engine(load_rules([path], env={}), clock=ManualClock(T0)).run(duration=2)
    handled = sum(summary.frames.values())
    assert handled > 3
    assert f"{handled} frame(s) could not be handled (see the log)" in summary.errors


def test_a_recorder_whose_tick_keeps_failing_does_not_flood_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        name = "broken"

        def tick(self, now: float) -> None:
            raise OSError("disk gone")

    path = tmp_path / "rules.yaml"
    path.write_text(rules_text(tmp_path), encoding="utf-8")
    engine = Engine(load_rules([path], env={}), clock=ManualClock(T0))
    engine.recorders["broken"] = Broken()
    for i in range(1000):  # 100 s of ticks
        engine._tick(T0 + i / 10)
    logged = [r.getMessage() for r in caplog.records if "tick failed" in r.getMessage()]
    assert logged == [f"recorder broken: tick failed ({n} times)" for n in (1, 10, 100, 1000)]


def test_the_summary_counts_segments_beyond_those_it_keeps() -> None:
    from engine.runtime.summary import Segment, Summary

    kept = Segment(
        recorder="moves",
        path="a.bin",
        first_time=1.0,
        last_time=2.0,
        records=3,
        bytes=30,
        start_reason="activity",
        stop_reason="post_roll",
    )
    text = Summary(started=0, ended=9, reason="end", segments=[kept], segment_count=1500).render(
        UTC
    )
    assert "segments recorded: 1500" in text
    assert "... and 1499 more" in text
