"""What every command shares: exit codes, the error line, duration and size options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from engine.cli.common import DURATION, SIZE
from engine.cli.main import COMMANDS, main

RULES = """\
sources:
  sim: {type: simulator, speed: null}
recorders:
  moves:
    activity: [{type: message, types: [electrode_state]}]
"""


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("5min", 300.0)])
def test_duration_options_read_what_rule_files_read(text: str, seconds: float) -> None:
    assert DURATION.convert(text, None, None) == seconds


def test_bad_durations_and_sizes_are_usage_errors() -> None:
    with pytest.raises(click.BadParameter, match="not a duration"):
        DURATION.convert("soon", None, None)
    with pytest.raises(click.BadParameter, match="more than 0"):
        DURATION.convert("0s", None, None)
    assert SIZE.convert("16MiB", None, None) == 16 << 20
    with pytest.raises(click.BadParameter, match="not a size"):
        SIZE.convert("big", None, None)


@pytest.mark.parametrize("command", ["run", "replay", "record", "sim"])
def test_every_command_that_stops_by_itself_takes_for_and_duration(command: str) -> None:
    text = invoke(command, "--help").stdout
    assert "--for, --duration DURATION" in text


def test_run_for_a_duration_written_with_a_unit(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    result = invoke(
        "run", str(tmp_path), "--fast", "--for", "1min", "--recordings", str(tmp_path / "rec"),
        "--no-http",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ran 60.0 s (ran for 60 s)" in result.stdout


def test_bad_input_exits_2_with_one_error_line_in_every_command(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    not_a_recording = tmp_path / "notes.bin"
    not_a_recording.write_bytes(b"\xff" * 64)
    cases = [
        (("graph", "mvoes", str(tmp_path)), "no recorder 'mvoes'"),
        (("shot", "nope", str(tmp_path)), "no camera named 'nope'"),
        (("replay", str(not_a_recording), str(tmp_path)), "notes.bin"),
        (("sim", "--port", "0", "--replay", str(tmp_path / "none.bin")), "none.bin"),
        (("log", "info", str(tmp_path / "none.bin")), "none.bin"),
        (("site", str(tmp_path)), "no settings.cluster"),
    ]
    for args, needle in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "cuecap: error: " in result.stderr and needle in result.stderr, (
            args,
            result.stderr,
        )


def test_rule_file_errors_exit_2_wherever_the_rules_are_read(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES.replace("types:", "typez:"), encoding="utf-8")
    for args in (
        ("check", str(tmp_path)),
        ("graph", "moves", str(tmp_path)),
        ("shot", "cam", str(tmp_path)),
    ):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "rules.yaml:" in result.stderr and "typez" in result.stderr
        assert result.stderr.strip().endswith("nothing was started")


def test_help_lists_every_command_on_one_untruncated_line_without_heavy_imports() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from engine.cli.main import main\n"
        "print(CliRunner().invoke(main, ['--help']).stdout)\n"
        "print(CliRunner().invoke(main, ['log', '--help']).stdout)\n"
        "heavy = ('av', 'matplotlib', 'httpx', 'transitions', 'websockets', 'apscheduler',\n"
        "         'pydantic', 'PIL', 'cel')\n"
        "print('heavy:', sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    for name in COMMANDS:
        (line,) = [x for x in out.splitlines() if x.startswith(f"  {name} ")]
        assert not line.endswith("..."), line
    listed = [x for x in out.splitlines() if x.startswith("  ") and not x.startswith("   ")]
    assert any(x.startswith("  video ") for x in listed)
    assert not [x for x in listed if x.endswith("...")]
    assert out.strip().endswith("heavy: []")


def test_an_output_that_cannot_be_written_is_bad_input_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    for args in (
        ("schema", "-o", str(blocker / "schema.json")),
        ("graph", "moves", str(tmp_path), "-o", str(blocker / "moves.mmd")),
    ):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert f"cuecap: error: cannot write {blocker}" in result.stderr


def test_replacing_an_output_is_force_everywhere() -> None:
    assert "-f, --force, --overwrite" in invoke("record", "--help").stdout
    for command in ("dump", "export", "frames", "plot", "video"):
        assert "-f, --force" in invoke("log", command, "--help").stdout
