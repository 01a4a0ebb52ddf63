"""``cuecap init [DIR]``: a starter rule folder, for a new user who installed with pip.

A clone has ``rules/`` already; ``pip install cuecap`` gives only the command.
``init`` writes the shipped rules (a simulated PurpleDrop, a recorder of its
droplet moves, a camera timelapse and a shot at every recording start) and
the JSON Schema that editors use, so ``cuecap run`` records and shoots at
once, and the files show how to point it at real hardware. It never
overwrites: an existing file is an error unless ``--force``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from engine.cli.common import fail

SCHEMA = "cuecap.schema.json"


def _targets(source: Path, target: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for path in sorted(source.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            pairs.append((path, target / path.relative_to(source)))
    return pairs


@click.command("init", short_help="Write a starter rule folder (default: rules/).")
@click.argument("folder", default="rules", type=click.Path(file_okay=False))
@click.option("--examples", is_flag=True,
              help="Also write the example scripts and rule sets to examples/ beside FOLDER.")  # fmt: skip
@click.option("-f", "--force", is_flag=True, help="Replace files that already exist.")
def init(folder: str, examples: bool, force: bool) -> None:
    """Write a starter rule folder FOLDER (default: rules/) that cuecap run runs as it is.

    It records a simulated PurpleDrop's droplet moves, takes a camera
    timelapse and a shot at each recording start; the comments say how to
    use a real PurpleDrop and cameras. The files carry the schema comment
    that gives editors completion.
    """
    from engine.rules.schema import schema_text
    from engine.shipped import NotShipped, shipped

    target = Path(folder)
    try:
        pairs = [(s, t) for s, t in _targets(shipped("rules"), target) if s.suffix != ".json"]
        if examples:
            pairs += _targets(shipped("examples"), target.absolute().parent / "examples")
    except NotShipped as exc:
        fail(str(exc), 1)
    schema = target / SCHEMA
    existing = [t for _, t in pairs if t.exists()] + ([schema] if schema.exists() else [])
    if existing and not force:
        fail(f"{existing[0]} already exists; nothing was written (use -f/--force to replace)")
    try:
        for source, destination in pairs:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
            click.echo(f"wrote {destination}")
        schema.write_text(schema_text(), encoding="utf-8")  # always the running version's
        click.echo(f"wrote {schema}")
    except OSError as exc:
        fail(f"cannot write {exc.filename or folder}: {exc.strerror or exc}")
    shown = "" if folder == "rules" else f" {folder}"
    click.echo(
        f"next: cuecap check{shown}   (what will run)\n"
        f"      cuecap run{shown} --for 20   (records and shoots on the simulator)"
    )
