"""A websocket server for tests: sends every client a fixed script of messages.

Real sockets on 127.0.0.1 with a free port. ``then`` says what happens after
the script: ``"hold"`` keeps the connection open, ``"close"`` closes it, and
``"repeat"`` sends the script again and again (a live-looking stream).
``threaded()`` runs it on its own loop for tests that block (CLI, EventRecorder).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, Literal

from websockets.asyncio.server import Server, ServerConnection, serve

from engine.proto.purpledrop_pb2 import PurpleDropEvent


def sample_events(n: int, *, image_every: int = 0, image_size: int = 2000) -> list[bytes]:
    """``n`` serialized events of several kinds, each different."""
    out = []
    for i in range(n):
        event = PurpleDropEvent()
        if image_every and i % image_every == 0:
            event.image.timestamp.seconds = 1_700_000_000 + i
            event.image.image_data = bytes((i + j) % 256 for j in range(image_size))
        elif i % 3 == 0:
            event.active_capacitance.timestamp.seconds = 1_700_000_000 + i
            event.active_capacitance.calibrated = float(i)
        elif i % 3 == 1:
            event.group_capacitance.timestamp.nanos = i
            event.group_capacitance.measurements.extend([float(i)] * 5)
        else:
            event.hv_regulator.voltage = 100.0 + i
        out.append(event.SerializeToString())
    return out


class ScriptedServer:
    def __init__(
        self,
        script: Sequence[bytes | str],
        *,
        then: Literal["hold", "close", "repeat"] = "hold",
        interval: float = 0.0,
        port: int = 0,
    ) -> None:
        self.script = list(script)
        self.then = then
        self.interval = interval
        self.port = port
        self.connections = 0
        self.sent = 0
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def uri(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        while True:
            for message in self.script:
                await ws.send(message)
                self.sent += 1
                if self.interval:
                    await asyncio.sleep(self.interval)
            if self.then != "repeat":
                break
            if not self.interval:
                await asyncio.sleep(0)
        if self.then == "close":
            await ws.close()
        else:
            await ws.wait_closed()

    async def start(self) -> ScriptedServer:
        self._server = await serve(
            self._handler, "127.0.0.1", self.port, compression=None, max_size=None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ScriptedServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def threaded(self) -> Iterator[ScriptedServer]:
        """Serve from a background thread (for code under test that blocks)."""
        loop = self._loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            self._on_loop(self.start())
            yield self
        finally:
            self._on_loop(self.stop())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()
            self._loop = None

    def restart(self) -> None:
        """Threaded only: go away (closing every connection) and come back on the same port."""
        self._on_loop(self.stop())
        self._on_loop(self.start())

    def _on_loop(self, coro: Coroutine[Any, Any, object]) -> None:
        assert self._loop is not None, "only inside threaded()"
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)
