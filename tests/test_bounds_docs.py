"""The "When things go wrong" example of docs/rules.md: the file shown gives the errors shown."""

from __future__ import annotations

import os
import re
from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import main
from engine.core.condition import BUDGET, MAX_ITEMS, MAX_LENGTH, MAX_MACRO_NESTING, MAX_NESTING
from engine.core.templates import (
    MAX_NAME_BYTES,
    MAX_PRECISION,
    MAX_TEMPLATE,
    MAX_TIME_SPEC,
    MAX_WIDTH,
)
from engine.rules.schedule import MIN_EVERY
from engine.rules.yamlpos import MAX_DEPTH, MAX_FILE_BYTES, MAX_NUMBER_DIGITS, MAX_VALUES

DOC = (Path(__file__).resolve().parents[1] / "docs" / "rules.md").read_text(encoding="utf-8")


def test_the_bad_example_gives_the_errors_shown(tmp_path: Path) -> None:
    bad, shown = re.search(r"```yml\n(.*?)```\n\n```text\n(.*?)```", DOC, re.S).groups()  # type: ignore[union-attr]
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "bad.yaml").write_text(bad, encoding="utf-8")
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(main, ["check", "rules/bad.yaml"], catch_exceptions=False)
    finally:
        os.chdir(old)
    assert result.exit_code == 2
    assert result.stderr == shown


def test_the_table_states_the_bounds_the_code_has() -> None:
    section = DOC.split("## When things go wrong", 1)[1].split("\n## ", 1)[0]
    for text in (
        f"{MAX_FILE_BYTES // (1024 * 1024)} MiB",
        f"{MAX_DEPTH} levels",
        f"{MAX_NUMBER_DIGITS} digits",
        f"{MAX_VALUES:,}",
        f"at least {MIN_EVERY:g} s",
        f"width at most {MAX_WIDTH}",
        f"at most {MAX_TEMPLATE} characters",
        f"precision at most {MAX_PRECISION}",
        f"at most {MAX_TIME_SPEC} characters",
        f"at most {MAX_NAME_BYTES} bytes",
        f"{MAX_LENGTH} characters",
        f"{MAX_NESTING} levels of brackets",
        f"{MAX_MACRO_NESTING} comprehensions",
        f"{MAX_ITEMS} items",
        f"at most {BUDGET * 1000:g} ms",
    ):
        assert text in section, text
