"""A websocket server that behaves like PurpleDrop's ``pdserver``, fed by the simulator.

Like ``pdserver``: one serialized ``PurpleDropEvent`` per binary frame, the
same broadcast to every client, client messages ignored, no snapshot on
connect, nothing replayed to a late client. The stream comes from a
``SimWorld`` paced in real time (or ``speed`` times faster), or from a
recording served back with its original timing. ``speed=math.inf`` sends as
fast as the clients read (with backpressure), for benchmarks.

For tests and the examples the server also offers what a real one cannot:
start the stream only once N clients are connected (the default for a replay,
so nobody misses its beginning), inject arbitrary frames, and vanish without a
closing handshake as a crashed server would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.errors import InvalidArgument, InvalidState, ListenError
from engine.recording.reader import RecordingReader
from engine.sim.pump import batches
from engine.sim.world import SimWorld

log = logging.getLogger(__name__)

DEFAULT_PORT = 7001
# Unpaced sending waits while a client has more than this queued (bytes).
WRITE_HIGH_WATER = 1 << 20


def _uri(host: str, port: int) -> str:
    return f"ws://[{host}]:{port}" if ":" in host else f"ws://{host}:{port}"


class SimServer:
    """A running simulator server. Create it with ``start_sim_server``.

    Counters: ``sent`` (events broadcast), ``bytes_sent``, ``delivered``
    (events times the clients that got them), ``clients`` (connected now),
    ``clients_total`` (ever connected), ``peak_clients``. ``started_at`` is the
    clock time the stream began (world events carry timestamps from there on),
    ``finished`` a ``threading.Event`` set when the stream has ended or the
    server has closed, ``error`` the reason a stream stopped early.
    """

    def __init__(
        self,
        *,
        host: str,
        world: SimWorld | None,
        replay: RecordingReader | None,
        speed: float,
        duration: float | None,
        wait_for_clients: int,
        close_when_done: bool,
        clock: Clock,
    ) -> None:
        self.host = host
        self.port = 0
        self.world = world
        self.replay = replay
        self.speed = speed
        self.duration = duration
        self.wait_for_clients = wait_for_clients
        self.close_when_done = close_when_done
        self.clock = clock
        self.sent = 0
        self.bytes_sent = 0
        self.delivered = 0
        self.injected = 0
        self.clients_total = 0
        self.peak_clients = 0
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.stream_started: float | None = None  # loop.time() of the first event sent
        self.last_event_time: float | None = None  # stream time of the last event sent
        self.error: str | None = None
        self.finished = threading.Event()
        self.loop: asyncio.AbstractEventLoop = asyncio.get_running_loop()
        self._connections: set[ServerConnection] = set()
        self._clients_changed = asyncio.Event()
        self._done = asyncio.Event()
        self._server: Server | None = None
        self._pump: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<SimServer {self.uri} sent={self.sent} clients={self.clients}>"

    @property
    def uri(self) -> str:
        return _uri(self.host, self.port)

    @property
    def clients(self) -> int:
        return len(self._connections)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    # -- connections ---------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        self._connections.add(connection)
        self.clients_total += 1
        self.peak_clients = max(self.peak_clients, len(self._connections))
        self._clients_changed.set()
        log.info("client %s connected (%d now)", connection.remote_address, len(self._connections))
        try:
            async for _ in connection:
                pass  # pdserver ignores what clients send
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(connection)
            self._clients_changed.set()
            log.info("client %s left (%d now)", connection.remote_address, len(self._connections))

    async def wait_clients(self, count: int = 1, timeout: float | None = None) -> None:
        """Wait until at least ``count`` clients are connected."""
        async with asyncio.timeout(timeout):
            while len(self._connections) < count:
                self._clients_changed.clear()
                await self._clients_changed.wait()

    # -- the stream ----------------------------------------------------------------

    def _stream(self, start: float) -> Iterator[tuple[float, bytes]]:
        if self.world is not None:
            until = None if self.duration is None else start + self.duration
            return self.world.events(start, until)
        assert self.replay is not None
        pairs = ((frame.time, frame.raw) for frame in self.replay)
        duration = self.duration
        if duration is None:
            return pairs
        first: list[float] = []

        def within(item: tuple[float, bytes]) -> bool:
            if not first:
                first.append(item[0])
            return item[0] - first[0] < duration

        return itertools.takewhile(within, pairs)

    def _send(self, raw: bytes) -> None:
        connections = self._connections
        broadcast(connections, raw)
        self.sent += 1
        self.bytes_sent += len(raw)
        self.delivered += len(connections)

    async def _drain(self) -> None:
        """Backpressure for unpaced sending: wait while a client is far behind."""
        while True:
            behind = [
                c
                for c in self._connections
                if c.transport is not None
                and not c.transport.is_closing()
                and c.transport.get_write_buffer_size() > WRITE_HIGH_WATER
            ]
            if not behind:
                return
            await asyncio.sleep(0.001)

    async def _run(self) -> None:
        loop = self.loop
        try:
            if self.wait_for_clients:
                await self.wait_clients(self.wait_for_clients)
            self.started_at = self.clock.time()
            speed = self.speed
            paced = math.isfinite(speed)
            t0: float | None = None
            mono0 = 0.0
            async with contextlib.aclosing(batches(self._stream(self.started_at))) as stream:
                async for batch in stream:
                    slept = False
                    for t, raw in batch:
                        if t0 is None:
                            t0, mono0 = t, loop.time()
                            self.stream_started = mono0
                        if paced:
                            delay = mono0 + (t - t0) / speed - loop.time()
                            if delay > 0:
                                await asyncio.sleep(delay)
                                slept = True
                        self._send(raw)
                        self.last_event_time = t
                    if not paced:
                        await self._drain()
                    if not slept:
                        await asyncio.sleep(0)  # let clients and timers run between batches
        except Exception as exc:  # a broken recording, a world bug: say so, keep serving
            self.error = f"stream stopped: {exc}"
            log.error("%s", self.error)
        finally:
            self.ended_at = self.clock.time()
            self._done.set()
            self.finished.set()
        if self.replay is not None and self.replay.truncated_bytes:
            log.warning(
                "%s: the last %d bytes are a cut-short record; replay stopped before them",
                self.replay.path,
                self.replay.truncated_bytes,
            )
        if self.close_when_done:
            self._closing = asyncio.ensure_future(self.close())

    async def wait_done(self, timeout: float | None = None) -> None:
        """Wait until a bounded stream (a replay, a ``duration``) has been sent in full."""
        async with asyncio.timeout(timeout):
            await self._done.wait()

    # -- test helpers ----------------------------------------------------------------

    def inject(self, data: bytes | str) -> None:
        """Broadcast ``data`` as is (bytes: a binary frame, str: a text frame); any thread.

        For testing clients against what a real server might send by mistake:
        garbage bytes, a text frame, an empty message.
        """

        def send() -> None:
            broadcast(self._connections, data)
            self.injected += 1

        if _on_loop(self.loop):
            send()
        else:
            self.loop.call_soon_threadsafe(send)

    # -- shutting down -------------------------------------------------------------------

    async def close(self, *, abrupt: bool = False) -> None:
        """Stop the stream and the server.

        Normally clients get a closing handshake (1001, going away). With
        ``abrupt=True`` their TCP connections are cut with no handshake, like a
        server that crashed or lost its network.
        """
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if abrupt:
            for connection in list(self._connections):
                if connection.transport is not None:
                    connection.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._done.set()
        self.finished.set()

    async def wait_closed(self) -> None:
        """Wait until the server has been closed (by ``close`` or after a bounded stream)."""
        assert self._server is not None
        await self._server.wait_closed()

    def shutdown(self, *, abrupt: bool = False, timeout: float = 10.0) -> None:
        """``close()`` from another thread (the server runs in its own loop)."""
        if _on_loop(self.loop):
            raise InvalidState(
                "shutdown() is for other threads; on the server's loop, await close()"
            )
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.close(abrupt=abrupt), self.loop).result(timeout)

    def summary(self) -> str:
        mb = self.bytes_sent / 1e6
        text = (
            f"sent {self.sent} events ({mb:.1f} MB) to {self.clients_total} "
            f"client{'s' if self.clients_total != 1 else ''} (at most {self.peak_clients} at once)"
        )
        if (
            self.world is not None
            and self.started_at is not None
            and self.last_event_time is not None
        ):
            bursts = len(self.world.bursts(self.started_at, self.last_event_time))
            text += f"; {bursts} burst{'s' if bursts != 1 else ''} of droplet moves"
        if self.replay is not None and self.replay.truncated_bytes:
            text += f"; the recording ends with a cut-short record ({self.replay.truncated_bytes} bytes)"
        if self.error:
            text += f"; {self.error}"
        return text


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def start_sim_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    world: SimWorld | None = None,
    replay: str | Path | None = None,
    speed: float = 1.0,
    duration: float | None = None,
    wait_for_clients: int | None = None,
    close_when_done: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    **world_options: Any,  # forwarded to SimWorld
) -> SimServer:
    """Start a simulated ``pdserver`` and return once it listens (``port=0``: any free port).

    The stream is ``world`` (or a ``SimWorld(**world_options)``, e.g. ``seed=3,
    fps=0``) paced at ``speed`` times real time, or the recording ``replay``
    with its original timing scaled by ``speed``. ``duration`` bounds it
    (seconds of stream). It starts once ``wait_for_clients`` clients are
    connected: 0 (at once, like a real server) by default, 1 for a replay.
    """
    if world is not None and replay is not None:
        raise InvalidArgument("pass either world= or replay=, not both")
    if world_options and (world is not None or replay is not None):
        raise InvalidArgument(
            f"world options ({', '.join(sorted(world_options))}) apply only when the server builds its "
            "own world (no world=, no replay=)"
        )
    if not speed > 0:
        raise InvalidArgument(f"speed={speed}: must be above 0 (math.inf: as fast as clients read)")
    if duration is not None and not duration > 0:
        raise InvalidArgument(f"duration={duration}: must be above 0 seconds")
    reader = RecordingReader(replay) if replay is not None else None
    if reader is None and world is None:
        world = SimWorld(**world_options)
    if wait_for_clients is None:
        wait_for_clients = 1 if reader is not None else 0
    server = SimServer(
        host=host,
        world=world,
        replay=reader,
        speed=float(speed),
        duration=duration,
        wait_for_clients=wait_for_clients,
        close_when_done=close_when_done,
        clock=clock,
    )
    try:
        # A client that stops reading must not hold up a shutdown for long.
        ws_server = await serve(server._handle, host, port, compression=None, close_timeout=2.0)
    except OSError as exc:
        raise ListenError(
            exc.errno, f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    server._server = ws_server
    server.port = ws_server.sockets[0].getsockname()[1]
    server._pump = asyncio.create_task(server._run(), name=f"sim-pump-{server.port}")
    log.info("simulator serving %s", server.uri)
    return server


@dataclass
class _Box:
    """What the server thread hands back: its server and stop event, or why it failed."""

    server: SimServer | None = None
    stop: asyncio.Event | None = None
    error: BaseException | None = None


@contextlib.contextmanager
def run_sim_in_thread(**kwargs: Any) -> Iterator[SimServer]:
    """Run ``start_sim_server(**kwargs)`` in a background thread with its own loop.

    For synchronous code (examples, ``EventRecorder`` tests)::

        with run_sim_in_thread(seed=1, fps=0) as sim:
            recorder = EventRecorder(sim.uri)

    Leaving the block closes the server; ``sim.shutdown(abrupt=True)`` ends
    it earlier, as a crash would.
    """
    ready = threading.Event()
    box = _Box()

    async def main() -> None:
        try:
            server = await start_sim_server(**kwargs)
        except BaseException as exc:
            box.error = exc
            ready.set()
            return
        box.server = server
        stop = box.stop = asyncio.Event()
        ready.set()
        await stop.wait()
        await server.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="cuecap-sim", daemon=True)
    thread.start()
    ready.wait()
    if box.error is not None:
        thread.join()
        raise box.error
    server, stop = box.server, box.stop
    assert server is not None and stop is not None  # set before ready, unless an error was
    try:
        yield server
    finally:
        with contextlib.suppress(RuntimeError):  # the loop already ended
            server.loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)
