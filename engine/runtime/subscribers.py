"""Who hears the engine's events: callbacks, and bounded streams for slow readers.

The status page, MQTT and NATS read the same events the rules react to. A
callback runs on the loop thread as each event happens and must not block. An
``EventStream`` is for readers that await (a server-sent-events response, a
publisher waiting on its broker): it holds at most ``maxsize`` events and,
when its reader falls behind, drops the oldest and counts them, so a stalled
reader costs bounded memory and never slows the engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from engine.errors import InvalidArgument
from engine.events import Event

log = logging.getLogger("engine")

Callback = Callable[[Event], None]


class Subscribers:
    """The callbacks to call for every event, in the order they subscribed."""

    def __init__(self) -> None:
        self._callbacks: list[Callback] = []
        self.failures = 0

    def add(self, callback: Callback) -> Callable[[], None]:
        """Subscribe; returns the function that unsubscribes (safe to call twice)."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def __bool__(self) -> bool:
        return bool(self._callbacks)

    def publish(self, event: Event) -> None:
        for callback in tuple(self._callbacks):
            try:
                callback(event)
            except Exception:
                # One faulty listener must not cost the others (or the engine) the event.
                self.failures += 1
                if self.failures <= 3 or str(self.failures).rstrip("0") == "1":
                    log.exception("event listener %r failed on %s", callback, event.name)


class EventStream:
    """An async iterator of events, bounded: ``async for event in engine.events(): ...``.

    Ends after ``close()`` (the engine closes its streams when it has stopped),
    once the events already held are read.
    """

    def __init__(self, maxsize: int = 1000) -> None:
        if maxsize < 1:
            raise InvalidArgument("an event stream holds at least one event")
        self._queue: deque[Event] = deque(maxlen=maxsize)
        self._wakeup: asyncio.Event = asyncio.Event()
        self._closed = False
        self.dropped = 0  # events lost to a reader that fell behind
        self._unsubscribe: Callable[[], None] | None = None

    def put(self, event: Event) -> None:
        if self._closed:
            return
        queue = self._queue
        if len(queue) == queue.maxlen:
            self.dropped += 1
        queue.append(event)
        self._wakeup.set()

    def close(self) -> None:
        """No more events; the reader ends once it has read the ones held."""
        self._closed = True
        self._wakeup.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()
