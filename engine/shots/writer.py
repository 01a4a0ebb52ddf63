"""Work on shot files off the loop's thread: files opened ahead, and writes handed back in batches.

``SpareFiles``: creating a file is by far the costliest step of saving a shot
(measured on this project's 2-core machine: 100-350 us for the ``open``,
while writing 5 KB and linking it take 10-25 us together), and the step that
blocks whenever the file system's journal is busy. Anonymous files
(``O_TMPFILE``) belong to no name yet, so one background thread opens a few
per folder ahead of need and the loop only writes and links them. A folder
seen for the first time, or a burst that empties the spares, opens inline as
before, and asks for more.

``ShotWriter``: the loop writes small files itself (``InlineWrites`` says why); files go here
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
import contextlib
import os
import queue
import threading

from engine.shots.files import ANONYMOUS, ShotFile, anonymous_files

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


class SpareFiles:
    """Anonymous files opened ahead, ``per_folder`` for each of the last ``folders`` folders.

    ``take`` is called on the loop's thread, the filling on one background
    thread (started when first needed); they share one-step operations only
    (a deque's ``popleft``/``append``, a set's ``add``/``discard``, a dict's
    get/set), so a spare goes to exactly one of them. Bounded: at most
    ``per_folder * folders`` descriptors; nothing is left on disk, even after
    a crash (an anonymous file without a name is freed when closed).
    """

    def __init__(self, per_folder: int = 32, folders: int = 8) -> None:
        self.per_folder = max(2, per_folder)
        self.folders = max(1, folders)
        self._ready: dict[str, collections.deque[int]] = {}
        self._asked: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._pending: set[str] = set()
        self._refused: set[str] = set()  # folders where opening failed: not asked again
        self._thread: threading.Thread | None = None
        self._closed = False

    def take(self, folder: str) -> int | None:
        """A ready file in ``folder``, or None (then the caller opens its own)."""
        ready = self._ready.get(folder)
        fd = None
        if ready:
            with contextlib.suppress(IndexError):  # emptied meanwhile
                fd = ready.popleft()
        low = ready is None or len(ready) < self.per_folder // 2
        if low and folder not in self._pending and folder not in self._refused:
            self._ask(folder)
        return fd

    def _ask(self, folder: str) -> None:
        if self._closed or not anonymous_files():
            return
        self._pending.add(folder)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._fill, name="cuecap-shot-files", daemon=True
            )
            self._thread.start()
        self._asked.put(folder)

    def _fill(self) -> None:
        while (folder := self._asked.get()) is not None:
            try:
                self._fill_one(folder)
            finally:
                self._pending.discard(folder)
        self._close_all()

    def _fill_one(self, folder: str) -> None:
        ready = self._ready.get(folder)
        if ready is None:
            while len(self._ready) >= self.folders:  # forget the folder asked for longest ago
                self._drop(next(iter(self._ready)))
            ready = self._ready[folder] = collections.deque()
        while len(ready) < self.per_folder and not self._closed:
            try:
                fd = os.open(folder, ANONYMOUS, 0o666)
            except OSError:  # missing (the shot makes it) or refused: the shot says why
                if len(self._refused) > 1000:
                    self._refused.clear()
                if not os.path.isdir(folder) or not anonymous_files():
                    return
                self._refused.add(folder)
                return
            ready.append(fd)
        if self._closed:
            self._close_all()

    def _drop(self, folder: str) -> None:
        ready = self._ready.pop(folder, None)
        while ready:
            with contextlib.suppress(IndexError):
                os.close(ready.popleft())

    def _close_all(self) -> None:
        for folder in list(self._ready):
            self._drop(folder)

    def close(self) -> None:
        """Close every spare; the thread ends (waited for a little: an open may be stuck)."""
        self._closed = True
        if self._thread is not None:
            self._asked.put(None)
            self._thread.join(5.0)
            self._thread = None
        self._close_all()
