"""The engine end to end in virtual time, its rule runner, actions and schedulers."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import textwrap
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.core.clock import ManualClock
from engine.recording.reader import RecordingReader
from engine.rules.loader import load_rules
from engine.rules.model import Rule
from engine.rules.schedule import Schedule
from engine.runtime.actions import ActionRunner
from engine.runtime.engine import Engine
from engine.runtime.policy import Decision
from engine.runtime.rulebook import Firing, Rulebook
from engine.runtime.runner import RuleRunner
from engine.runtime.scheduler import Job, LiveScheduler, VirtualScheduler
from engine.sim.server import SimServer
from engine.sim.world import SimWorld

T0 = 1_700_000_000.0  # a multiple of 5 s: interval fires are at T0 + 5k
SIM = {"seed": 3, "fps": 2, "image_size": [64, 48], "idle": [5, 8], "first_burst_delay": 1}


def rule_file(tmp_path: Path, body: str, name: str = "rules.yaml") -> Path:
    header = f"""\
    settings:
      timezone: UTC
      recordings: {tmp_path / "recordings"}
      shots: {{folder: {tmp_path / "shots"}}}
    sources:
      sim: {{type: simulator, {", ".join(f"{k}: {json.dumps(v)}" for k, v in SIM.items())}}}
    cameras:
      bench: {{type: stream, source: sim}}
    recorders:
      moves:
        activity: [{{type: message, types: [electrode_state]}}]
        pre_roll: 1s
        post_roll: 2s
    """
    path = tmp_path / name
    path.write_text(textwrap.dedent(header) + textwrap.dedent(body), encoding="utf-8")
    return path


TIMELAPSE_AND_START_SHOTS = """\
rules:
  timelapse:
    when: {type: schedule, every: 5s}
    do: {type: shot, cameras: bench}
  on-start:
    when: {type: event, event: recording.started, recorder: moves}
    do:
      - {type: shot, cameras: bench}
      - {type: log, message: "{recorder} started at {time:%H:%M:%S}"}
"""


async def test_a_virtual_run_records_each_burst_and_takes_the_shots_the_rules_ask(
    tmp_path: Path,
) -> None:
    rules = load_rules([rule_file(tmp_path, TIMELAPSE_AND_START_SHOTS)], env={})
    summary = await Engine(rules, clock=ManualClock(T0)).run(duration=30)

    bursts = [
        b for b in SimWorld(3, **{k: v for k, v in SIM.items() if k != "seed"}).bursts(T0, T0 + 30)
    ]
    assert len(summary.segments) == len(bursts) >= 2
    for burst, segment in zip(bursts, summary.segments, strict=True):
        assert segment.first_time <= burst.activity[0] - 1 + 0.05
        assert segment.last_time >= min(burst.activity[-1], T0 + 30 - 0.05)
        assert Path(segment.path).exists()
        assert RecordingReader(segment.path).manifest["complete"] is True
    timelapse = [f.time for f in summary.firings if f.rule == "timelapse"]
    assert timelapse == [T0 + 5 * k for k in range(1, 6)]  # [T0, T0 + 30): not T0, not T0 + 30
    starts = [f for f in summary.firings if f.rule == "on-start"]
    assert len(starts) == len(bursts)
    assert [f.facts["recorder"] for f in starts] == ["moves"] * len(bursts)
    shots = sorted((tmp_path / "shots").iterdir())
    assert len(shots) == len(summary.shots_ok) == len(timelapse) + len(starts)
    assert summary.shots_failed == []
    assert all(p.read_bytes()[:2] == b"\xff\xd8" for p in shots)
    assert summary.reason == "ran for 30 s"
    assert summary.frames["sim"] > 1000


async def test_a_dry_run_notes_actions_and_leaves_no_files(tmp_path: Path) -> None:
    rules = load_rules([rule_file(tmp_path, TIMELAPSE_AND_START_SHOTS)], env={})
    summary = await Engine(rules, clock=ManualClock(T0), dry_run=True).run(duration=20)
    assert summary.segments and summary.dry_run
    assert not (tmp_path / "recordings").exists() and not (tmp_path / "shots").exists()
    assert not Path(summary.segments[0].path).exists()  # written to a temporary folder, removed
    notes = [what for _, what in summary.notes]
    shots = [n for n in notes if n.startswith("shot bench (at ")]  # virtual time: exact moments
    assert len(shots) == len(summary.firings)
    assert any(n.startswith("log: moves started at ") for n in notes)


async def test_record_actions_drive_a_manual_recorder(tmp_path: Path) -> None:
    body = """\
    rules:
      start-on-schedule:
        when: {type: schedule, at: "22:13:30"}
        do: {type: record, recorder: manual}
      stop-on-schedule:
        when: {type: schedule, at: "22:13:35"}
        do: {type: record, recorder: manual, action: stop}
    """
    path = rule_file(tmp_path, body)
    path.write_text(
        path.read_text().replace("recorders:\n", "recorders:\n  manual: {pre_roll: 0}\n"),
        encoding="utf-8",
    )
    rules = load_rules([path], env={})
    summary = await Engine(rules, clock=ManualClock(T0)).run(duration=20)  # T0 is 22:13:20 UTC
    (manual,) = [s for s in summary.segments if s.recorder == "manual"]
    assert manual.start_reason == "rule start-on-schedule"
    assert manual.stop_reason == "rule stop-on-schedule"
    assert T0 + 10 <= manual.first_time < T0 + 10.1
    assert T0 + 14.9 < manual.last_time <= T0 + 15


# -- the rule runner: modes with real tasks ----------------------------------------


def _rule(mode: str, limit: int = 10) -> Rule:
    return Rule.model_validate(
        {
            "when": {"type": "schedule", "every": 1},
            "do": {"type": "log", "message": "x"},
            "mode": mode,
            "max": limit,
        }
    )


class Gate:
    """A perform coroutine whose runs wait until released, recording starts and ends."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started: list[int] = []
        self.ended: list[int] = []
        self.cancelled: list[int] = []

    async def __call__(self, rule: Rule, firing: Firing) -> None:
        self.started.append(firing.count)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(firing.count)
            raise
        self.ended.append(firing.count)


async def _fire(
    mode: str, n: int, limit: int = 10
) -> tuple[Gate, RuleRunner, list[Decision | None]]:
    book = Rulebook({"r": _rule(mode, limit)})
    gate = Gate()
    runner = RuleRunner(book, gate)
    decisions = []
    for i in range(n):
        firing = book.on_schedule("r", 0, float(i))
        assert firing is not None
        decisions.append(runner.submit(firing))
        await asyncio.sleep(0)
    return gate, runner, decisions


async def test_single_mode_drops_firings_while_running() -> None:
    gate, runner, decisions = await _fire("single", 3)
    assert decisions == [Decision.START, Decision.DROP, Decision.DROP]
    gate.release.set()
    assert await runner.stop(1.0) == 0
    assert gate.ended == [1]


async def test_queued_mode_runs_waiting_firings_in_order_up_to_the_limit() -> None:
    gate, _, decisions = await _fire("queued", 4, limit=2)
    assert decisions == [Decision.START, Decision.QUEUE, Decision.QUEUE, Decision.DROP]
    gate.release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert gate.ended == [1, 2, 3]


async def test_parallel_mode_runs_up_to_max_at_once() -> None:
    gate, runner, decisions = await _fire("parallel", 3, limit=2)
    assert decisions == [Decision.START, Decision.START, Decision.DROP]
    assert runner.in_flight == 2
    gate.release.set()
    await runner.stop(1.0)
    assert sorted(gate.ended) == [1, 2]


async def test_restart_mode_cancels_the_running_one() -> None:
    gate, runner, decisions = await _fire("restart", 3)
    assert decisions == [Decision.START, Decision.RESTART, Decision.RESTART]
    await asyncio.sleep(0)
    assert sorted(gate.cancelled) == [1, 2]
    gate.release.set()
    await runner.stop(1.0)
    assert gate.ended == [3]


async def test_stopping_cancels_runs_that_do_not_finish_in_time() -> None:
    gate, runner, _ = await _fire("parallel", 2)
    assert await runner.stop(0.01) == 2
    assert sorted(gate.cancelled) == [1, 2]
    firing = runner.rulebook.on_schedule("r", 0, 99.0)
    assert firing is not None and runner.submit(firing) is None  # no new work once stopping


# -- actions ---------------------------------------------------------------------------


def _firing(rule: str = "r") -> Firing:
    return Firing(rule, T0, "event", 0, "recording.started", "sim", 1, {"recorder": "moves"})


async def test_run_action_fills_in_fields_and_runs_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    script = "import sys; open(sys.argv[1], 'w').write(' '.join(sys.argv[2:]))"
    rule = Rule.model_validate(
        {
            "when": {"type": "event", "event": "recording.started"},
            "do": {
                "type": "run",
                "argv": [
                    sys.executable,
                    "-c",
                    script,
                    str(out),
                    "{rule}",
                    "{recorder}",
                    "{time:%Y-%m-%dT%H:%M:%S}",
                    "$(not a shell)",
                ],
            },
        }
    )
    actions = ActionRunner(shots=None, recorders={}, tz=UTC)
    await actions.run(rule, _firing())
    assert out.read_text() == "r moves 2023-11-14T22:13:20 $(not a shell)"
    assert (actions.commands, actions.command_failures) == (1, 0)


async def test_run_action_kills_a_command_that_overruns(caplog: pytest.LogCaptureFixture) -> None:
    rule = Rule.model_validate(
        {
            "when": {"type": "event", "event": "recording.started"},
            "do": [
                {
                    "type": "run",
                    "argv": [sys.executable, "-c", "import time; time.sleep(30)"],
                    "timeout": 0.2,
                },
                {"type": "run", "argv": [sys.executable, "-c", "raise SystemExit(3)"]},
                {"type": "log", "message": "after {rule}", "level": "warning"},
            ],
        }
    )
    actions = ActionRunner(shots=None, recorders={}, tz=UTC)
    await actions.run(rule, _firing())
    assert actions.command_failures == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("ran longer than 0.2s and was killed" in m for m in messages)
    assert any("exited with 3" in m for m in messages)
    assert "after r" in messages  # one failing action does not stop the next


# -- schedulers --------------------------------------------------------------------------


def test_the_virtual_scheduler_fires_in_time_order_and_reschedules_changed_jobs() -> None:
    every5 = Job(Schedule(tz=UTC, every=5), 1.0, "five")
    every2 = Job(Schedule(tz=UTC, every=2), 1.0, "two")
    scheduler = VirtualScheduler(T0)
    scheduler.set_jobs({("a", 0): every5, ("b", 0): every2})
    assert scheduler.due(T0 + 10) == [
        (T0 + 2, "b", 0),
        (T0 + 4, "b", 0),
        (T0 + 5, "a", 0),
        (T0 + 6, "b", 0),
        (T0 + 8, "b", 0),
        (T0 + 10, "a", 0),
        (T0 + 10, "b", 0),
    ]
    every4 = Job(Schedule(tz=UTC, every=4), 1.0, "four")
    assert scheduler.set_jobs({("a", 0): every5, ("b", 0): every4}, T0 + 10) == (0, 1, 0)
    assert scheduler.due(T0 + 12, inclusive=False) == []
    assert scheduler.next_times() == {("a", 0): T0 + 15, ("b", 0): T0 + 12}
    assert scheduler.set_jobs({}, T0 + 12) == (0, 0, 2)
    assert scheduler.due(T0 + 100) == []


async def test_the_live_scheduler_runs_on_apscheduler_in_frozen_time() -> None:
    from freezegun import freeze_time

    fired: list[tuple[str, int, float]] = []
    start = datetime(2024, 6, 1, 12, 0, 0, 500000, tzinfo=UTC)
    with freeze_time(start, real_asyncio=True) as frozen:
        now = lambda: datetime.now(UTC).timestamp()  # noqa: E731 - frozen by freezegun
        scheduler = LiveScheduler(lambda r, i, t: fired.append((r, i, t)), UTC, now)
        job = Job(Schedule(tz=UTC, every=10), 1.0, "ten")
        assert scheduler.set_jobs({("tl", 0): job}) == (1, 0, 0)
        scheduler.start()
        try:
            assert scheduler.next_times() == {("tl", 0): start.timestamp() + 9.5}
            frozen.tick(9.4)  # not due yet
            scheduler.wakeup()
            for _ in range(20):
                await asyncio.sleep(0)
            assert fired == []
            for step in (0.101, 10, 10):  # past each deadline, not on it
                frozen.tick(step)
                scheduler.wakeup()
                for _ in range(20):
                    await asyncio.sleep(0)
            # an unchanged job keeps its timing on reload
            assert scheduler.set_jobs({("tl", 0): job}) == (0, 0, 0)
            # a fire missed by more than the grace time is skipped, not run late
            frozen.tick(25)
            scheduler.wakeup()
            for _ in range(20):
                await asyncio.sleep(0)
        finally:
            scheduler.shutdown()
    base = start.timestamp() + 9.5
    assert fired == [("tl", 0, base), ("tl", 0, base + 10), ("tl", 0, base + 20)]
    assert scheduler.missed == 1


async def test_a_live_run_records_a_websocket_stream_on_loopback(
    tmp_path: Path, sim_server: Callable[..., Awaitable[SimServer]]
) -> None:
    server = await sim_server(
        seed=4, fps=4, image_size=(64, 48), speed=20, first_burst_delay=1, idle=(6, 8),
        wait_for_clients=1,
    )  # fmt: skip
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            settings:
              recordings: {tmp_path / "recordings"}
              shots: {{folder: {tmp_path / "shots"}}}
            sources:
              lab: {{type: websocket, url: "{server.uri}"}}
            cameras:
              device: {{type: stream, source: lab}}
            recorders:
              moves:
                activity: [{{type: message, types: [electrode_state]}}]
                pre_roll: 0.05
                post_roll: 0.1
            rules:
              shot-at-start:
                when: {{type: event, event: recording.started, recorder: moves}}
                do: {{type: shot, cameras: device}}
              moved:
                when: {{type: message, source: lab, types: electrode_state}}
                do: {{type: log, message: "moved"}}
            """
        ),
        encoding="utf-8",
    )
    summary = await Engine(load_rules([path], env={})).run(duration=1.5)
    assert summary.frames["lab"] > 100
    assert len(summary.segments) >= 1  # a burst every ~0.5 s of real time: at least one
    assert all(Path(s.path).exists() and s.records > 0 for s in summary.segments)
    starts = [f for f in summary.firings if f.rule == "shot-at-start"]
    assert len(starts) == len(summary.segments)
    assert len(summary.shots_ok) == len(starts) and summary.shots_failed == []
    assert summary.firing_counts["moved"] > len(starts)


async def test_the_frame_cache_holds_only_sources_a_stream_camera_reads(tmp_path: Path) -> None:
    path = rule_file(tmp_path, TIMELAPSE_AND_START_SHOTS)
    with_camera = Engine(load_rules([path], env={}), clock=ManualClock(T0), dry_run=True)
    await with_camera.run(duration=5)
    assert with_camera.cache.sources() == ["sim"]

    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "bench: {type: stream, source: sim}", "bench: {type: http, url: 'http://127.0.0.1:9/x.jpg'}"
    )
    path.write_text(text, encoding="utf-8")
    without = Engine(load_rules([path], env={}), clock=ManualClock(T0), dry_run=True)
    await without.run(duration=5)
    assert without.cache.sources() == []
    assert without.stats.frames["sim"] > 100  # the frames flowed, only the cache was skipped


async def test_a_rule_that_names_every_shot_alike_keeps_every_shot(tmp_path: Path) -> None:
    body = """\
    rules:
      same-name:
        when: {type: schedule, every: 5s}
        do: {type: shot, cameras: bench, file_name: "bench.jpg"}
      refuse-taken:
        when: {type: schedule, every: 5s}
        do: {type: shot, cameras: bench, file_name: "only.jpg", on_exists: error}
    """
    rules = load_rules([rule_file(tmp_path, body)], env={})
    summary = await Engine(rules, clock=ManualClock(T0)).run(duration=16)
    names = sorted(p.name for p in (tmp_path / "shots").iterdir())
    assert names == ["bench (2).jpg", "bench (3).jpg", "bench.jpg", "only.jpg"]
    assert len(summary.shots_ok) == 4 and len(summary.shots_failed) == 2
    with pytest.raises(Exception, match="on_exists"):
        load_rules([rule_file(tmp_path, body.replace("on_exists: error", "on_exists: x"))], env={})


def test_live_trigger_moves_past_fires_that_a_datetime_rounds_down() -> None:
    """every: 0.2s fires at times no datetime holds exactly; the next fire must still move on."""
    from apscheduler.triggers.base import BaseTrigger

    from engine.runtime.scheduler import ScheduleTrigger as LiveTrigger

    schedule = Schedule(tz=UTC, every=0.2)
    trigger: BaseTrigger = LiveTrigger(schedule)
    now = datetime.fromtimestamp(T0 + 0.05, UTC)
    fire = trigger.get_next_fire_time(None, now)
    times = []
    for _ in range(20):
        assert fire is not None
        times.append(fire.timestamp())
        fire = trigger.get_next_fire_time(fire, now)
    steps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert steps == [0.2] * 19


LIVE_SHOTS_ONLY = """
rules:
  timelapse:
    when: {type: schedule, every: 5s}
    do: {type: shot, cameras: bench}
"""


def test_the_frame_cache_keeps_past_frames_only_when_a_shot_can_ask_for_them(
    tmp_path: Path,
) -> None:
    from engine.runtime.core import EngineCore
    from engine.shots.frame_cache import FrameCache

    live = load_rules([rule_file(tmp_path, LIVE_SHOTS_ONLY)], env={})
    past = load_rules(
        [
            rule_file(
                tmp_path, LIVE_SHOTS_ONLY.replace("cameras: bench}", "cameras: bench, offset: -2s}")
            )
        ],
        env={},
    )
    scheduler = VirtualScheduler(T0)
    core = EngineCore(live, scheduler)
    core.cache = cache = FrameCache()
    core.set_recorders({})
    assert cache.past is False  # every shot is live: the newest frame serves them
    core.use_rules(past, 0.0)
    assert cache.past is True  # a reload brought a shot of two seconds before
    core.use_rules(live, 0.0)
    assert cache.past is False
    virtual = EngineCore(live, scheduler, exact_shot_times=True)
    virtual.cache = other = FrameCache()
    virtual.set_recorders({})
    assert other.past is True  # under virtual time every shot asks for its moment
