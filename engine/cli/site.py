"""``cuecap site``: the engines of a site as its NATS server knows them, read-only.

It reads the site's engines bucket (each engine's record of itself) with the
connection settings of the rule files and prints one line per live engine,
then the warnings. Nothing is written to the server: it declares no stream
and takes no work. Exit codes: 0 shown, 1 the server cannot be reached, 2
rule files with errors or without ``settings.cluster``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from engine.cli.common import EXIT_FAILED, fail, load_rules_or_exit


@click.command()
@click.argument("rules", nargs=-1, type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print the site as JSON (as GET /api/site).")
def site(rules: tuple[str, ...], as_json: bool) -> None:
    """Show the engines of the site of RULES, read from its NATS server.

    RULES: rule files or folders (default: rules/). One line per live engine: its state, when it was last seen, its rule
    files' digest, the fires it runs, its shots in flight and its sources.
    Engines on different rule files, or not seen for a while, are warned about.
    """
    ruleset = load_rules_or_exit(rules)
    cluster = ruleset.settings.cluster
    if cluster is None:
        names = ", ".join(str(Path(p)) for p in ruleset.files)
        fail(f"{names}: no settings.cluster, so there is no site to show (see docs/cluster.md)")
    import time

    from engine.cluster.errors import ClusterError
    from engine.cluster.presence import read_site
    from engine.cluster.roster import table

    try:
        status = asyncio.run(read_site(cluster, now=time.time))
    except ClusterError as exc:
        fail(str(exc), EXIT_FAILED)
    if as_json:
        click.echo(json.dumps(status.to_json(), indent=2))
        return
    for line in table(status):
        click.echo(line)
