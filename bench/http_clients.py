"""The HTTP clients of ``bench/http.py``, each run in its own process.

In a module of their own so a spawned process can import them by name (the
benchmark's own file shares its name with the standard library's ``http``).
"""

from __future__ import annotations

import multiprocessing
from typing import Any


def scraper(url: str, stop: Any, count: Any) -> None:
    """Prometheus, roughly: GET /metrics once a second until told to stop.

    It runs through every round, with the server up or not (then the connection
    is refused and nothing is counted), so both contenders share the machine
    with the same process.
    """
    import httpx

    with httpx.Client(base_url=url, timeout=5) as client:
        while not stop.is_set():
            try:
                client.get("/metrics").raise_for_status()
                count.value += 1
            except httpx.TransportError:
                pass
            stop.wait(1.0)


def live_reader(url: str, stop: Any, count: Any) -> None:
    """The status page, roughly: read /api/live until told to stop."""
    import httpx

    with httpx.Client(base_url=url, timeout=None) as client, client.stream("GET", "/api/live") as s:
        for line in s.iter_lines():
            if line.startswith("event: status"):
                count.value += 1
            if stop.is_set():
                return


class Client:
    """One client process; ``close`` stops it and returns what it read."""

    def __init__(self, target: Any, url: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.stop = ctx.Event()
        self.count = ctx.Value("i", 0)
        self.process = ctx.Process(target=target, args=(url, self.stop, self.count), daemon=True)
        self.process.start()

    def close(self) -> int:
        self.stop.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
        return int(self.count.value)
