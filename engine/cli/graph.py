"""``cuecap graph RECORDER [RULES...]``: draw a recorder's state machine.

Exit codes as every command: 2 for rule files with errors, an unknown
recorder or an output that cannot be written, 1 when Graphviz cannot draw.
"""

from __future__ import annotations

from pathlib import Path

import click

from engine.cli.common import EXIT_FAILED, fail, load_rules_or_exit


@click.command(short_help="Draw the state machine of a recorder (mermaid or image).")
@click.argument("recorder")
@click.argument("rules", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE: .png/.svg/.pdf need Graphviz; any other suffix gets mermaid text.",
)
def graph(recorder: str, rules: tuple[Path, ...], output: Path | None) -> None:
    """Draw the state machine of RECORDER from RULES (files or folders; default: rules/).

    Prints mermaid text (paste it into any Markdown that renders mermaid), or
    writes an image with -o FILE.png when Graphviz is installed.
    """
    from engine.recorder.graph import IMAGE_SUFFIXES, GraphError, draw_image, mermaid

    rule_set = load_rules_or_exit(rules)
    config = rule_set.recorders.get(recorder)
    if config is None:
        known = ", ".join(sorted(rule_set.recorders)) or "none"
        fail(f"no recorder {recorder!r} in the rule files; recorders: {known}")
    if output is not None and output.suffix.lower() in IMAGE_SUFFIXES:
        try:
            draw_image(recorder, config, output)
        except GraphError as exc:
            fail(str(exc), EXIT_FAILED)
        click.echo(f"wrote {output}", err=True)
        return
    text = mermaid(recorder, config)
    if output is None:
        click.echo(text)
    else:
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
        click.echo(f"wrote {output}", err=True)
