"""Schedules cannot starve the engine: a floor on intervals, bounded work per fire."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules
from engine.rules.schedule import MIN_EVERY, Schedule, ScheduleError
from engine.runtime.jobs import planned_time

UTC = ZoneInfo("UTC")
NOW = 1_764_621_706.25  # 2025-12-01, where a float's resolution is about 2e-7 s


@pytest.mark.parametrize("every", ["1e-9", "0.05s", "1ms"])
def test_an_interval_under_the_floor_is_refused_at_its_key(tmp_path: Path, every: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            rules:
              fast:
                when:
                  type: schedule
                  every: {every}
                do: {{type: log, message: hi}}
            """
        )
    )
    with pytest.raises(RuleFileError) as info:
        load_rules([path], env={})
    (error,) = info.value.errors
    assert str(error).startswith(f"{path}:5:")
    assert f"shortest interval, {MIN_EVERY:g}s" in str(error)


def test_the_pure_schedule_refuses_it_too() -> None:
    with pytest.raises(ScheduleError, match="shortest interval"):
        Schedule(tz=UTC, every=1e-9)


def test_fires_at_the_floor_advance_even_where_floats_are_coarse() -> None:
    schedule = Schedule(tz=UTC, every=MIN_EVERY)
    times = schedule.upcoming(NOW, 50)
    assert len(times) == 50
    assert all(b > a for a, b in itertools.pairwise(times))
    assert times[-1] - times[0] == pytest.approx(49 * MIN_EVERY, abs=1e-5)


class _Counting(Schedule):
    calls = 0

    def next_fire(self, after: float) -> tuple[float, float] | None:
        _Counting.calls += 1
        return super().next_fire(after)


def test_a_long_grace_on_a_short_interval_costs_a_step_per_fire() -> None:
    schedule = _Counting(tz=UTC, every=MIN_EVERY)
    _Counting.calls = 0
    fire = planned_time(schedule, NOW, lookback=86_400 + 1)  # grace: a day
    assert NOW - MIN_EVERY <= fire <= NOW
    assert _Counting.calls <= 3


def test_a_rule_at_the_floor_leaves_room_for_the_others_and_for_the_end(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from engine.cli.main import main

    (tmp_path / "r.yaml").write_text(
        textwrap.dedent(
            f"""\
            sources:
              sim: {{type: simulator, fps: 0}}
            rules:
              fast:
                when: {{type: schedule, every: {MIN_EVERY}s}}
                do: {{type: log, message: fast, level: debug}}
              slow:
                when: {{type: schedule, every: 1s}}
                do: {{type: log, message: slow, level: debug}}
            """
        )
    )
    result = CliRunner().invoke(
        main,
        ["run", str(tmp_path), "--fast", "--for", "5", "--recordings", str(tmp_path / "rec")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("ran 5.0 s")
    fast = int(result.stdout.split("  fast: ")[1].split(" ")[0])
    slow = int(result.stdout.split("  slow: ")[1].split(" ")[0])
    assert fast in (49, 50, 51)
    assert slow in (5, 6)


@pytest.mark.parametrize(
    "when,why",
    [
        ({"cron": ["*/5 * * * *"] * 51}, "at most 50 items"),
        ({"at": [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]}, "at most 500 items"),
    ],
)
def test_a_trigger_holds_a_bounded_number_of_times(when: dict, why: str) -> None:
    from pydantic import ValidationError

    from engine.rules.model import ScheduleTrigger

    with pytest.raises(ValidationError, match=why):
        ScheduleTrigger.model_validate({"type": "schedule", **when})


@pytest.mark.parametrize(
    "when,why",
    [
        ({"every": 1e308}, "more than ten years"),
        ({"every": "1e300s"}, "more than ten years"),
        ({"every": "10s", "jitter": 1e299}, "more than ten years"),
        ({"every": "10s", "grace": 1e308}, "more than ten years"),
    ],
)
def test_durations_past_ten_years_are_refused(when: dict, why: str) -> None:
    from pydantic import ValidationError

    from engine.rules.model import ScheduleTrigger

    with pytest.raises(ValidationError, match=why):
        ScheduleTrigger.model_validate({"type": "schedule", **when})


def test_other_numbers_a_typo_could_blow_up_are_bounded() -> None:
    from pydantic import ValidationError

    from engine.recorder.config import RecorderConfig
    from engine.rules.model import RunAction, Settings, ShotAction, WebSocketSourceConfig

    with pytest.raises(ValidationError, match="more than ten years"):
        ShotAction.model_validate({"type": "shot", "cameras": "c", "offset": "-1e308s"})
    with pytest.raises(ValidationError, match=r"greater than or equal to 0\.01"):
        Settings.model_validate({"tick": 1e-9})
    with pytest.raises(ValidationError, match="more than 4 EiB"):
        RecorderConfig.model_validate({"pre_roll_bytes": 1e30})
    with pytest.raises(ValidationError, match="less than or equal to 1073741824"):
        WebSocketSourceConfig.model_validate(
            {"type": "websocket", "url": "x:1", "max_size": "2GiB"}
        )
    with pytest.raises(ValidationError, match="Port out of range"):
        WebSocketSourceConfig.model_validate({"type": "websocket", "url": "ws://x:999999"})
    with pytest.raises(ValidationError, match="not an environment variable name"):
        RunAction.model_validate({"type": "run", "argv": ["ls"], "env": {"A=B": "x"}})
