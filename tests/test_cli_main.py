"""The ``cuecap`` group: "did you mean" for mistyped commands, and shell completion."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from engine.cli.main import main


@pytest.mark.parametrize(
    "args,hint",
    [
        (["rn"], "No such command 'rn'. Did you mean 'run'?"),
        (["chek"], "No such command 'chek'. Did you mean 'check'?"),
        (["shoot", "gate"], "No such command 'shoot'. Did you mean 'shot'?"),
        (["log", "vidoe", "x.bin"], "No such command 'vidoe'. Did you mean 'video'?"),
        (["zzz"], "No such command 'zzz'."),
    ],
)
def test_a_mistyped_command_suggests_the_closest(args: list[str], hint: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.stderr.rstrip().endswith(f"Error: {hint}")


def complete(words: str) -> list[str]:
    """What bash completion offers after ``words`` (click's protocol, as the shell calls it)."""
    env = {
        **os.environ,
        "_CUECAP_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    code = "from engine.cli.main import main; main(prog_name='cuecap')"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    return [line.split(",", 1)[1] for line in out.splitlines()]


def test_shell_completion_knows_the_lazy_commands_and_their_options() -> None:
    assert complete("cuecap ch") == ["check"]
    assert "init" in complete("cuecap ")
    assert complete("cuecap log vi") == ["video"]
    assert "--probe" in complete("cuecap check --")


def test_the_completion_script_is_printed_for_each_shell() -> None:
    for shell, marker in (
        ("bash", "complete -o"),
        ("zsh", "#compdef cuecap"),
        ("fish", "complete"),
    ):
        env = {**os.environ, "_CUECAP_COMPLETE": f"{shell}_source"}
        code = "from engine.cli.main import main; main(prog_name='cuecap')"
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout
        assert marker in out, shell
