"""``cuecap run``, ``check``, ``replay`` and ``schema``: the rule-file commands.

Exit codes: 0 done (also after SIGINT/SIGTERM: a clean stop is success),
2 bad input (rule files with errors, all of them listed, nothing started; a
recording ``replay`` cannot use), 1 anything else that went wrong, 130 a
second signal cut running actions short.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from engine.cli.common import (
    DURATION,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    fail,
    load_rules_or_exit,
    warning,
)

if TYPE_CHECKING:  # the engine loads when a command runs: `cuecap --help` stays fast
    from engine.core.clock import Clock
    from engine.http.server import HttpServer
    from engine.rules.loader import RuleSet
    from engine.runtime.summary import Summary

# httpx's INFO line is each request's URL, and a Telegram bot's token is part of its URL.
_NOISY = ("transitions", "apscheduler", "httpx", "uvicorn")
_F = TypeVar("_F", bound=Callable[..., object])


def _quiet_libraries() -> None:
    """State-machine, scheduler and HTTP libraries log every step at INFO; keep that for -vv."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in _NOISY:
            logging.getLogger(name).setLevel(logging.WARNING)


_RULES_ARG = click.argument("rules", nargs=-1, type=click.Path(dir_okay=True))


def _folders(when: str) -> Callable[[_F], _F]:
    """``--recordings`` and ``--shots``, overriding the rule files' folders."""

    def decorate(command: _F) -> _F:
        for option, default in (
            ("shots", "settings.shots.folder"),
            ("recordings", "settings.recordings"),
        ):
            command = click.option(
                f"--{option}",
                option,
                type=click.Path(file_okay=False),
                help=f"{when or 'F'}{'f' if when else ''}older for {option} (default: {default}).",
            )(command)
        return command

    return decorate


@click.command()
@_RULES_ARG
@click.option("--for", "--duration", "duration", type=DURATION, metavar="DURATION",
              help="Stop after this long: seconds, or 90s, 5min, 2h "
              "(default: run until Ctrl-C or SIGTERM).")  # fmt: skip
@_folders("")
@click.option("--watch/--no-watch", default=True, show_default=True,
              help="Apply changes to the rule files without a restart.")  # fmt: skip
@click.option("--fast", is_flag=True, help="Virtual time, as fast as possible "
              "(simulator and replay sources only).")  # fmt: skip
@click.option("--firings", is_flag=True, help="List every rule firing in the summary.")
@click.option("--http", "http", metavar="HOST:PORT",
              help="Serve the status page, API and /metrics here "
              "(default: settings.http.listen, else 127.0.0.1:7080).")  # fmt: skip
@click.option("--no-http", is_flag=True, help="No status page, API or /metrics.")
@click.option("--http-token", metavar="TOKEN",
              help="Access token for the page and API (default: $CUECAP_HTTP_TOKEN); "
              "required to listen on any address but loopback.")  # fmt: skip
def run(
    rules: tuple[str, ...],
    duration: float | None,
    recordings: str | None,
    shots: str | None,
    watch: bool,
    fast: bool,
    firings: bool,
    http: str | None,
    no_http: bool,
    http_token: str | None,
) -> None:
    """Run the engine on RULES (files or folders; default: rules/).

    Sources are read, recorders record what the rules call activity, shots
    and commands run when rules fire. Ctrl-C or SIGTERM stops cleanly: running
    actions finish, every recording is closed. A summary is printed at the end.
    """
    _quiet_libraries()
    ruleset = load_rules_or_exit(rules)
    from engine.core.clock import SYSTEM_CLOCK, ManualClock
    from engine.rules.model import WebSocketSourceConfig
    from engine.runtime.adapters import rule_adapters
    from engine.runtime.engine import Engine

    clock: Clock = SYSTEM_CLOCK
    if fast:
        live = [n for n, s in ruleset.sources.items() if isinstance(s, WebSocketSourceConfig)]
        if live:
            raise click.UsageError(f"--fast cannot run websocket sources ({', '.join(live)})")
        if len(ruleset.sources) > 1:
            raise click.UsageError("--fast runs one source; these rules have several")
        import time

        clock = ManualClock(time.time())
    from engine.rules.loader import default_rule_paths

    watched = tuple(rules or default_rule_paths()) if watch and not fast else None
    if fast and ruleset.settings.cluster is not None:
        raise click.UsageError("--fast runs alone, in virtual time; settings.cluster is set")
    http_servers = _http_server(ruleset, http, no_http, http_token)
    engine = Engine(
        ruleset,
        clock=clock,
        recordings=recordings,
        shots_folder=shots,
        watch=watched,
        adapters=[*rule_adapters(ruleset), *http_servers],
    )
    if not click.get_current_context().find_root().params.get("quiet"):  # cuecap -q run
        from engine.cli.startup import RunOptions, startup_lines

        url = http_servers[0].url if http_servers else None
        options = RunOptions(recordings, shots, duration, fast, watched or (), url)
        for line in startup_lines(ruleset, clock.time(), options, Path.cwd()):
            click.echo(line, err=True)
        print_warnings(ruleset)

    async def main() -> Summary:
        engine.install_signal_handlers()
        return await engine.run(duration)

    from engine.cluster.errors import ClusterError

    try:
        summary = asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):  # a second signal
        fail("interrupted; recordings were closed", EXIT_INTERRUPTED)
    except ClusterError as exc:  # the server cannot be reached at start: nothing ran
        fail(str(exc), 1)
    click.echo(summary.render(ruleset.tz, verbose=firings))


def _http_server(
    ruleset: RuleSet, listen: str | None, off: bool, token: str | None
) -> list[HttpServer]:
    """The HTTP server adapter for ``cuecap run``, its socket bound before anything starts.

    Bad options exit 2. The default address taken (another engine on this
    machine) is a warning and a run without the page; an address the user
    chose and cannot have exits 2.
    """
    import os

    from engine.http.config import HttpConfigError, resolve

    try:
        options = resolve(
            ruleset.settings.http, enabled=not off, listen=listen, token=token, env=os.environ
        )
    except HttpConfigError as exc:
        fail(f"http: {exc}")
    if options is None:
        return []
    import engine.http.app  # noqa: F401  (loaded now, not on the engine's clock)
    from engine.http.server import HttpServer, bind

    try:
        sock = bind(options.host, options.port)
    except HttpConfigError as exc:
        if options.explicit:
            fail(f"http: {exc}")
        warning(
            f"http: {exc}; running without the status page (--http HOST:PORT serves it elsewhere)"
        )
        return []
    return [HttpServer(options, sock)]


@click.command()
@_RULES_ARG
@click.option("--next", "count", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many upcoming fire times to show per schedule.")  # fmt: skip
@click.option("--probe", is_flag=True, help="Also try every source and camera once, now "
              "(nothing is written); exit 1 if one fails.")  # fmt: skip
@click.option("--timeout", type=DURATION, default=5.0, show_default=True,
              help="With --probe: how long each source and shot may take.")  # fmt: skip
def check(rules: tuple[str, ...], count: int, probe: bool, timeout: float) -> None:
    """Check RULES (default: rules/) and explain what would run.

    Lists sources, cameras, recorders and rules, with the next fire times of
    every schedule, and warns about what will fail at first use (a camera
    secret whose environment variable is unset, a camera program not on
    PATH). Exit code 0 when the files are valid; 2 with every error
    (file:line:column: what is wrong) otherwise; with --probe, 1 when a
    source or camera failed its try.
    """
    import time

    ruleset = load_rules_or_exit(rules)
    from engine.rules.describe import explain

    click.echo(explain(ruleset, time.time(), count))
    found = print_warnings(ruleset)
    note = f" ({found} warning{'s' if found != 1 else ''} above)" if found else ""
    click.echo(f"ok: the rule files are valid{note}")
    if probe:
        from engine.cli.probe import probe as run_probe

        _quiet_libraries()
        logging.getLogger("engine.shots").setLevel(logging.ERROR)  # the report says it once
        results = asyncio.run(run_probe(ruleset, timeout))
        for result in results:
            click.echo(ruleset.redact(result.line()))
        failed = sum(not r.ok for r in results)
        if failed:
            fail(f"{failed} of {len(results)} probes failed", EXIT_FAILED)
        click.echo(f"probe: all {len(results)} ok" if results else "probe: no sources or cameras")


def print_warnings(ruleset: RuleSet) -> int:
    """``file:line:column: warning: ...`` on stderr for what will fail at first use; the count."""
    import os
    import shutil

    from engine.rules.preflight import warnings

    found = warnings(ruleset, os.environ, shutil.which)
    for problem in found:
        click.echo(ruleset.redact(f"{problem.location}: warning: {problem.message}"), err=True)
    return len(found)


@click.command(short_help="Run rules over a recording in virtual time; report firings.")
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@_RULES_ARG
@click.option("--execute", is_flag=True, help="Really take the shots, run the commands and "
              "write the recordings (default: a dry run that only reports).")  # fmt: skip
@click.option("--source", "source", metavar="NAME",
              help="The rule-file source the recording stands for (default: from its manifest).")  # fmt: skip
@click.option("--for", "--duration", "duration", type=DURATION, metavar="DURATION",
              help="Replay only the first DURATION of the recording (seconds, or 90s, 5min).")  # fmt: skip
@_folders("With --execute: ")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def replay(
    log: str,
    rules: tuple[str, ...],
    execute: bool,
    source: str | None,
    duration: float | None,
    recordings: str | None,
    shots: str | None,
    as_json: bool,
) -> None:
    """Run RULES (default: rules/) over the recording LOG in virtual time.

    Reports which rules would have fired and when, which segments would have
    been recorded and which shots taken, as fast as the machine allows. A dry
    run unless --execute.
    """
    _quiet_libraries()
    ruleset = load_rules_or_exit(rules)
    from engine.runtime.replay import ReplayError
    from engine.runtime.replay import replay as run_replay

    try:
        summary = asyncio.run(
            run_replay(
                log,
                ruleset,
                execute=execute,
                source=source,
                recordings=recordings,
                shots_folder=shots,
                duration=duration,
            )
        )
    except ReplayError as exc:  # the recording or --source does not fit: bad input
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(report(summary), indent=2))
    else:
        click.echo(summary.render(ruleset.tz, verbose=True))


def report(summary: Summary) -> dict[str, object]:
    """A summary as plain data (``cuecap replay --json``)."""
    return {
        "started": summary.started,
        "ended": summary.ended,
        "reason": summary.reason,
        "dry_run": summary.dry_run,
        "frames": summary.frames,
        "firings": [
            {
                "rule": f.rule,
                "time": f.time,
                "trigger": f.trigger,
                "event": f.event,
                "source": f.source,
                "count": f.count,
            }
            for f in summary.firings
        ],
        "firing_counts": dict(summary.firing_counts),
        "segments": [
            {
                "recorder": s.recorder,
                "first_time": s.first_time,
                "last_time": s.last_time,
                "records": s.records,
                "bytes": s.bytes,
                "start_reason": s.start_reason,
                "stop_reason": s.stop_reason,
                "path": s.path if not summary.dry_run else None,
            }
            for s in summary.segments
        ],
        "actions": [{"rule": f.rule, "time": f.time, "action": what} for f, what in summary.notes],
        "shots_ok": summary.shots_ok,
        "shots_failed": summary.shots_failed,
        "shot_counts": {"ok": summary.shots_taken, "failed": summary.shot_failures},
        "errors": summary.errors,
    }


@click.command(short_help="Print the JSON Schema of rule files (for editors).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of rule files (for editor completion and checks).

    Put ``# yaml-language-server: $schema=PATH/cuecap.schema.json`` at the top
    of a rule file to get completion in editors that use the YAML language server.
    """
    from engine.rules.schema import schema_text

    text = schema_text()
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
    else:
        click.echo(text, nl=False)
