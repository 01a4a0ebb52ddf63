"""Entry point of ``cuecap``; subcommands are imported only when used.

Lazy loading keeps ``cuecap --help`` and quick commands fast: a command that
never touches video never imports PyAV.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from typing import Any

import click

from engine.errors import UnsupportedType

# command name -> "module:attribute" of its click command or group
COMMANDS: dict[str, str] = {
    "run": "engine.cli.run:run",
    "check": "engine.cli.run:check",
    "replay": "engine.cli.run:replay",
    "schema": "engine.cli.run:schema",
    "sim": "engine.cli.sim:sim",
    "record": "engine.cli.record:record",
    "log": "engine.cli.log:log",
    "shot": "engine.cli.shot:shot",
    "site": "engine.cli.site:site",
    "graph": "engine.cli.graph:graph",
    "init": "engine.cli.init:init",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are loaded from ``COMMANDS`` on first use."""

    # The other arguments are click.Group's, passed through as they come.
    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """As click's, but a mistyped command suggests the closest ones ("did you mean")."""
        name = args[0] if args else ""
        if (
            args
            and not ctx.resilient_parsing
            and not name.startswith("-")
            and self.get_command(ctx, name) is None
        ):
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=2, cutoff=0.65)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise click.UsageError(f"No such command {name!r}.{hint}", ctx)
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attr = self.lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):
                raise UnsupportedType(f"{self.lazy[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="cuecap")
def main(verbose: int, quiet: bool) -> None:
    """cuecap: record the interesting periods of event streams, take bounded, retried shots."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
