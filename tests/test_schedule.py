"""The pure schedule core: fire times in virtual time, windows, zones, DST, jitter."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.rules.schedule import Schedule, ScheduleError, Window

BERLIN = ZoneInfo("Europe/Berlin")
H = 3600


def day_bounds(year: int, month: int, day: int, tz: ZoneInfo) -> tuple[float, float]:
    start = datetime(year, month, day)
    end = start + timedelta(days=1)
    return start.replace(tzinfo=tz).timestamp(), end.replace(tzinfo=tz).timestamp()


def local_times(schedule: Schedule, start: float, end: float) -> list[datetime]:
    # fire_times is (start, end]: begin just before midnight so midnight itself counts
    return [
        datetime.fromtimestamp(actual, schedule.tz)
        for _, actual in schedule.fire_times(start - 1e-3, end - 1e-3)
    ]


@pytest.mark.parametrize("tz", [UTC, BERLIN, ZoneInfo("America/New_York")])
def test_a_day_of_every_five_minutes_fires_288_times_at_the_right_instants(tz: ZoneInfo) -> None:
    schedule = Schedule(tz=tz, cron="*/5 * * * *")
    start, end = day_bounds(2024, 6, 12, tz)
    fires = [actual for _, actual in schedule.fire_times(start - 1e-3, end - 1e-3)]
    assert len(fires) == 288
    assert fires == [start + i * 300 for i in range(288)]


def test_spring_forward_skips_the_missing_hour() -> None:
    schedule = Schedule(tz=BERLIN, cron="*/5 * * * *")
    start, end = day_bounds(2024, 3, 31, BERLIN)
    times = local_times(schedule, start, end)
    assert len(times) == 276  # 23 hours
    assert not [t for t in times if t.hour == 2]
    steps = {round(b.timestamp() - a.timestamp()) for a, b in itertools.pairwise(times)}
    assert steps == {300}  # no hole in real time: 01:55 CET is followed by 03:00 CEST


def test_fall_back_fires_both_hours_for_wildcard_hours_and_once_for_fixed_times() -> None:
    start, end = day_bounds(2024, 10, 27, BERLIN)
    every_five = local_times(Schedule(tz=BERLIN, cron="*/5 * * * *"), start, end)
    assert len(every_five) == 300  # 25 hours
    assert len([t for t in every_five if t.hour == 2]) == 24  # 02:00-02:55, twice
    hourly = local_times(Schedule(tz=BERLIN, cron="30 * * * *"), start, end)
    assert len(hourly) == 25
    daily = local_times(Schedule(tz=BERLIN, cron="30 2 * * *"), start, end)
    assert [t.isoformat() for t in daily] == ["2024-10-27T02:30:00+02:00"]
    at = local_times(Schedule(tz=BERLIN, at=[2 * H + 1800]), start, end)
    assert [t.isoformat() for t in at] == ["2024-10-27T02:30:00+02:00"]


def test_a_daily_time_inside_the_spring_gap_fires_once_an_hour_later() -> None:
    start, end = day_bounds(2024, 3, 31, BERLIN)
    at = local_times(Schedule(tz=BERLIN, at=[2 * H + 1800]), start, end)
    assert [t.isoformat() for t in at] == ["2024-03-31T03:30:00+02:00"]


def test_intervals_count_elapsed_time_and_align_to_the_clock() -> None:
    schedule = Schedule(tz=BERLIN, every=3600)
    start, end = day_bounds(2024, 3, 31, BERLIN)
    assert len(local_times(schedule, start, end)) == 23
    start, end = day_bounds(2024, 10, 27, BERLIN)
    assert len(local_times(schedule, start, end)) == 25
    ten = Schedule(tz=UTC, every=10)
    after = datetime(2024, 6, 1, 12, 0, 3, tzinfo=UTC).timestamp()
    assert ten.upcoming(after, 3) == [after + 7, after + 17, after + 27]
    # the same instants whenever one asks: a replay agrees with the live run
    assert ten.next_fire(after + 7)[1] == after + 17


def test_a_working_hours_window_on_weekdays() -> None:
    schedule = Schedule(
        tz=BERLIN, every=1800, window=Window(8 * H, 18 * H, frozenset({0, 1, 2, 3, 4}))
    )
    # Friday 2024-06-14 17:00 to the next Monday 09:00
    after = datetime(2024, 6, 14, 17, 0, tzinfo=BERLIN).timestamp()
    times = [datetime.fromtimestamp(t, BERLIN) for t in schedule.upcoming(after, 4)]
    assert [t.strftime("%a %H:%M") for t in times] == [
        "Fri 17:30",
        "Mon 08:00",
        "Mon 08:30",
        "Mon 09:00",
    ]
    start, end = day_bounds(2024, 6, 12, BERLIN)
    assert len(local_times(schedule, start, end)) == 20  # 08:00 to 17:30


def test_a_night_window_wraps_past_midnight_and_belongs_to_the_day_it_opens() -> None:
    friday_night = Window(22 * H, 2 * H, frozenset({4}))
    schedule = Schedule(tz=UTC, every=3600, window=friday_night)
    after = datetime(2024, 6, 10, tzinfo=UTC).timestamp()  # a Monday
    times = [datetime.fromtimestamp(t, UTC) for t in schedule.upcoming(after, 5)]
    assert [t.strftime("%a %H:%M") for t in times] == [
        "Fri 22:00",
        "Fri 23:00",
        "Sat 00:00",
        "Sat 01:00",
        "Fri 22:00",
    ]


def test_jitter_is_bounded_spread_and_reproducible() -> None:
    a = Schedule(tz=UTC, every=60, jitter=10, seed="rule#0")
    b = Schedule(tz=UTC, every=60, jitter=10, seed="rule#0")
    c = Schedule(tz=UTC, every=60, jitter=10, seed="other#0")
    after = datetime(2024, 6, 1, tzinfo=UTC).timestamp() - 1
    fires_a = list(a.fire_times(after, after + 3600))
    assert fires_a == list(b.fire_times(after, after + 3600))
    assert [actual for _, actual in fires_a] != [
        actual for _, actual in c.fire_times(after, after + 3600)
    ]
    delays = [actual - nominal for nominal, actual in fires_a]
    assert len(delays) == 60
    assert all(0 <= d < 10 for d in delays)
    assert max(delays) - min(delays) > 5  # spread, not constant
    # asking from any point in between gives the same fires
    middle = fires_a[30][1]
    assert list(a.fire_times(middle, after + 3600)) == fires_a[31:]


def test_start_end_and_fixed_moments() -> None:
    t0 = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
    bounded = Schedule(tz=UTC, every=60, start=t0 + 30, end=t0 + 300)
    assert bounded.upcoming(t0, 10) == [t0 + 30, t0 + 90, t0 + 150, t0 + 210, t0 + 270]
    moments = Schedule(tz=UTC, dates=[t0 + 100, t0 + 5])
    assert moments.upcoming(t0, 5) == [t0 + 5, t0 + 100]
    assert moments.next_fire(t0 + 100) is None


def test_a_schedule_whose_window_excludes_every_time_never_fires() -> None:
    night_only = Schedule(tz=UTC, at=[12 * H], window=Window(22 * H, 23 * H))
    assert night_only.next_fire(0.0) is None


def test_several_cron_expressions_fire_at_their_union() -> None:
    schedule = Schedule(tz=UTC, cron=["0 8 * * *", "0 12 * * *", "0 8 * * *"])
    start, end = day_bounds(2024, 6, 12, UTC)
    assert [t.hour for t in local_times(schedule, start, end)] == [8, 12]


def test_six_field_cron_has_seconds_first() -> None:
    schedule = Schedule(tz=UTC, cron="*/15 * * * * *")
    t0 = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
    assert schedule.upcoming(t0, 3) == [t0 + 15, t0 + 30, t0 + 45]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "*/5 * * *"}, "expected 5 fields"),
        ({"cron": "61 * * * *"}, "bad cron expression"),
        ({"cron": "* * * * funday"}, "bad cron expression"),
        ({}, "exactly one of"),
        ({"every": 10, "cron": "* * * * *"}, "exactly one of"),
        ({"every": 10, "jitter": 10}, "jitter"),
        ({"every": -1}, "positive"),
    ],
)
def test_bad_schedules_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        Schedule(tz=UTC, **kwargs)
