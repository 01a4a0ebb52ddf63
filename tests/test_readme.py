"""The README is the front door and docs/ the manual: every page is reachable, no link is dead.

The README is written by hand; these tests keep it honest: it shows the two
set-up commands and every CLI command, stays short, every page of docs/ is
linked from docs/index.md, every relative link (file and ``#heading``) in the
README and the manual leads somewhere, and every ``cuecap ...`` command line
shown in a shell block parses with the real command line interface.
"""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def prose(text: str) -> str:
    """The text outside code blocks, inline code and comments, where links are links."""
    text = re.sub(r"<!--.*?-->", "", FENCE.sub("", text), flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to ``-``."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text(encoding="utf-8")))


def test_readme_shows_the_two_commands_and_every_cli_command() -> None:
    from engine.cli.main import COMMANDS

    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    for name in COMMANDS:
        assert re.search(rf"`cuecap {name}\b", text), f"cuecap {name} is not documented"


def test_readme_is_a_front_door_not_the_manual() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 400, "README.md is the front door: move detail into docs/"
    for part in ("Quick start: lab recording", "Quick start: cameras", "Command line"):
        assert f"## {part}" in text, part
    assert "(docs/index.md)" in text


def test_every_docs_page_is_linked_from_the_index() -> None:
    linked = {target.split("#")[0] for target in links(DOCS / "index.md")}
    missing = [p.name for p in PAGES if p.name != "index.md" and p.name not in linked]
    assert not missing, f"add these pages to docs/index.md: {missing}"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    dead = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue  # http:, mailto:: not ours to check
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            dead.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            dead.append(f"{target}: {file.name} has no heading #{anchor}")
    assert not dead, f"{page.name}: {dead}"


def command_lines(page: Path) -> list[str]:
    """``cuecap ...`` lines of the shell blocks (```sh, ```console or bare) of a page."""
    out = []
    for lang, body in FENCE.findall(page.read_text(encoding="utf-8")):
        if lang not in ("", "sh", "console", "bash"):
            continue
        for raw in body.splitlines():
            line = raw.strip().removeprefix("$ ")
            line = re.sub(r"^(\.venv/bin/|/opt/cuecap/bin/)", "", line)
            if line.startswith("cuecap "):
                line = re.split(r" (?:\||>|&&|;) ", line)[0]  # the cuecap part of a pipeline
                line = re.sub(r"\s+#.*$", "", line)  # a comment
                out.append(line.removesuffix("&").strip())  # in the background
    return out


COMMAND_LINES = [
    (page, line) for page in [README, *PAGES] for line in dict.fromkeys(command_lines(page))
]


def test_the_docs_show_commands() -> None:
    assert len(COMMAND_LINES) >= 30


@pytest.mark.parametrize(
    "page,line", COMMAND_LINES, ids=[f"{p.name}:{line}" for p, line in COMMAND_LINES]
)
def test_every_command_line_shown_parses(page: Path, line: str) -> None:
    """The command, its options and its arguments exist as shown (nothing is run)."""
    from engine.cli.main import main

    warnings.simplefilter("ignore", DeprecationWarning)  # click 8.2 renames protected_args

    words = shlex.split(line.replace("$(", "").replace(")", ""), comments=True)[1:]
    ctx = main.make_context("cuecap", list(words))
    command: click.Command = main
    args = ctx.protected_args + ctx.args
    while isinstance(command, click.Group) and args:
        name, sub, args = command.resolve_command(ctx, args)
        assert sub is not None and name is not None, line
        command = sub
        try:
            ctx = command.make_context(name, list(args), parent=ctx)
        except click.BadParameter as exc:
            # a file the example names need not exist here
            assert "does not exist" in str(exc), f"{page.name}: {line}: {exc}"
            return
        except click.ClickException as exc:
            raise AssertionError(f"{page.name}: {line}: {exc.format_message()}") from exc
        args = ctx.protected_args + ctx.args if isinstance(command, click.Group) else []


def test_the_makefile_and_ci_run_what_the_readme_says() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:.*\n\t.*cuecap run --for 20", makefile, re.M)
    assert re.search(r"^test:.*\n\t.*pytest", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_quick_starts_rule_files_are_real(tmp_path: Path) -> None:
    """The recorder shown is the shipped one; the camera file loads beside the shipped rules."""
    from engine.rules.loader import load_rules

    blocks = [body for lang, body in FENCE.findall(README.read_text("utf-8")) if lang == "yaml"]
    recorder, source, cameras = blocks
    assert recorder in (ROOT / "rules" / "cuecap.yaml").read_text("utf-8")
    assert "type: websocket" in source
    (tmp_path / "cameras.yaml").write_text(cameras, encoding="utf-8")
    rules = load_rules([ROOT / "rules", tmp_path / "cameras.yaml"], env={})
    assert rules.cameras["gate"].type == "http" and "gate-timelapse" in rules.rules
