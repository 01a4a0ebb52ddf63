"""Fixtures the tests share: the CLI, the simulator on loopback, clocks, free ports.

Servers are started on 127.0.0.1 with a port the system picks and stopped when
the test ends, so tests can run side by side.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.core.clock import ManualClock
from engine.sim.server import SimServer, start_sim_server

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: virtual time starts here

CliRun = Callable[..., tuple[int, str, str]]


def run_cli(*args: str | os.PathLike[str], cwd: Path | None = None) -> tuple[int, str, str]:
    """``cuecap ARGS`` in this process: (exit code, stdout, stderr); exceptions propagate."""
    old = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def cuecap() -> CliRun:
    """Run the ``cuecap`` command in-process: ``code, out, err = cuecap("log", "info", path)``."""
    return run_cli


@pytest.fixture
def clock() -> ManualClock:
    """Virtual time at ``T0``; it moves only when told to."""
    return ManualClock(T0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the system's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def port() -> Iterator[int]:
    yield free_port()


@pytest.fixture
async def sim_server() -> AsyncIterator[Callable[..., Any]]:
    """Start simulators on loopback: ``server = await sim_server(seed=3, fps=5)``; all stopped after."""
    started: list[SimServer] = []

    async def start(**options: Any) -> SimServer:
        server = await start_sim_server(**options)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.close(abrupt=True)  # the test is over: no goodbye needed
