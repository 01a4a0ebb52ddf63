"""The stream of a source as both ends see it: stamps, and how holes become gaps (pure)."""

from __future__ import annotations

import pytest

from engine.cluster.feedcore import (
    MAX_HEADER,
    FeedError,
    FeedReader,
    ItemKind,
    Stamp,
    Stamper,
    parse,
)
from engine.core.frame import Gap

T = 1_700_000_000.0


def take_all(reader: FeedReader, stamps: list[Stamp], now: float | None = None) -> list[object]:
    """What the consumer yields: gaps, and the times of delivered frames."""
    out: list[object] = []
    for stamp in stamps:
        gap, deliver = reader.take(stamp, stamp.time if now is None else now)
        if gap is not None:
            out.append(gap)
        if deliver:
            out.append(stamp.time)
    return out


def test_a_stamp_reads_back_as_itself_times_exactly() -> None:
    stamper = Stamper("e1")
    stamps = [
        stamper.start(7, T + 0.1),
        stamper.frame(T + 0.123456789012),
        stamper.gap(Gap("dev", T + 1 / 3, T + 2 / 3, "closed by server (code 1001)")),
        stamper.beat(T + 5),
        stamper.end(T + 6),
    ]
    assert [parse(s.headers()) for s in stamps] == stamps
    assert [s.seq for s in stamps] == [0, 1, 2, 3, 4]
    assert stamps[1].headers()["Nats-Msg-Id"] == "7:1"
    goes_on = Stamper("e1")
    goes_on.start(7, T)
    goes_on.frame(T + 1)
    again = goes_on.start(9, T + 2, goes_on=True)
    assert again.follows == (7, 2) and parse(again.headers()).follows == (7, 2)


NOT_OURS = [
    None,
    {},
    {"Cuecap-Item": "frame"},
    {"Cuecap-Item": "nope", "Cuecap-Epoch": "1", "Cuecap-Seq": "0", "Cuecap-Time": "1"},
    {"Cuecap-Item": "frame", "Cuecap-Epoch": "x", "Cuecap-Seq": "0", "Cuecap-Time": "1"},
]
OURS = {"Cuecap-Item": "gap", "Cuecap-Epoch": "1", "Cuecap-Seq": "0", "Cuecap-Time": "1",
        "Cuecap-Gap-Start": "0.5"}  # fmt: skip
# Headers a server may hand over that parse as numbers but are none a publisher writes: each
# would poison the reader (a NaN or infinite time sticks in its "last known" moment for good,
# a negative or huge number makes every later item a duplicate or a loss of billions).
GARBLED = [
    {**OURS, "Cuecap-Time": "nan"},
    {**OURS, "Cuecap-Time": "inf"},
    {**OURS, "Cuecap-Gap-Start": "-inf"},
    {**OURS, "Cuecap-Seq": "-1"},
    {**OURS, "Cuecap-Epoch": "-3"},
    {**OURS, "Cuecap-Seq": "9" * 40},
    {**OURS, "Cuecap-Follows": "-1:2"},
    {**OURS, "Cuecap-Follows": "1"},
    {**OURS, "Cuecap-Time": "1" * 5000},
    {**OURS, "Cuecap-Reason": "x" * (MAX_HEADER + 1)},
    {**OURS, "Cuecap-Engine": "e" * (MAX_HEADER + 1)},
]


def test_what_cuecap_publishes_its_consumers_take_long_names_and_reasons_cut() -> None:
    s = Stamper("h" * 253 + "-4194304")  # the longest host name, and a process id
    assert parse(s.start(1, T).headers()).engine == s.engine
    long = Gap("dev", T, T + 1, "x" * 5000)  # an exception's text, say
    back = parse(s.gap(long).headers())
    assert len(back.reason) == MAX_HEADER and back.reason.startswith("xxx")
    assert len(parse(Stamper("e" * 5000).beat(T).headers()).engine) == MAX_HEADER


@pytest.mark.parametrize("headers", GARBLED)
def test_garbled_numbers_and_huge_headers_are_refused_not_taken(headers: dict[str, str]) -> None:
    parse(OURS)  # the same headers with nothing garbled are taken
    with pytest.raises(FeedError, match="Cuecap-"):
        parse(headers)


@pytest.mark.parametrize("headers", NOT_OURS)
def test_a_message_cuecap_did_not_publish_is_refused(headers: dict[str, str] | None) -> None:
    with pytest.raises(FeedError):
        parse(headers)


def test_a_steady_stream_is_frames_and_the_devices_own_gaps_as_they_were() -> None:
    s = Stamper("e1")
    device_gap = Gap("dev", T + 2.05, T + 3.5, "connection dropped without a close frame")
    stamps = [s.start(3, T), s.frame(T + 1), s.frame(T + 2), s.gap(device_gap), s.frame(T + 4)]
    out = take_all(FeedReader("remote", max_lag=5), stamps)
    assert out == [T + 1, T + 2, Gap("remote", T + 2.05, T + 3.5, device_gap.reason), T + 4]


def test_another_engine_taking_over_is_one_gap_from_the_last_word_to_its_connection() -> None:
    old, new = Stamper("e1"), Stamper("e2")
    stamps = [old.start(3, T), old.frame(T + 1), old.beat(T + 1.3)]  # then e1 dies
    stamps += [new.start(8, T + 2.4), new.frame(T + 2.5)]
    reader = FeedReader("remote", max_lag=5)
    out = take_all(reader, stamps)
    assert out == [T + 1, Gap("remote", T + 1.3, T + 2.4,
                              "engine e2 reads the source now (was e1)"), T + 2.5]  # fmt: skip
    # e1 did not know yet and published once more: an older term, dropped.
    assert take_all(reader, [old.frame(T + 1.4)]) == []
    assert reader.stats.stale == 1


def test_a_clean_stop_ends_the_term_where_it_stopped() -> None:
    old, new = Stamper("e1"), Stamper("e2")
    stamps = [old.start(3, T), old.frame(T + 1), old.end(T + 1.5), new.start(4, T + 1.6)]
    out = take_all(FeedReader("remote", max_lag=5), stamps)
    assert out == [
        T + 1,
        Gap("remote", T + 1.5, T + 1.6, "engine e2 reads the source now (was e1)"),
    ]


def test_the_same_engine_taking_its_lapsed_lease_again_goes_on_without_a_gap() -> None:
    s = Stamper("e1")
    stamps = [s.start(3, T), s.frame(T + 1), s.frame(T + 2)]
    stamps += [s.start(9, T + 2.5, goes_on=True), s.frame(T + 3)]
    reader = FeedReader("remote", max_lag=5)
    assert take_all(reader, stamps) == [T + 1, T + 2, T + 3]
    assert reader.epoch == 9


def test_items_lost_on_the_way_are_a_gap_and_copies_are_dropped() -> None:
    s = Stamper("e1")
    stamps = [s.start(3, T), s.frame(T + 1)]
    lost = [s.frame(T + 2), s.frame(T + 3)]  # the publisher's full queue dropped these
    stamps += [s.frame(T + 4)]
    reader = FeedReader("remote", max_lag=5)
    out = take_all(reader, stamps)
    assert out == [T + 1, Gap("remote", T + 1, T + 4, "2 item(s) lost on the way"), T + 4]
    assert reader.stats.lost == 2 and lost
    assert take_all(reader, [stamps[-1]]) == []  # the same item again
    assert reader.stats.duplicates == 1


def test_frames_older_than_max_lag_are_skipped_as_one_gap() -> None:
    s = Stamper("e1")
    reader = FeedReader("remote", max_lag=0.5)
    assert take_all(reader, [s.start(3, T), s.frame(T + 1)]) == [T + 1]
    # The server was away from T+1 to T+4: what was queued arrives at T+4.2, late.
    queued = [s.frame(T + 1.5), s.frame(T + 2), s.frame(T + 3.9), s.frame(T + 4.1)]
    late = "late: items came more than 0.5 s after"
    # 0.3 s old at T+4.2 is fresh enough: the gap ends there.
    assert take_all(reader, queued, now=T + 4.2) == [Gap("remote", T + 1, T + 3.9, late),
                                                     T + 3.9, T + 4.1]  # fmt: skip
    assert reader.stats.late == 2


def test_a_long_late_and_lossy_stretch_is_one_gap_with_one_reason_of_each_kind() -> None:
    """Each reason is kept once per hole: a reader far behind a lossy stream stays bounded."""
    s = Stamper("e1")
    reader = FeedReader("remote", max_lag=0.5)
    assert take_all(reader, [s.start(3, T), s.frame(T + 1)]) == [T + 1]
    stale: list[Stamp] = []
    for i in range(1000):  # every other item lost on the way, and what comes is late
        s.frame(T + 1 + i / 1000)
        stale.append(s.frame(T + 1 + i / 1000))
    assert take_all(reader, stale, now=T + 60) == []
    (gap, _) = take_all(reader, [s.frame(T + 60)], now=T + 60)
    assert gap == Gap("remote", T + 1, T + 60,
                      "1000 item(s) lost on the way; late: items came more than 0.5 s after")  # fmt: skip
    assert reader.stats.lost == 1000 and reader.stats.late == 1000


def test_what_came_before_the_consumer_started_is_no_gap() -> None:
    s = Stamper("e1")
    s.start(3, T)
    s.frame(T + 1)
    reader = FeedReader("remote", max_lag=5)
    # It starts with the stream's next message: a device gap that began before it.
    out = take_all(reader, [s.gap(Gap("dev", T + 1, T + 2, "dropped")), s.frame(T + 3)])
    assert out == [T + 3]
    assert ItemKind("beat") is ItemKind.BEAT


def test_a_lease_holder_name_from_the_server_is_cut_for_the_log() -> None:
    from engine.cluster.feedcore import MAX_HEADER
    from engine.cluster.lease import _engine_of

    assert _engine_of(b'{"engine": "' + b"e" * 100_000 + b'"}') == "e" * MAX_HEADER
    assert _engine_of(b"[[[") == "" and _engine_of(None) == ""
