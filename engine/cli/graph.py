"""``cuecap graph RECORDER [RULES...]``: draw a recorder's state machine."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
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
    from engine.rules.errors import RuleFileError
    from engine.rules.loader import load_rules

    try:
        rule_set = load_rules(rules or [Path("rules")])
    except RuleFileError as exc:
        raise click.ClickException(str(exc)) from None
    config = rule_set.recorders.get(recorder)
    if config is None:
        known = ", ".join(sorted(rule_set.recorders)) or "none"
        raise click.ClickException(
            f"no recorder {recorder!r} in the rule files; recorders: {known}"
        )
    if output is not None and output.suffix.lower() in IMAGE_SUFFIXES:
        try:
            draw_image(recorder, config, output)
        except GraphError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"wrote {output}", err=True)
        return
    text = mermaid(recorder, config)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
