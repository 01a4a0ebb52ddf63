"""The site's records and warnings, pure: bounded encoding, strict decoding, what is warned about."""

from __future__ import annotations

import dataclasses
import json

import pytest

from engine.cluster.errors import ClusterError
from engine.cluster.roster import (
    MAX_ITEMS,
    MAX_RECORD,
    MAX_TEXT,
    CameraLoad,
    EngineCounts,
    EngineRecord,
    EngineState,
    LinkStatus,
    RecentFirings,
    RunningFire,
    SiteFiring,
    SourceUse,
    decode,
    encode,
    firing_of,
    no_site,
    site_status,
    table,
    warnings,
)
from engine.events import RuleFired

NOW = 1_800_000_000.0


def record(
    name: str, *, seen: float = NOW, digest: str = "a" * 32, **changes: object
) -> EngineRecord:
    base = EngineRecord(
        name=name,
        host="lab-1",
        pid=41,
        version="0.1.0",
        started=NOW - 60,
        seen=seen,
        ttl=3.0,
        state=EngineState.RUNNING,
        rules_hash=digest,
        rules=("tick", "snap"),
        running=(RunningFire("tick", NOW - 1, 1),),
        runs_in_flight=1,
        cameras=(CameraLoad("cam", 1, 2),),
        sources=(SourceUse("sim", "simulator", True, 120, 2.0),),
        recorders=(),
        counts=EngineCounts(10, 4, 1, 0),
        link=LinkStatus(True, 0, 0, 0, 0),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_record_survives_its_json_with_its_types() -> None:
    mine = record("e0")
    back = decode(encode(mine))
    assert back == mine
    assert back.state is EngineState.RUNNING and isinstance(back.running[0], RunningFire)


def test_a_record_stays_within_its_bound_and_says_it_was_cut() -> None:
    huge = record(
        "e" * 5000,
        rules=tuple(f"rule-{i}-{'x' * 150}" for i in range(5000)),
        sources=tuple(SourceUse(f"s{i}" * 80, "websocket", True, i, 1.0) for i in range(500)),
    )
    data = encode(huge)
    assert len(data) <= MAX_RECORD
    back = decode(data)
    assert back.truncated
    assert len(back.name) == MAX_TEXT and back.name.endswith("…")
    assert 0 < len(back.rules) <= MAX_ITEMS and all(len(r) <= MAX_TEXT for r in back.rules)
    assert all(len(s.name) <= MAX_TEXT for s in back.sources)
    assert not decode(encode(record("e0"))).truncated


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"not json", "not JSON"),
        (b'{"v": 2}', "version 2"),
        (b"[1]", "version None"),
        (json.dumps({**json.loads(encode(record("e0"))), "state": "dancing"}).encode(), "'state'"),
        (json.dumps({**json.loads(encode(record("e0"))), "pid": "many"}).encode(), "'pid'"),
        (b" " * (MAX_RECORD + 1), "at most"),
        (b"[" * 5000, "nested"),  # within the size bound, deeper than Python's stack
        (b'{"v": 1, "rules": ' + b"[" * 2000 + b"]" * 2000 + b"}", "nested"),
        (b'{"v": 1, "seen": NaN}', "NaN"),
        (b'{"v": 1, "seen": 1e999}', "finite"),
    ],
)
def test_a_bad_record_is_refused_saying_what_is_wrong(data: bytes, why: str) -> None:
    with pytest.raises(ClusterError, match=why):
        decode(data)


def test_engines_on_different_rule_files_and_silent_ones_are_warned_about() -> None:
    site = [record("e0"), record("e1"), record("e2", digest="b" * 32, seen=NOW - 2.5)]
    said = warnings(site, NOW)
    assert said[0] == (
        f"the engines run different rule files (e0, e1 on {'a' * 12}; e2 on {'b' * 12}): "
        "they may decide differently until every engine has the same files"
    )
    assert (
        said[1] == "engine e2 not seen for 2.5 s (it is taken for gone 3 s after it was last seen)"
    )
    assert len(said) == 2
    assert warnings([record("e0"), record("e1", seen=NOW - 1.9)], NOW) == []  # within two beats
    away = record("e1", link=LinkStatus(False, 2, 5, 0, 0), version="0.2.0")
    assert warnings([record("e0"), away], NOW) == [
        "the engines run different cuecap versions: 0.1.0, 0.2.0",
        "engine e1 has lost the NATS server",
    ]


def test_the_site_shows_live_engines_by_name_and_its_newest_fires_first() -> None:
    records = {"b": record("b"), "a": record("a"), "gone": record("gone", seen=NOW - 3.01)}
    recent = RecentFirings()
    for i in range(60):
        recent.add(SiteFiring("a", "tick", NOW - 60 + i, "schedule", ""))
    status = site_status("lab", "a", NOW, records, recent.items, notes=["reader's own note"])
    assert [e.name for e in status.engines] == ["a", "b"]
    assert len(status.firings) == 50 and status.firings[0].time == NOW - 1
    assert status.warnings == ("reader's own note",)
    assert status.engine_named("b").name == "b"
    with pytest.raises(KeyError):
        status.engine_named("gone")
    body = status.to_json()
    assert body["engines"][0]["state"] == "running" and body["site"] == "lab"


def test_a_fire_of_the_site_comes_from_the_rule_fired_event() -> None:
    fired = RuleFired(time=NOW, rule="tick", trigger="schedule", event="", detail="delivery 2")
    assert firing_of("e1", fired) == SiteFiring("e1", "tick", NOW, "schedule", "delivery 2")
    # Any client can publish a fire with a header and texts as long as a message: each is cut,
    # so the site's last fires stay as small as its records.
    huge = RuleFired(time=NOW, rule="r" * 10**5, trigger="t" * 10**5, event="", detail="d" * 10**5)
    kept = firing_of("e" * 10**5, huge)
    assert [len(text) for text in (kept.engine, kept.rule, kept.trigger, kept.detail)] == [200] * 4


def test_the_table_has_one_line_per_engine_then_the_warnings() -> None:
    site = site_status(
        "lab", "", NOW, {"e0": record("e0"), "e1": record("e1", digest="c" * 32)}, ()
    )
    lines = table(site)
    assert lines[0] == "site lab: 2 engine(s)"
    assert lines[1].split() == ["engine", "host", "state", "seen", "rules", "runs", "now", "shots",
                                "sources"]  # fmt: skip
    assert lines[2].split()[:6] == ["e0", "lab-1", "running", "0.0", "s", "ago"]
    assert (
        "tick 07:59:59Z" in lines[2]
        and "cam 1 in flight, 2 waiting" in lines[2]
        and "sim" in lines[2]
    )
    assert lines[4].startswith("warning: the engines run different rule files")
    assert table(no_site(NOW)) == [no_site(NOW).note]


def test_the_documented_cuecap_site_output_is_what_the_table_prints() -> None:
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "cluster.md").read_text("utf-8")
    (shown,) = re.findall(r"```text\n(site lab: .*?)```", doc, re.S)
    now = 1796160000.4
    a, c = "4f1c09a2b7e3" + "0" * 20, "9d0e55c1a4f8" + "0" * 20
    quiet = {"running": (), "cameras": (CameraLoad("cam", 0, 0),), "sources": ()}
    records = {
        "cam-a-1187": record("cam-a-1187", seen=now - 0.4, digest=a, host="cam-a",
                             running=(RunningFire("tick", 1796160000.0, 1),),
                             cameras=(CameraLoad("cam", 1, 0),)),
        "cam-b-2203": record("cam-b-2203", seen=now - 0.9, digest=a, host="cam-b", **quiet),
        "cam-c-981": record("cam-c-981", seen=now - 1.0, digest=c, host="cam-c", **quiet),
    }  # fmt: skip
    assert "\n".join(table(site_status("lab", "", now, records, ()))) + "\n" == shown


def test_the_site_picture_is_there_and_named() -> None:
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    assert "](cluster-site.png)" in (docs / "cluster.md").read_text("utf-8")
    assert (docs / "cluster-site.png").stat().st_size > 10_000
