"""Engines of one site on a real nats-server, on their own loop in a thread, for tests.

``running_site(root, server, ["e0", "e1"])`` runs one engine per name, each
with its own rule file (same bytes unless ``bodies`` says otherwise) and its
own connection to the server, as separate machines would; the first serves
its status page on 127.0.0.1 and a free port. Tests block on HTTP, a
browser or a subprocess meanwhile; ``stop(name)`` stops one engine cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from engine.cluster.devserver import NatsServer
from engine.cluster.roster import SiteStatus
from engine.cluster.site import ClusterAdapter
from engine.http.config import HttpOptions
from engine.http.server import HttpServer, bind
from engine.rules.loader import load_rules
from engine.runtime.engine import Adapter, Engine

_T = TypeVar("_T")

BODY = """\
rules:
  slow:
    mode: queued
    when: {type: schedule, every: 0.3s}
    do: {type: run, argv: [sleep, '0.8']}
"""


def site_file(root: Path, server: NatsServer, body: str, *, ack_wait: float = 3.0) -> Path:
    """The same bytes for every engine given the same body (folders are the Engine's)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "site.yaml"
    path.write_text(
        "settings:\n"
        "  timezone: UTC\n"
        "  stop_timeout: 1\n"
        f"  cluster: {{nats: {server.url}, name: lab, ack_wait: {ack_wait}s}}\n" + body,
        encoding="utf-8",
    )
    return path


@dataclass
class Site:
    loop: asyncio.AbstractEventLoop
    engines: dict[str, Engine]
    runs: dict[str, Future[Any]] = field(default_factory=dict)
    url: str = ""

    def call(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` on the engines' loop (their parts are the loop's only)."""

        async def call() -> _T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def status(self, name: str) -> SiteStatus:
        adapter = next(a for a in self.engines[name].adapters if isinstance(a, ClusterAdapter))
        return self.call(adapter.site_status)

    def stop(self, name: str) -> None:
        """Stop one engine cleanly and wait until its run has returned."""
        self.loop.call_soon_threadsafe(self.engines[name].request_stop, "test")
        self.runs[name].result(30)

    def wait(self, what: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:g} s")
            time.sleep(0.05)


@contextlib.contextmanager
def running_site(
    root: Path,
    server: NatsServer,
    names: Sequence[str],
    *,
    body: str = BODY,
    bodies: Mapping[str, str] | None = None,
    ack_wait: float = 3.0,
) -> Iterator[Site]:
    loop = asyncio.new_event_loop()
    engines: dict[str, Engine] = {}
    http: HttpServer | None = None
    for i, name in enumerate(names):
        text = (bodies or {}).get(name, body)
        rules = load_rules([site_file(root / name, server, text, ack_wait=ack_wait)], env={})
        assert rules.settings.cluster is not None
        adapters: list[Adapter] = [ClusterAdapter(rules.settings.cluster, name=name)]
        if i == 0:
            sock = bind("127.0.0.1", 0)
            http = HttpServer(HttpOptions("127.0.0.1", sock.getsockname()[1], None, True), sock)
            adapters.append(http)
        folder = root / name
        engines[name] = Engine(rules, adapters=adapters, recordings=folder / "recordings",
                               shots_folder=folder / "shots")  # fmt: skip
    thread = threading.Thread(target=loop.run_forever, name="site under test", daemon=True)
    thread.start()
    site = Site(loop, engines, url=http.url if http is not None else "")
    try:
        for name, engine in engines.items():
            site.runs[name] = asyncio.run_coroutine_threadsafe(engine.run(), loop)

        def joined() -> bool:
            adapters = [a for e in engines.values() for a in e.adapters
                        if isinstance(a, ClusterAdapter)]  # fmt: skip
            ready = all(a.presence is not None and a.presence.writes for a in adapters)
            return ready and (http is None or http.serving)

        site.wait(lambda: joined() or any(r.done() for r in site.runs.values()))
        for run in site.runs.values():
            if run.done():
                run.result()  # raises what stopped it
        yield site
    finally:
        for engine in engines.values():
            loop.call_soon_threadsafe(engine.request_stop, "test done")
        for run in site.runs.values():
            with contextlib.suppress(Exception):
                run.result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
