"""Hot reload: a valid change applies without a restart, an invalid one keeps the old rules."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules
from engine.runtime.engine import Engine

BASE = """\
settings:
  timezone: UTC
  recordings: {root}/recordings
sources:
  sim: {{type: simulator, seed: 2, fps: 0, first_burst_delay: 30}}
recorders:
  moves:
    activity: [{{type: message, types: [electrode_state]}}]
    post_roll: {post_roll}
rules:
  timelapse:
    when: {{type: schedule, every: {every}}}
    do: {{type: log, message: tick}}
"""


def write(
    folder: Path, root: Path, *, every: str = "1h", post_roll: str = "2s", extra: str = ""
) -> None:
    text = textwrap.dedent(BASE.format(root=root, every=every, post_roll=post_roll)) + extra
    tmp = folder / ".rules.yaml.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(folder / "rules.yaml")  # as editors save: a new file renamed over the old


async def wait_for(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_rule_files_are_reloaded_while_the_engine_runs(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    write(folder, tmp_path)
    engine = Engine(load_rules([folder], env={}), watch=[folder], env={}, reload_debounce=0.05)
    run = asyncio.create_task(engine.run())
    await wait_for(lambda: engine.recorders and engine.sources)
    await asyncio.sleep(0.2)  # the watcher is up
    recorder = engine.recorders["moves"]
    source = engine.sources["sim"]
    job = ("timelapse", 0)
    before = engine.scheduler.next_times()[job]

    # a changed schedule and a new rule: rescheduled, the recorder and the source untouched
    extra = "  hello:\n    when: {type: event, event: recording.started}\n    do: {type: log, message: hi}\n"
    write(folder, tmp_path, every="2h", extra=extra)
    await wait_for(lambda: len(engine.reloads) == 1)
    assert engine.reloads[0] == {"rules": ["hello", "timelapse"]}
    assert set(engine.rulebook.rules) == {"timelapse", "hello"}
    assert engine.recorders["moves"] is recorder and engine.sources["sim"] is source
    assert engine.scheduler._jobs[job].schedule.every == 7200.0  # rescheduled
    after = engine.scheduler.next_times()[job]
    assert before is not None and before % 3600 == 0
    assert after is not None and after % 7200 == 0

    # an invalid change is reported and the running rules stay
    (folder / "rules.yaml").write_text("rules:\n  broken: {when: {type: schedule, cron: nope}}\n")
    await wait_for(lambda: len(engine.reloads) == 2)
    assert isinstance(engine.reloads[1], RuleFileError)
    assert "rules.yaml:2:" in str(engine.reloads[1])
    assert set(engine.rulebook.rules) == {"timelapse", "hello"}

    # a changed recorder is replaced; files that are not rule files are ignored
    (folder / "notes.txt").write_text("not a rule file")
    write(folder, tmp_path, every="2h", post_roll="4s", extra=extra)
    await wait_for(lambda: len(engine.reloads) == 3)
    assert engine.reloads[2] == {"recorders": ["moves"]}
    assert engine.recorders["moves"] is not recorder
    assert engine.recorders["moves"].config.post_roll == 4.0
    assert recorder.state == "closed"

    engine.request_stop("test over")
    summary = await run
    assert summary.reason == "test over"
    assert len(engine.reloads) == 3


async def test_a_reload_that_adds_a_cluster_says_it_applies_at_the_next_start_and_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The cluster link is not swapped while running (docs/cluster.md): the log says why."""
    folder = tmp_path / "rules"
    folder.mkdir()
    write(folder, tmp_path)
    engine = Engine(load_rules([folder], env={}))
    run = asyncio.create_task(engine.run())
    await wait_for(lambda: engine.recorders and engine.sources)
    (folder / "site.yaml").write_text(
        "settings:\n  cluster: {nats: 'nats://127.0.0.1:1', name: lab}\n", encoding="utf-8"
    )
    changes = await engine.apply(load_rules([folder], env={}))
    engine.request_stop("test")
    await run
    assert changes == {"at_next_start": ["settings.cluster"]}
    assert not engine.adapters and engine.firing_sink is None  # nothing was swapped in
    assert any(
        r.getMessage()
        == "settings.cluster changed: that applies when cuecap run starts again (the cluster "
        "link decides which engine of the site runs each schedule fire; swapped while running, "
        "a fire could run on two engines or on none); until then it stays as it was"
        for r in caplog.records
    )
