"""Time points and ranges as users type them (pure: no files)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.logtools.timerange import TimeRange, TimeSpecError, parse_time, resolve_range

FIRST = 1_714_557_600.0
LAST = FIRST + 3600.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", FIRST),
        ("90", FIRST + 90),
        ("+90", FIRST + 90),
        ("2.5", FIRST + 2.5),
        (".5", FIRST + 0.5),
        ("1:30", FIRST + 90),
        ("1:02:03.5", FIRST + 3723.5),
        ("90:00", FIRST + 5400),
        ("2m", FIRST + 120),
        ("2m30s", FIRST + 150),
        ("1h", FIRST + 3600),
        ("1.5h", FIRST + 5400),
        ("45s", FIRST + 45),
        ("-30", LAST - 30),
        ("-1:00", LAST - 60),
        ("-2m", LAST - 120),
        ("@1714557700.25", 1714557700.25),
        ("1714557700.25", 1714557700.25),
        ("2024-05-01T10:05:00+00:00", FIRST + 300),
        ("2024-05-01T10:05:00Z", FIRST + 300),
        ("2024-05-01 12:05:00.5+02:00", FIRST + 300.5),
    ],
)
def test_forms_resolve_against_the_recording(text: str, expected: float) -> None:
    assert parse_time(text).resolve(FIRST, LAST) == pytest.approx(expected, abs=1e-6)


def test_naive_iso_is_local_time() -> None:
    spec = parse_time("2024-05-01T10:05:00")
    assert spec.resolve(FIRST, LAST) == datetime(2024, 5, 1, 10, 5).timestamp()


def test_large_bare_number_is_an_epoch_but_plus_keeps_it_an_offset() -> None:
    assert parse_time("1000000000").kind == "absolute"
    assert parse_time("999999999").kind == "from_start"
    assert parse_time("+1000000000").kind == "from_start"


def test_end_is_only_looked_up_when_needed() -> None:
    calls: list[int] = []

    def last() -> float:
        calls.append(1)
        return LAST

    assert parse_time("10").resolve(FIRST, last) == FIRST + 10
    assert calls == []
    assert parse_time("-10").resolve(FIRST, last) == LAST - 10
    assert calls == [1]


@pytest.mark.parametrize(
    "text", ["", "  ", "abc", "12x", "1:75", "1:60:00", "@", "@x", "5ms", "nan", "inf", "1h2"]
)
def test_bad_times_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(TimeSpecError) as info:
        parse_time(text)
    assert repr(text) in str(info.value)


def test_bad_time_message_lists_forms() -> None:
    with pytest.raises(TimeSpecError, match=r"ISO datetime.*epoch"):
        parse_time("yesterday")


def test_range_is_half_open() -> None:
    r = TimeRange(10.0, 20.0)
    assert 10.0 in r
    assert 19.999 in r
    assert 20.0 not in r
    assert 9.999 not in r
    assert 1e12 in TimeRange(10.0, None)
    assert -5.0 in TimeRange(None, 20.0)


def test_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(TimeSpecError, match="before it starts"):
        resolve_range(parse_time("30"), parse_time("10"), FIRST, LAST)


def test_describe_shows_open_ends() -> None:
    assert TimeRange(None, 5.0).describe() == "[the start, 5.000000)"
    assert TimeRange(1.0, None).describe() == "[1.000000, the end)"
    assert TimeRange().is_open
    assert datetime.fromtimestamp(FIRST, UTC).hour == 10
