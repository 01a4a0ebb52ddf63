"""The HTTP server as an engine adapter: uvicorn inside the engine's own loop.

Why FastAPI on uvicorn: FastAPI writes the OpenAPI description from the
same typed models the routes return (the status dataclasses), so the API
documents itself; uvicorn serves in an existing asyncio loop
(``Server.serve()`` as a task), so the page, the API and the engine are one
process with one loop and the handlers read the engine's parts without locks.

Two things uvicorn would do that the engine must not let it:

- it installs its own SIGINT/SIGTERM handlers while serving; the engine has
  its own (a first signal stops cleanly, a second cuts actions short), so
  ``capture_signals`` is a no-op here;
- it waits, on shutdown, for every open connection to finish; event streams
  never finish by themselves, so they are closed first and the rest get
  ``GRACE`` seconds.

The listening socket is bound before the engine starts (``bind``), so an
address that cannot be had is refused before anything is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn

from engine.http.config import HttpConfigError, HttpOptions
from engine.http.security import AccessPolicy

if TYPE_CHECKING:
    from engine.http.metrics import Metrics
    from engine.runtime.engine import Engine
    from engine.runtime.subscribers import EventStream

log = logging.getLogger("engine.http")

GRACE = 1  # seconds open requests get to finish at shutdown
LAG_PROBE = 0.25  # seconds between event-loop lag measurements
MAX_CONNECTIONS = 64  # at once; more get 503 from uvicorn
BACKLOG = 64


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one); ``HttpConfigError`` if not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise HttpConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        why = "the address is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
        raise HttpConfigError(f"cannot listen on {host}:{port}: {why}") from None
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The engine keeps its own signal handlers."""
        yield


class HttpServer:
    """Serves the status page, API and metrics of the engine it is started with.

    ``Engine(rules, adapters=[HttpServer(options)])``. ``sock``: an already
    bound socket (``bind``); without one, ``start`` binds ``options``' address.
    ``url`` is the address it serves once started (the real port when 0 was asked).
    """

    def __init__(self, options: HttpOptions, sock: socket.socket | None = None) -> None:
        self.options = options
        self._sock = sock
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None
        self._streams: set[EventStream] = set()
        self.metrics: Metrics | None = None
        port = sock.getsockname()[1] if sock is not None else options.port
        self.url = HttpOptions(options.host, port, None, explicit=True).url

    @property
    def serving(self) -> bool:
        """True once requests are answered, until the server stops."""
        return self._server is not None and self._server.started and not self._server.should_exit

    async def start(self, engine: Engine) -> None:
        from engine.http.app import build_app
        from engine.http.metrics import Metrics

        sock = self._sock if self._sock is not None else bind(self.options.host, self.options.port)
        self._sock = sock
        port = sock.getsockname()[1]
        self.url = HttpOptions(self.options.host, port, None, explicit=True).url
        self.metrics = Metrics(engine)
        policy = AccessPolicy(self.options.host, self.options.token)
        guard, self._streams = build_app(engine, policy, self.metrics)
        config = uvicorn.Config(
            guard,
            log_config=None,
            access_log=False,  # a log line per scrape is noise; errors still go to the log
            lifespan="off",
            ws="none",
            http="h11",
            limit_concurrency=MAX_CONNECTIONS,
            timeout_graceful_shutdown=GRACE,
            server_header=False,
        )
        server = self._server = _Server(config)
        self._task = asyncio.get_running_loop().create_task(
            server.serve(sockets=[sock]), name="http server"
        )
        while not server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise HttpConfigError(f"the HTTP server on {self.url} did not start")
            await asyncio.sleep(0.01)
        self._probe = asyncio.get_running_loop().create_task(self._lag(), name="loop lag probe")
        log.debug("status page, API and metrics at %s", self.url)  # cuecap run says it at start

    async def _lag(self) -> None:
        """How late the loop wakes for a timer: what every other task waits on top of its work."""
        loop = asyncio.get_running_loop()
        metrics = self.metrics
        assert metrics is not None
        while True:
            planned = loop.time() + LAG_PROBE
            await asyncio.sleep(LAG_PROBE)
            metrics.loop_lag.observe(max(0.0, loop.time() - planned))

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        for stream in list(self._streams):
            stream.close()  # the streams' responses end, so their connections close
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(self._task), GRACE + 2.0)
            except TimeoutError:
                self._server.force_exit = True
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        if self.metrics is not None:
            self.metrics.close()
