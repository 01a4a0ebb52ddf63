"""The README is built from docs/*.md and documents the two set-up commands."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_builder():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_readme", ROOT / "docs" / "build_readme.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_built_from_the_docs() -> None:
    assert (ROOT / "README.md").read_text(encoding="utf-8") == load_builder().build(), (
        "README.md is stale: run python docs/build_readme.py"
    )


def test_readme_shows_the_two_commands_and_every_cli_command() -> None:
    from engine.cli.main import COMMANDS

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    for name in COMMANDS:
        assert re.search(rf"`cuecap {name}\b", text), f"cuecap {name} is not documented"


def test_the_makefile_and_ci_run_what_the_readme_says() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:.*\n\t.*cuecap run --for 20", makefile, re.M)
    assert re.search(r"^test:.*\n\t.*pytest", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
