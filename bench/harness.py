"""What several benchmarks share: free ports, waiting for a server, the blaster process."""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import time
from collections.abc import Iterator


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the system's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, timeout: float = 30.0) -> None:
    """Until something accepts connections on 127.0.0.1:``port`` (a server started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {timeout:g} s")


@contextlib.contextmanager
def blaster(counts: dict[str, int]) -> Iterator[int]:
    """The ingest bench's blaster in its own process; yields its port (paths: the cases)."""
    from ingest import _blaster

    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_blaster, args=(child, counts))
    process.start()
    port, _ = parent.recv()
    try:
        yield port
    finally:
        parent.send("stop")
        process.join(10)
