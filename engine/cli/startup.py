"""What ``cuecap run`` says when it starts: what it loaded, where files go, how to stop.

A new user's first question after ``cuecap run`` is "is it doing anything?":
the engine is quiet until something happens, which may be minutes. So the
run begins with a short account, in the words of ``cuecap check``: each
source, recorder (and its folder), camera and rule (a schedule with its next
fire time and zone), the folders recordings and shots go to, and how the run
ends. Pure: it takes the rule set, ``now`` and the command's options and
returns lines; the command prints them on stderr, so stdout stays the
summary that scripts read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.rules.describe import (
    action_text,
    camera_text,
    mqtt_text,
    recorder_text,
    seconds,
    source_text,
    target_text,
    trigger_text,
)
from engine.rules.loader import RuleSet
from engine.rules.model import ScheduleTrigger


@dataclass(frozen=True)
class RunOptions:
    """The options of ``cuecap run`` that change what the start-up lines say."""

    recordings: str | None = None  # --recordings
    shots: str | None = None  # --shots
    duration: float | None = None  # --for
    fast: bool = False
    watch: tuple[str, ...] = ()  # the rule paths watched for changes; () with --no-watch
    http: str | None = None  # where the status page is served (None: it is not)


def _folder(path: str, cwd: Path) -> str:
    shown = Path(path).expanduser()
    return f"{shown if shown.is_absolute() else cwd / shown}/"


def _next_fire(rules: RuleSet, name: str, index: int, now: float) -> str:
    schedule = rules.schedule(name, index)
    upcoming = schedule.upcoming(now, 1)
    if not upcoming:
        return "next: never"
    moment = datetime.fromtimestamp(upcoming[0], schedule.tz)
    return f"next {moment:%a %Y-%m-%d %H:%M:%S} {moment.tzname() or schedule.tz}"


def startup_lines(rules: RuleSet, now: float, options: RunOptions, cwd: Path) -> list[str]:
    """The lines ``cuecap run`` prints before it starts (secrets shown as ``${NAME}``)."""
    zone = rules.settings.timezone
    zone = f"local, {rules.tz}" if zone == "local" else zone
    lines = [f"cuecap run: {', '.join(str(f) for f in rules.files)} (time zone: {zone})"]
    recordings = options.recordings or rules.settings.recordings
    shots = options.shots or rules.settings.shots.folder
    for name, source_config in rules.sources.items():
        lines.append(f"  source {name}: {source_text(source_config)}")
    for name, recorder in rules.recorders.items():
        source = rules.recorder_source(name) or ""
        folder = recorder.folder.replace("{recorder}", name).replace("{source}", source)
        folder = folder.strip().strip("/")
        where = f"{recordings}/{folder}/" if folder else f"{recordings}/"
        lines.append(f"  recorder {name}: {recorder_text(name, rules)}; files in {where}")
    for name, camera in rules.cameras.items():
        lines.append(f"  camera {name}: {camera_text(camera)}")
    if rules.settings.mqtt is not None:
        lines.append(f"  {mqtt_text(rules.settings.mqtt)}")
    for name, target in rules.targets.items():
        lines.append(f"  target {name}: {target_text(target)}")
    cluster = rules.settings.cluster
    if cluster is not None:
        lines.append(f"  cluster {cluster.name}: one of the site's engines, NATS at "
                     f"{', '.join(cluster.nats)} (schedules and shot limits shared)")  # fmt: skip
    for name, rule in rules.rules.items():
        parts = []
        for index, trigger in enumerate(rule.when):
            text = trigger_text(trigger)
            if isinstance(trigger, ScheduleTrigger):
                text += f" ({_next_fire(rules, name, index, now)})"
            parts.append(text)
        state = "" if rule.enabled else " (disabled)"
        actions = "; ".join(action_text(a) for a in rule.do)
        lines.append(f"  rule {name}{state}: when {' or '.join(parts)} -> {actions}")
    if not (rules.recorders or rules.rules):
        lines.append("  nothing to do: no recorders and no rules")
    lines.append(f"recordings go to {_folder(recordings, cwd)}, shots to {_folder(shots, cwd)}")
    if options.http is not None:
        lines.append(f"status page, API and metrics at {options.http}")
    lines.append(_ending(options))
    return [rules.redact(line) for line in lines]


def _ending(options: RunOptions) -> str:
    parts: list[Any] = []
    if options.fast:
        parts.append("virtual time, as fast as possible")
    if options.duration is not None:
        parts.append(f"stops after {seconds(options.duration)}")
    if options.watch:
        parts.append(f"changes to {', '.join(options.watch)} apply while running")
    parts.append("stop with Ctrl-C or SIGTERM (recordings are closed, a summary is printed)")
    return "; ".join(parts)
