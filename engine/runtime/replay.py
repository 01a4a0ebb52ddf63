"""Rules over a recording, in virtual time: which would have fired, what would be recorded.

The recording is played through a normal ``Engine`` with a ``ManualClock``
that follows the recorded receive times, as fast as the machine allows. The
engine does what a live run does, frame by frame and schedule by schedule,
so the firings match a live run's. Without ``execute`` it is a dry run:
shots and commands are listed rather than done, and recorders write to a
temporary folder that is removed afterwards, leaving only the report.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.core.clock import ManualClock
from engine.errors import CuecapError
from engine.recording.format import RecordingError
from engine.recording.open import open_reader
from engine.rules.loader import RuleSet
from engine.runtime.engine import Engine
from engine.runtime.summary import Summary
from engine.sources.log import LogSource


class ReplayError(CuecapError, ValueError):
    """A recording that cannot be replayed with these rules (the message says why)."""


def replay_source_name(
    path: str | os.PathLike[str], rules: RuleSet, name: str | None = None
) -> str:
    """Which of the rule set's sources the recording stands for.

    The one named, else the one the recording's manifest names, else the only
    source of the rule set.
    """
    if name is not None:
        if rules.sources and name not in rules.sources:
            known = ", ".join(sorted(rules.sources))
            raise ReplayError(f"--source {name}: the rules have no source of that name ({known})")
        return name
    manifest = open_reader(path).manifest or {}
    recorded = manifest.get("source")
    if isinstance(recorded, str) and recorded in rules.sources:
        return recorded
    if len(rules.sources) == 1:
        return next(iter(rules.sources))
    if not rules.sources:
        return recorded if isinstance(recorded, str) and recorded else Path(path).name
    raise ReplayError(
        f"{path}: which source does it replay? The rules have {', '.join(sorted(rules.sources))}; "
        "name one with --source"
    )


def first_time(path: str | os.PathLike[str]) -> float:
    for frame in open_reader(path):
        return frame.time
    raise ReplayError(f"{path}: the recording holds no messages")


async def replay(
    path: str | os.PathLike[str],
    rules: RuleSet,
    *,
    execute: bool = False,
    source: str | None = None,
    recordings: str | os.PathLike[str] | None = None,
    shots_folder: str | os.PathLike[str] | None = None,
    duration: float | None = None,
) -> Summary:
    """Run ``rules`` over the recording at ``path``; a dry run unless ``execute``."""
    try:
        name = replay_source_name(path, rules, source)
        start = first_time(path)
    except RecordingError as exc:
        raise ReplayError(str(exc)) from None
    clock = ManualClock(start - 1e-6)  # a schedule due at the first message still fires
    log_source = LogSource(path, name=name, speed=None, clock=clock)
    engine = Engine(
        rules,
        clock=clock,
        dry_run=not execute,
        recordings=recordings,
        shots_folder=shots_folder,
        sources={name: log_source},
    )
    return await engine.run(duration)
