"""The rule watcher: only rule files count, its library stays quiet, unchanged saves do nothing."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from engine.runtime.reload import watch_rules

RULES = "rules:\n  r:\n    when: {type: schedule, every: %s}\n    do: {type: log, message: hi}\n"


class FakeEngine:
    """What the watcher needs of an engine: ``apply``, counted."""

    def __init__(self) -> None:
        self.applied = 0

    async def apply(self, rules: Any) -> dict[str, list[str]]:
        self.applied += 1
        return {"rules": list(rules.rules)}


async def test_a_log_in_the_rules_folder_does_not_feed_the_watcher(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES % "10s")
    engine = FakeEngine()
    stop = asyncio.Event()
    results: list[object] = []
    log_file = tmp_path / "engine.log"

    class ToFile(logging.Handler):  # the engine's own log, kept in the rules folder
        def emit(self, record: logging.LogRecord) -> None:
            with open(log_file, "a") as f:
                f.write(self.format(record) + "\n")

    handler = ToFile(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    watcher = asyncio.create_task(
        watch_rules(
            engine.apply, [tmp_path], stop=stop, env={}, debounce_ms=20,
            on_result=results.append,
        )
    )  # fmt: skip
    try:
        await asyncio.sleep(0.3)  # the watch is set up
        for i in range(5):  # not rule files: the log, nohup.out, a swap file
            (tmp_path / "nohup.out").write_text(f"line {i}\n")
            (tmp_path / ".rules.yaml.swp").write_text(f"{i}")
            logging.getLogger("engine.test").warning("line %d", i)
            await asyncio.sleep(0.05)
        rules.touch()  # same bytes: nothing to reload
        rules.write_text(RULES % "10s")
        await asyncio.sleep(0.5)
        assert engine.applied == 0
        rules.write_text(RULES % "20s")  # a real change
        async with asyncio.timeout(10):
            while engine.applied < 1:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # the reload's own log line lands in engine.log
    finally:
        stop.set()
        await watcher
        root.removeHandler(handler)
    assert engine.applied == 1
    assert results == [{"rules": ["r"]}]
    assert not [r for r in caplog.records if r.name.startswith("watchfiles")]
    lines = log_file.read_text().splitlines()
    assert sum("reloaded" in line for line in lines) == 1
    assert len(lines) == 6  # five test lines and one reload: nothing fed itself
