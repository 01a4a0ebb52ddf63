"""A rule's command that is cut short takes what it started with it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import UTC
from pathlib import Path

from procfs import gone

from engine.rules.model import Rule
from engine.runtime.actions import ActionRunner
from engine.runtime.rulebook import Firing

# A command that starts a helper (not sharing its pipes), says the helper's pid, and waits.
PARENT = """
import subprocess, sys, time
quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], **quiet)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(child.pid))
import os; os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
"""


async def test_a_cancelled_run_action_kills_the_commands_children_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    rule = Rule.model_validate(
        {
            "when": {"type": "event", "event": "recording.started"},
            "do": {"type": "run", "argv": [sys.executable, "-c", PARENT, str(pid_file)]},
        }
    )
    firing = Firing("r", 0.0, "event", 0, "recording.started", "sim", 1, {})
    run = asyncio.create_task(ActionRunner(shots=None, recorders={}, tz=UTC).run(rule, firing))
    async with asyncio.timeout(20):
        while not pid_file.exists():
            await asyncio.sleep(0.02)
    child = int(pid_file.read_text())
    run.cancel()  # a restart-mode rule or a second Ctrl-C
    with contextlib.suppress(asyncio.CancelledError):
        await run
    async with asyncio.timeout(5):
        while not gone(child):
            await asyncio.sleep(0.02)
    assert gone(child)
