"""The typed event model: JSON both ways for every kind, and what the engine publishes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from engine.core.clock import ManualClock
from engine.events import (
    EVENT_TYPES,
    SCHEMA_VERSION,
    Event,
    EventFormatError,
    EventKind,
    RecordingStarted,
    ReloadApplied,
    RuleFired,
    ShotSaved,
    SourceConnected,
)
from engine.rules.loader import load_rules
from engine.runtime.engine import Engine
from tests.test_runtime import T0, TIMELAPSE_AND_START_SHOTS, rule_file


def sample(cls: type[Event]) -> Event:
    """An instance with every field set to a value of its type that is not the default."""
    values: dict[str, Any] = {"time": 1733070000.25}
    for f in dataclasses.fields(cls):
        if f.name == "time":
            continue
        hint = str(f.type)
        if f.name == "extra":
            values[f.name] = {"rule": "r1", "n": 3}
        elif f.name == "changes":
            values[f.name] = {"rules": ("a", "b")}
        elif hint.startswith("tuple"):
            values[f.name] = ("one", "two")
        elif "bool" in hint:
            values[f.name] = False
        elif "float" in hint:
            values[f.name] = 12.5
        elif "int" in hint:
            values[f.name] = 7
        else:
            values[f.name] = f"{f.name}-value"
    return cls(**values)


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.kind.value)
def test_every_kind_goes_to_json_and_back_unchanged(cls: type[Event]) -> None:
    event = sample(cls)
    text = json.dumps(event.to_json())  # plain JSON, no custom encoder needed
    data = json.loads(text)
    assert data["v"] == SCHEMA_VERSION and data["kind"] == cls.kind.value
    assert Event.from_json(data) == event
    data["added_in_a_later_release"] = 1  # readers ignore fields they do not know
    assert Event.from_json(data) == event


def test_kinds_are_unique_and_named_as_rule_files_name_them() -> None:
    kinds = [cls.kind for cls in EVENT_TYPES]
    assert len(set(kinds)) == len(kinds) == len(EventKind)
    assert EventKind.RECORDING_STARTED == "recording.started"  # a StrEnum: rule-file names


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "JSON object"),
        ({"v": 99, "kind": "engine.started", "time": 1}, "version"),
        ({"v": 1, "kind": "nope", "time": 1}, "unknown event kind"),
        ({"v": 1, "kind": "source.gap", "time": 1, "source": "s"}, "'start'"),
        ({"v": 1, "kind": "engine.started", "time": "noon"}, "'time' must be a number"),
        ({"v": 1, "kind": "engine.started", "time": float("nan")}, "'time' must be a number"),
    ],
)
def test_json_that_is_not_an_event_says_what_is_wrong(data: Any, message: str) -> None:
    with pytest.raises(EventFormatError, match=message):
        Event.from_json(data)


def test_data_gives_rules_the_facts_with_the_shots_own_winning() -> None:
    shot = ShotSaved(
        time=5.0, camera="cam", task="t1", path="/x.jpg", extra={"rule": "r", "camera": "other"}
    )
    assert shot.data["rule"] == "r" and shot.data["camera"] == "cam" and "time" not in shot.data
    changes = ReloadApplied(time=1.0, changes={"rules": ("a",)})
    assert changes.data == {"changes": {"rules": ("a",)}}


async def test_the_engine_publishes_every_event_to_listeners_and_streams(tmp_path: Path) -> None:
    rules = load_rules([rule_file(tmp_path, TIMELAPSE_AND_START_SHOTS)], env={})
    heard: list[Event] = []
    engine = Engine(rules, clock=ManualClock(T0))
    engine.subscribe(heard.append)
    failing = engine.subscribe(lambda event: 1 / 0)  # a faulty listener costs nobody anything
    stream = engine.events(maxsize=5)
    summary = await engine.run(duration=12)
    failing()
    kinds = [e.kind for e in heard]
    assert kinds[0] is EventKind.SOURCE_CONNECTED or kinds[0] is EventKind.ENGINE_STARTED
    assert EventKind.ENGINE_STARTED in kinds and kinds.index(EventKind.ENGINE_STOPPING) > 0
    assert kinds[-1] in (
        EventKind.SOURCE_CLOSED,
        EventKind.RECORDING_STOPPED,
        EventKind.SHOT_SUCCESS,
    )
    started = [e for e in heard if isinstance(e, RecordingStarted)]
    assert len(started) == len([e for e in heard if e.kind is EventKind.RECORDING_STOPPED]) >= 1
    fired = [e for e in heard if isinstance(e, RuleFired)]
    assert len(fired) == sum(summary.firing_counts.values()) and fired[0].detail
    assert {e.rule for e in fired} == {"timelapse", "on-start"}
    assert any(isinstance(e, SourceConnected) and e.source == "sim" for e in heard)
    shots = [e for e in heard if isinstance(e, ShotSaved)]
    assert len(shots) == summary.shots_taken
    # The stream kept the last five and counted the rest as dropped; then it ended.
    held = [event async for event in stream]
    assert held == heard[-5:] and stream.dropped == len(heard) - 5


class Probe:
    """An adapter: started once the engine is up, closed after its last event."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.engine: Engine | None = None

    async def start(self, engine: Engine) -> None:
        self.engine = engine
        self.log.append("start")
        engine.subscribe(lambda event: self.log.append(event.name))

    async def aclose(self) -> None:
        self.log.append("close")


async def test_adapters_start_before_the_first_event_and_close_after_the_last(
    tmp_path: Path,
) -> None:
    rules = load_rules([rule_file(tmp_path, TIMELAPSE_AND_START_SHOTS)], env={})
    probe = Probe()
    engine = Engine(rules, clock=ManualClock(T0), adapters=[probe])
    await engine.run(duration=3)
    assert probe.engine is engine
    assert probe.log[0] == "start" and probe.log[-1] == "close"
    assert "engine.started" in probe.log and "engine.stopping" in probe.log


def test_json_never_carries_nan_or_infinity() -> None:
    shot = ShotSaved(time=1.0, camera="c", task="t", extra={"level": float("nan"), "x": 1.5})
    data = shot.to_json()
    assert data["extra"] == {"level": None, "x": 1.5}
    json.loads(json.dumps(data, allow_nan=False))  # strict JSON readers take it


def test_reload_changes_must_be_lists_of_names() -> None:
    bad = {"v": 1, "kind": "reload.applied", "time": 1.0, "changes": {"rules": "abc"}}
    with pytest.raises(EventFormatError, match="lists of names"):
        Event.from_json(bad)


async def test_a_stop_asked_before_the_run_ends_it_at_once(tmp_path: Path) -> None:
    rules = load_rules(rule_file(tmp_path, TIMELAPSE_AND_START_SHOTS), env={})  # one path alone
    engine = Engine(rules, clock=ManualClock(T0))
    engine.request_stop("asked early")
    summary = await engine.run(duration=3600)
    assert summary.reason == "asked early" and summary.seconds < 3600
