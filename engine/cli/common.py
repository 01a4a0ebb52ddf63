"""What every ``cuecap`` command shares: exit codes, error lines, rule loading, option types.

Scripts tell outcomes apart by exit code, people by the first words of a
line, so both are fixed here rather than in each command: 0 done, 1 it ran
and failed, 2 bad input or usage (nothing was done), 130 interrupted.
Errors read ``cuecap: error: ...`` (click's own usage errors keep click's
form). The option types parse durations and sizes with the same parser as
rule files, so ``--for 5min`` means what ``every: 5min`` means.

Only click is imported at module level: ``cuecap --help`` imports every
command module.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:  # imported when needed: `cuecap --help` stays fast
    from engine.rules.loader import RuleSet

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEFAULT_RULES = ("rules",)  # when neither arguments nor $CUECAP_RULES name rule files


def error(message: str) -> None:
    """Print an error line on stderr without exiting (when more lines follow)."""
    click.echo(f"cuecap: error: {message}", err=True)


def warning(message: str) -> None:
    click.echo(f"cuecap: warning: {message}", err=True)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``cuecap: error: message`` on stderr and exit with ``code`` (bad input by default)."""
    error(message)
    sys.exit(code)


def load_rules_or_exit(paths: Sequence[str | Path]) -> RuleSet:
    """The rule set from ``paths`` (default ``rules/``), or exit 2 listing every error.

    Each error line is ``file:line:column: what is wrong`` so editors can jump
    to it; nothing is started from a rule set with errors.
    """
    from engine.rules.errors import RuleFileError
    from engine.rules.loader import RULES_ENV, default_rule_paths, load_rules

    defaults = default_rule_paths()
    if not paths and defaults == [DEFAULT_RULES[0]] and not Path(DEFAULT_RULES[0]).exists():
        context = click.get_current_context(silent=True)
        command = context.command_path if context is not None else "cuecap run"
        fail(
            "no rule files given and there is no rules/ folder here; "
            f"name rule files or folders on the command line, set ${RULES_ENV}, "
            f"or write a starter folder with cuecap init (see {command} --help)"
        )
    try:
        return load_rules(paths or defaults)
    except RuleFileError as exc:
        for problem in exc.errors:
            click.echo(str(problem), err=True)
        count = len(exc.errors)
        click.echo(f"{count} error{'s' if count != 1 else ''}; nothing was started", err=True)
        sys.exit(EXIT_USAGE)


class DurationType(click.ParamType[float]):
    """Seconds, or text like ``90s``, ``500ms``, ``5min``, ``2h`` (above 0)."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        from engine.core.units import parse_duration

        try:
            seconds = float(parse_duration(value))
        except (TypeError, ValueError) as exc:
            self.fail(str(exc), param, ctx)
        if not seconds > 0:
            self.fail(f"{value!r}: must be more than 0 seconds", param, ctx)
        return seconds


class SizeType(click.ParamType[int]):
    """Bytes, or text like ``64MiB``, ``10MB``, ``512k`` (at least 1)."""

    name = "size"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        from engine.core.units import parse_size

        try:
            size = parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if not isinstance(size, int) or size < 1:
            self.fail(f"{value!r}: a size is a whole number of bytes, at least 1", param, ctx)
        return size


DURATION = DurationType()
SIZE = SizeType()
