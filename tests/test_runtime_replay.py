"""Determinism: a replay of a recording reports the firings and segments the live run had."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

from click.testing import CliRunner

from engine.cli.run import replay as replay_command
from engine.core.clock import ManualClock
from engine.rules.loader import load_rules
from engine.runtime.engine import Engine
from engine.runtime.replay import replay

T0 = 1_700_000_000.0

RULES = """\
settings:
  timezone: UTC
  recordings: {root}/recordings
  shots: {{folder: {root}/shots}}
sources:
  sim: {{type: simulator, seed: 7, fps: 2, image_size: [64, 48], idle: [4, 7], first_burst_delay: 1}}
cameras:
  bench: {{type: stream, source: sim}}
recorders:
  everything: {{pre_roll: 0}}           # manual: started when the engine starts
  moves:
    activity: [{{type: message, types: [electrode_state]}}]
    pre_roll: 1s
    post_roll: 2s
rules:
  record-everything:
    when: {{type: event, event: engine.started}}
    do: {{type: record, recorder: everything}}
  timelapse:
    when: {{type: schedule, every: 5s, jitter: 1s}}
    do: {{type: shot, cameras: bench}}
  on-start:
    when: {{type: event, event: recording.started, recorder: moves}}
    do: {{type: shot, cameras: bench, offset: -0.5s}}
  on-move:
    when: {{type: message, types: electrode_state}}
    cooldown: 3s
    do: {{type: log, message: "move {{seq}}"}}
  big-signal:
    when: {{type: message, where: "active_capacitance.calibrated > 30.0"}}
    cooldown: 1s
    do: {{type: log, message: "droplet on the active electrode"}}
"""

COMPARED = ("timelapse", "on-start", "on-move", "big-signal")


def _firings(summary) -> list[tuple[str, float, str]]:
    return [(f.rule, f.time, f.event) for f in summary.firings if f.rule in COMPARED]


def _moves(summary) -> list[tuple[float | None, float | None, int, str]]:
    return [
        (s.first_time, s.last_time, s.records, s.start_reason)
        for s in summary.segments
        if s.recorder == "moves"
    ]


async def test_replaying_the_recording_of_a_run_reports_the_same_firings(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(RULES.format(root=tmp_path)), encoding="utf-8")
    rules = load_rules([path], env={})
    live = await Engine(rules, clock=ManualClock(T0)).run(duration=40)
    (everything,) = [s for s in live.segments if s.recorder == "everything"]
    log = Path(everything.path)
    assert everything.records == live.frames["sim"]

    replayed = await replay(log, rules)

    live_firings = _firings(live)
    assert {rule for rule, _, _ in live_firings} == set(COMPARED)  # every kind of trigger fired
    assert _firings(replayed) == live_firings
    assert _moves(replayed) == _moves(live)
    assert len(_moves(live)) >= 3
    # a dry run: no shots taken, no new files
    assert replayed.dry_run and replayed.shots_ok == []
    assert sorted(p.name for p in (tmp_path / "recordings").rglob("*.bin")) == sorted(
        Path(s.path).name for s in live.segments
    )
    shots = len(list((tmp_path / "shots").iterdir()))
    assert (
        shots
        == len(live.shots_ok)
        == sum(1 for rule, _, _ in live_firings if rule in ("timelapse", "on-start"))
    )

    # the command line reports the same, as JSON
    args = [str(log), str(path), "--json"]
    result = await asyncio.to_thread(CliRunner().invoke, replay_command, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    cli_firings = [
        (f["rule"], f["time"], f["event"]) for f in report["firings"] if f["rule"] in COMPARED
    ]
    assert cli_firings == live_firings
    assert report["dry_run"] is True
    assert all(s["path"] is None for s in report["segments"])
    actions = [a["action"] for a in report["actions"] if a["rule"] == "on-start"]
    assert actions and all(a.startswith("shot bench (at ") for a in actions)
    assert len(list((tmp_path / "shots").iterdir())) == shots


async def test_replay_picks_the_source_from_the_manifest_or_asks(tmp_path: Path) -> None:
    from engine.runtime.replay import ReplayError, replay_source_name

    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(RULES.format(root=tmp_path)), encoding="utf-8")
    rules = load_rules([path], env={})
    live = await Engine(rules, clock=ManualClock(T0)).run(duration=3)
    log = live.segments[0].path
    assert replay_source_name(log, rules) == "sim"
    try:
        replay_source_name(log, rules, "lab")
    except ReplayError as exc:
        assert "no source of that name (sim)" in str(exc)
    else:
        raise AssertionError("an unknown --source must be refused")
