"""``run`` actions: values are argv items and environment variables, never shell text."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from engine.rules.model import Rule
from engine.runtime.actions import ActionRunner
from engine.runtime.rulebook import Firing

UTC = ZoneInfo("UTC")
T0 = 1_700_000_000.0
HOSTILE = "x'; touch PWNED; echo '$(touch PWNED2)`touch PWNED3`"


def _rule(argv: list[str]) -> Rule:
    return Rule.model_validate(
        {
            "when": {"type": "event", "event": "recording.started"},
            "do": {"type": "run", "argv": argv},
        }
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["sh", "-c", "cp {path} /backup"],
        ["/bin/bash", "-ec", "echo {reason}"],
        ["bash", "-l", "-c", "echo {rule}"],
        ["env", "LANG=C", "sh", "-c", "ls {path}"],
        ["/usr/bin/env", "zsh", "-c", "echo {camera}"],
        ["python3", "-c", "print('{path}')"],
        ["python3.12", "-c", "print('{path}')"],
        ["perl", "-e", "print '{path}'"],
        ["cmd.exe", "/c", "copy {path} x"],
        ["pwsh", "-Command", "Copy-Item {path}"],
        ["timeout", "5", "sh", "-c", "ls {path}"],
        ["sudo", "-u", "lab", "bash", "-c", "ls {path}"],
        ["busybox", "sh", "-c", "ls {path}"],
        ["find", "/data", "-exec", "sh", "-c", "echo {path}", ";"],
        ["ssh", "-p", "22", "lab", "rm {path}"],
    ],
)
def test_a_script_with_a_field_is_refused_with_the_variable_to_use(argv: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        _rule(argv)
    text = str(info.value)
    assert "a value would become code" in text
    assert "$CUECAP_" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["sh", "-c", 'cp "$CUECAP_PATH" /backup'],
        ["sh", "-c", 'cp "$1" /backup', "sh", "{path}"],  # the value as its own argument
        ["rsync", "{path}", "backup:/"],
        ["python3", "script.py", "-c", "{path}"],  # -c after a script is the script's option
        ["sh", "/opt/backup.sh", "-c", "{path}"],
        ["ssh", "lab", "backup-latest"],
        ["nice", "-n", "5", "gzip", "{path}"],
    ],
)
def test_values_as_their_own_arguments_or_from_the_environment_are_fine(argv: list[str]) -> None:
    _rule(argv)


def test_a_field_never_chooses_the_program() -> None:
    with pytest.raises(ValidationError, match="a value must not choose the program"):
        _rule(["{path}", "--help"])


def _firing(path: str) -> Firing:
    return Firing("r", T0, "event", 0, "shot.success", "sim", 3, {"path": path, "camera": "c"})


async def test_the_values_reach_the_program_as_environment_variables(tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    shell = shutil.which("sh")
    assert shell is not None, "install a POSIX sh"
    rule = _rule(
        [
            shell,
            "-c",
            'printf "%s|%s|%s|%s|%s" "$CUECAP_PATH" "$CUECAP_RULE" "$CUECAP_COUNT" '
            '"$CUECAP_CAMERA" "$CUECAP_TIME" > "$1"',
            "sh",
            str(out),
        ]
    )
    actions = ActionRunner(shots=None, recorders={}, tz=UTC)
    await actions.run(rule, _firing(HOSTILE))
    assert out.read_text() == f"{HOSTILE}|r|3|c|2023-11-14T22:13:20+00:00"
    assert not list(tmp_path.glob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))
    assert (actions.commands, actions.command_failures) == (1, 0)


async def test_a_hostile_value_is_one_argument(tmp_path: Path) -> None:
    out = tmp_path / "args.txt"
    script = "import sys; open(sys.argv[1], 'w').write(repr(sys.argv[2:]))"
    rule = _rule([sys.executable, "-c", script, str(out), "{path}", "{camera}"])
    actions = ActionRunner(shots=None, recorders={}, tz=UTC)
    await actions.run(rule, _firing(HOSTILE))
    assert out.read_text() == repr([HOSTILE, "c"])
