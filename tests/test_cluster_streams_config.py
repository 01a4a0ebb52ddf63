"""publish_to: and type: nats in rule files: what loads, and what is refused, and where."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules
from engine.rules.model import NatsSourceConfig


def errors_of(tmp_path: Path, text: str) -> tuple[str, list[str]]:
    path = tmp_path / "site.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(RuleFileError) as info:
        load_rules([path], env={})
    return str(path), [str(e) for e in info.value.errors]


def test_published_sources_and_their_consumers_load(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        textwrap.dedent("""\
        settings:
          cluster: {nats: nats://nats.lab:4222, name: lab, streams: {max_age: 2min}}
        sources:
          dev: {type: websocket, url: 'ws://purpledrop:7001', publish_to: dev}
          remote: {type: nats, stream: dev, max_lag: 2s}
        """)
    )
    rules = load_rules([path], env={})
    remote = rules.sources["remote"]
    assert isinstance(remote, NatsSourceConfig) and remote.max_lag == 2 and remote.batch == 64
    cluster = rules.settings.cluster
    assert cluster is not None and cluster.lease == 5
    assert cluster.streams.max_age == 120 and cluster.streams.max_bytes == 1024**3


def test_without_a_cluster_or_with_an_unknown_stream_the_rules_say_where(tmp_path: Path) -> None:
    f, errors = errors_of(
        tmp_path,
        """\
        sources:
          dev: {type: simulator, publish_to: dev}
          remote: {type: nats, stream: dev}
        """,
    )
    assert errors == [
        f"{f}:2:38: publish_to needs settings: cluster: (a site's NATS server, docs/cluster.md)",
        f"{f}:3:18: a nats source needs settings: cluster: (a site's NATS server, docs/cluster.md)",
    ]
    f, errors = errors_of(
        tmp_path,
        """\
        settings:
          cluster: {nats: nats://nats.lab:4222, name: lab}
        sources:
          a: {type: simulator, publish_to: dev}
          b: {type: replay, path: missing.bin, speed: 2, publish_to: dev}
          remote: {type: nats, stream: deev}
        """,
    )
    assert errors[1:] == [
        f"{f}:5:62: stream 'dev' is already published by source 'a'; each source publishes its own",
        f"{f}:6:32: unknown stream 'deev' (known streams: dev); a source of the rule files "
        "publishes it with publish_to:",
    ]
    assert errors[0] == f"{f}:5:27: recording 'missing.bin' does not exist (relative paths " \
        "start at the folder cuecap runs in)"  # fmt: skip
    f, errors = errors_of(
        tmp_path,
        """\
        settings:
          cluster: {nats: nats://nats.lab:4222, name: lab}
        sources:
          bad: {type: nats, stream: 'two words'}
        """,
    )
    assert errors == [
        f"{f}:4:29: stream: string should match pattern '^[A-Za-z0-9][A-Za-z0-9_-]*$'"
    ]
