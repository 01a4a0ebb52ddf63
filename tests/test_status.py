"""``Engine.status()`` and ``Engine.control`` in virtual time, and the parts they read."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest

from engine.core.clock import ManualClock
from engine.events import (
    RecordingErrored,
    ReloadApplied,
    ReloadRefused,
    RuleFired,
    ShotErrored,
    ShotSaved,
    SourceClosed,
)
from engine.rules.loader import load_rules
from engine.runtime.control import ControlRefused, UnknownTarget
from engine.runtime.engine import Engine
from engine.runtime.history import FIRINGS_PER_RULE, RunHistory
from engine.runtime.status import Rates, RecorderState

T0 = 1_700_000_000.0

RULES = """\
settings:
  timezone: UTC
sources:
  sim: {type: simulator, seed: 3, fps: 1, image_size: [64, 48], idle: [3, 4], first_burst_delay: 1}
cameras:
  bench: {type: stream, source: sim}
recorders:
  moves:
    activity: [{type: message, types: [electrode_state]}]
    post_roll: 1s
rules:
  steps:
    when:
      type: message
      types: [active_capacitance]
      where: active_capacitance.calibrated > 0 && seq > 3
    mode: single
    cooldown: 1h
    do: {type: log, message: "{event}"}
  every-10s:
    when: {type: schedule, every: 10s}
    do: {type: shot, cameras: bench}
  off:
    enabled: false
    when: {type: schedule, every: 1h}
    do: {type: log, message: never}
"""


def engine_of(tmp_path: Path, **kwargs: object) -> Engine:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(RULES), encoding="utf-8")
    return Engine(
        load_rules([path], env={}),
        clock=ManualClock(T0),
        recordings=tmp_path / "rec",
        shots_folder=tmp_path / "shots",
        **kwargs,  # type: ignore[arg-type]
    )


async def test_a_virtual_run_seen_through_status(tmp_path: Path) -> None:
    engine = engine_of(tmp_path)
    summary = await engine.run(duration=12)
    status = engine.status()
    assert status.running is False and status.virtual is True
    (source,) = status.sources
    assert (
        source.name == "sim" and source.frames >= summary.frames["sim"] > 0
    )  # received >= handled
    assert source.closed  # the engine stopped it
    (recorder,) = status.recorders
    assert recorder.state is RecorderState.CLOSED and recorder.current is None
    assert recorder.segment_count == summary.segment_count == len(recorder.segments) >= 1
    first = recorder.segments[0]
    assert first.start_reason == "activity" and first.path == Path(first.path or "").as_posix()
    assert (tmp_path / "rec" / (first.path or "")).is_file()
    (camera,) = status.cameras
    assert camera.ok == summary.shots_taken >= 1 and camera.last_shot is not None
    assert (tmp_path / "shots" / (camera.last_shot.path or "")).is_file()
    steps = status.rule("steps")
    (fired,) = steps.last_firings  # cooldown 1h: once
    assert fired.trigger == "message" and fired.event == "active_capacitance"
    # The trace: what the condition read of the message that fired it.
    assert "where" in fired.detail
    inputs = json.loads(fired.detail.split(" where ", 1)[1])
    assert inputs["active_capacitance"]["calibrated"] > 0 and inputs["seq"] > 3
    tick = status.rule("every-10s")
    assert [f.trigger for f in tick.last_firings] == ["schedule"]
    assert status.rule("off").enabled is False
    assert json.loads(json.dumps(status.to_json()))["recorders"][0]["state"] == "closed"


async def test_control_while_running_and_its_refusals(tmp_path: Path) -> None:
    engine = engine_of(tmp_path)
    run = asyncio.create_task(engine.run())
    while engine.stats.frames["sim"] < 1000:  # virtual seconds pass: camera frames to shoot
        await asyncio.sleep(0)
    control = engine.control
    with pytest.raises(UnknownTarget, match=r"no recorder named 'nope' \(known: moves\)"):
        await control.start_recorder("nope")
    with pytest.raises(UnknownTarget, match="no camera named 'x'"):
        await control.take_shot("x")
    with pytest.raises(UnknownTarget, match="no rule named 'x'"):
        await control.fire_rule("x")
    with pytest.raises(ControlRefused, match="rule off is disabled"):
        await control.fire_rule("off")
    started = await control.start_recorder("moves")
    assert started.path is not None and Path(started.path).exists()
    assert engine.status().recorder("moves").state is RecorderState.RECORDING
    fired = await control.fire_rule("every-10s")
    assert fired.detail == "fired (firing 1)"
    shot = await control.take_shot("bench")
    assert shot.task and shot.detail == "shot queued"
    stopped = await control.stop_recorder("moves")
    assert stopped.path == started.path
    engine.request_stop("test")
    await run
    with pytest.raises(ControlRefused, match="not running"):
        await control.start_recorder("moves")
    assert engine.status().rule("every-10s").last_firings[-1].detail == "fired by hand"


async def test_no_shots_in_a_dry_run(tmp_path: Path) -> None:
    engine = engine_of(tmp_path, dry_run=True)
    run = asyncio.create_task(engine.run())
    while not engine.running:
        await asyncio.sleep(0)
    with pytest.raises(ControlRefused, match="dry run"):
        await engine.control.take_shot("bench")
    engine.request_stop("test")
    await run


def test_history_keeps_errors_and_reloads_newest_last_and_bounded() -> None:
    history = RunHistory()
    history.on_event(RecordingErrored(time=1.0, recorder="moves", error="disk full"))
    history.on_event(ShotErrored(time=2.0, camera="gate", task="t", reason="timed out"))
    history.on_event(ReloadRefused(time=3.0, errors=("a.yaml:1:1: bad",)))
    history.on_event(ReloadApplied(time=4.0, changes={"rules": ("a",)}))
    history.on_event(SourceClosed(time=5.0, source="pd", reason="failed: refused"))
    history.on_event(SourceClosed(time=6.0, source="sim", reason="ended"))
    assert [n.text for n in history.errors] == [
        "recorder moves: disk full",
        "camera gate: timed out",
        "reload refused: a.yaml:1:1: bad",
        "source pd failed: refused",
    ]
    assert [n.text for n in history.reloads] == ["refused: a.yaml:1:1: bad", "applied (rules: a)"]
    assert history.camera("gate").failed == 1 and history.camera("gate").last_error is not None
    history.on_event(ShotSaved(time=7.0, camera="gate", task="u", tries=3))
    assert (history.camera("gate").ok, history.camera("gate").retries) == (1, 2)
    for i in range(FIRINGS_PER_RULE + 5):
        history.on_event(RuleFired(time=float(i), rule="r", trigger="schedule", event="schedule"))
    assert len(history.firings["r"]) == FIRINGS_PER_RULE
    assert history.firings["r"][-1].time == FIRINGS_PER_RULE + 4


def test_rates_over_the_last_seconds() -> None:
    rates = Rates()
    assert rates.sample("s", 100.0, 0, 0) == (0.0, 0.0)
    for second in range(1, 30):
        frames, size = rates.sample("s", 100.0 + second, 50 * second, 5000 * second)
    assert (frames, size) == (50.0, 5000.0)
    assert rates.sample("s", 129.5, 50 * 29, 5000 * 29)[0] < 50.0  # a pause lowers it


async def test_reloads_and_their_errors_show_newest_first(tmp_path: Path) -> None:
    from test_runtime_reload import wait_for, write

    folder = tmp_path / "rules"
    folder.mkdir()
    write(folder, tmp_path)
    engine = Engine(load_rules([folder], env={}), watch=[folder], env={}, reload_debounce=0.05)
    run = asyncio.create_task(engine.run())
    await wait_for(lambda: engine.recorders and engine.sources)
    await asyncio.sleep(0.2)  # the watcher is up
    extra = "  hello:\n    when: {type: event, event: recording.started}\n    do: {type: log, message: hi}\n"
    write(folder, tmp_path, every="2h", extra=extra)
    await wait_for(lambda: len(engine.reloads) == 1)
    status = engine.status()
    assert [r.name for r in status.rules] == ["timelapse", "hello"]
    assert status.rule("timelapse").triggers == ("every 2h",)
    assert [n.text for n in status.reloads] == ["applied (rules: hello, timelapse)"]
    (folder / "rules.yaml").write_text("rules:\n  broken: {when: {type: schedule, cron: nope}}\n")
    await wait_for(lambda: len(engine.reloads) == 2)
    status = engine.status()
    assert status.reloads[0].text.startswith("refused: ")
    assert "rules.yaml:2:" in status.reloads[0].text
    assert status.reloads[1].text == "applied (rules: hello, timelapse)"
    assert status.errors[0].text.startswith("reload refused: ") and status.error_count == 1
    assert [r.name for r in status.rules] == ["timelapse", "hello"]  # the old rules run on
    engine.request_stop("test over")
    await run
