"""Shot files written on worker threads, their endings handed back to the loop in batches.

The loop writes small files itself (``InlineWrites`` says why); files go here
when they are large, or for a while after a write on the loop was slow (a
stalled disk must not hold up the engine, but a loaded machine looks like one
too, so this path must stay cheap). ``run_in_executor`` costs, per file, a
``concurrent.futures.Future`` chained to an asyncio one and a
``call_soon_threadsafe`` (a system call) to report back; here a job is one
``SimpleQueue.put``, and the threads wake the loop once for all the writes
that ended since it last looked.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading

from engine.shots.files import ShotFile

_Job = tuple[ShotFile, bytes, "asyncio.Future[None]"]


class ShotWriter:
    """Up to ``threads`` worker threads, started when first needed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, threads: int = 2) -> None:
        self._loop = loop
        self._max = max(1, threads)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._ended: collections.deque[tuple[asyncio.Future[None], BaseException | None]] = (
            collections.deque()
        )
        self._threads: list[threading.Thread] = []
        self._busy = 0  # jobs given and not ended (loop thread only)
        self._woken = False

    def write(self, target: ShotFile, data: bytes) -> asyncio.Future[None]:
        """Commit ``target`` on a worker; the future ends when the file is complete (or not)."""
        future = self._loop.create_future()
        self._busy += 1
        if self._busy > len(self._threads) and len(self._threads) < self._max:
            thread = threading.Thread(
                target=self._work, name=f"cuecap-shot-io-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        self._jobs.put((target, data, future))
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            target, data, future = job
            error: BaseException | None = None
            try:
                target.commit(data)
            except BaseException as exc:  # handed to the shot, which reports it
                error = exc
            self._ended.append((future, error))
            if not self._woken:
                self._woken = True
                try:
                    self._loop.call_soon_threadsafe(self._collect)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    return

    def _collect(self) -> None:
        self._woken = False  # before taking: a write ending now wakes the loop again
        ended = self._ended
        while ended:
            future, error = ended.popleft()
            self._busy -= 1
            if future.cancelled():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def close(self) -> None:
        """Let the threads finish what they were given, then end them."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()
