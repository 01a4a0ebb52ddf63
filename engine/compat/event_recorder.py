"""``EventRecorder``: the seed's class for recording a PurpleDrop stream from a script.

Same calls and errors as the seed (``start(path)``, ``stop()``, ``RuntimeError``
when already recording or when its thread has died), with its loop in a daemon
thread as before. What changed is underneath:

- the constructor waits until the loop runs (the seed raced on it, and ``start``
  could hit a ``None`` loop); it raises if the loop does not come up;
- ``stop()`` waits for the recording to finish instead of polling every 0.1 s,
  and returns what was recorded; with nothing recording it does nothing;
- a server that is down or drops the connection is retried with backoff and
  logged, instead of killing the thread; gaps go in the manifest;
- files are PurpleDrop records plus an index of receive times and a manifest,
  flushed at least twice a second, closed cleanly at interpreter exit too.

``start``/``stop`` are a manual start and stop of an engine ``Recorder`` (no
activity detectors, no pre-roll, the file named exactly), the same state
machine a rule's ``record`` action drives. Each recording gets its own
``WebSocketSource`` (the seed connects only while recording), fed to the
recorder by ``run_session``, the loop ``cuecap record`` runs too.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from engine.core.clock import SYSTEM_CLOCK
from engine.errors import InvalidState
from engine.events import Event, RecordingErrored
from engine.recorder.config import RecorderConfig
from engine.recorder.decisions import ERROR
from engine.recorder.recorder import Recorder, feed_source
from engine.recording.format import RecordingError, remove_recording
from engine.sources.backoff import Backoff
from engine.sources.session import (
    STOP_CANCELLED,
    STOP_WRITE_ERROR,
    RecordingSummary,
    close_source,
    run_session,
    session_extra,
)
from engine.sources.websocket import DEFAULT_MAX_SIZE, WebSocketSource, normalize_uri

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_TERMINATED = "EventRecorder thread has terminated."


class EventRecorder:
    """Capture the event stream of a PurpleDrop ``pdserver`` to files, on demand.

    ``uri`` is the websocket server, typically ``ws://<host>:7001``. Call
    ``recorder.start("log.bin")`` to begin and ``recorder.stop()`` to end;
    recording runs in a background thread, so the calling script goes on.
    """

    def __init__(
        self,
        uri: str,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        backoff: Backoff | None = None,
        max_retries: int | None = None,
        stop_timeout: float = 30.0,
        start_timeout: float = 5.0,
    ) -> None:
        self.uri = normalize_uri(uri)
        self.max_size = max_size
        self.backoff = backoff
        self.max_retries = max_retries
        self.stop_timeout = stop_timeout
        self.output_file: str | None = None
        self.last_summary: RecordingSummary | None = None
        self.recorder = Recorder(
            "EventRecorder",
            RecorderConfig(source=self.uri, pre_roll=0, retry_after=None),
            root=".",
            emit=self._on_event,
            clock=SYSTEM_CLOCK,
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._session: concurrent.futures.Future[RecordingSummary] | None = None
        self._stop: asyncio.Event | None = None
        self._source: WebSocketSource | None = None
        self._ended: concurrent.futures.Future[None] = concurrent.futures.Future()
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._thread_entry, args=(ready,), name="cuecap-event-recorder", daemon=True
        )
        self.thread.start()
        if not ready.wait(start_timeout) or self.loop is None:
            raise InvalidState(f"EventRecorder thread did not start within {start_timeout} s")
        self._exit_hook: Callable[[], None] = _close_at_exit(self)

    def __repr__(self) -> str:
        state = f"recording to {self.output_file}" if self.recording else "idle"
        return f"EventRecorder({self.uri!r}, {state})"

    # -- the seed's interface ------------------------------------------------------

    def start(self, filepath: str | os.PathLike[str]) -> None:
        """Start recording to ``filepath``, replacing it if it exists (as the original did).

        A replaced file is logged, with its index and manifest, so a run that
        overwrote an earlier one says so. Raises ``RuntimeError`` if already
        recording or if the recorder's thread has terminated, and
        ``RecordingError`` (an ``OSError``) naming the file if it cannot be
        created or replaced.
        """
        with self._lock:
            self._check_thread()
            if self.recording:
                raise InvalidState("Already recording. Call stop() first.")
            self._reap()
            self._replace(filepath)
            opening = self._on_loop(
                self.recorder.start("start()", pre_roll=False, path=filepath, exact=True)
            )
            if self._wait(opening, f"opening {filepath}") is None:
                raise RecordingError(self.recorder.last_error or f"{filepath}: cannot record")
            self.output_file = str(filepath)
            self._stop = asyncio.Event()
            self._source = WebSocketSource(
                self.uri, max_size=self.max_size, backoff=self.backoff, max_retries=self.max_retries
            )
            self._session = self._on_loop(self._record(self._source, self._stop))

    @staticmethod
    def _replace(filepath: str | os.PathLike[str]) -> None:
        try:
            removed = remove_recording(filepath)
        except OSError as exc:
            raise RecordingError(f"{filepath}: cannot replace: {exc.strerror or exc}") from None
        if removed:
            log.warning("replacing %s", ", ".join(str(p) for p in removed))

    def stop(self) -> RecordingSummary | None:
        """Stop the recording in progress and return its summary (None if none ran).

        Waits until the file is closed. Raises ``RuntimeError`` if the
        recorder's thread has terminated.
        """
        with self._lock:
            session = self._session
            if session is None:
                self._check_thread()
                return None
            if not session.done():
                self._check_thread()
                self._signal_stop()
            try:
                self._wait(session, f"recording to {self.output_file}")
            finally:
                if session.done() or self._ended.done():
                    self._reap()
            return self.last_summary

    # -- additions -------------------------------------------------------------

    @property
    def recording(self) -> bool:
        """True from ``start()`` until ``stop()`` or until the recording gave up."""
        session = self._session
        return session is not None and not session.done()

    @property
    def connected(self) -> bool:
        source = self._source
        return self.recording and source is not None and source.connected

    @property
    def records(self) -> int:
        """Records written so far in the current (or last) recording."""
        if self.recording:
            return self.recorder.records
        summary = self.last_summary
        return summary.records if summary is not None else 0

    @property
    def errors(self) -> list[str]:
        """Connection problems of the current (or last) recording, oldest first."""
        source = self._source
        return list(source.stats.errors) if source is not None else []

    def close(self) -> None:
        """Stop any recording, then the background thread. The recorder cannot be reused."""
        atexit.unregister(self._exit_hook)
        if not self.thread.is_alive():
            return
        try:
            self.stop()
        finally:
            loop = self.loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # already closed: the thread is ending
                    loop.call_soon_threadsafe(loop.stop)
            self.thread.join(self.stop_timeout)

    def __enter__(self) -> EventRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- on the loop -------------------------------------------------------------

    async def _record(self, source: WebSocketSource, stop: asyncio.Event) -> RecordingSummary:
        """One recording: the source fed to the recorder (already recording) until stopped."""
        recorder = self.recorder
        started_at = SYSTEM_CLOCK.time()
        reason, error = STOP_CANCELLED, None
        try:
            reason, error = await run_session(
                feed_source(recorder, source),
                recorder.tick,
                clock=SYSTEM_CLOCK,
                period=recorder.config.flush_interval / 2,
                stop=stop,
            )
        finally:
            await close_source(source)
            if recorder.state == ERROR:  # a write failed; the recorder closed the file itself
                reason, error = STOP_WRITE_ERROR, recorder.last_error
            await recorder.stop(reason, extra=session_extra(source.stats, error))
        if error:
            log.warning("EventRecorder: recording %s ended: %s", self.output_file, error)
        return RecordingSummary.of(
            recorder.segments[-1],
            source.stats,
            started_at=started_at,
            stopped_at=SYSTEM_CLOCK.time(),
            stop_reason=reason,
            error=error,
        )

    def _on_event(self, event: Event) -> None:
        """The recorder's announcements: a write error ends the recording in progress."""
        if isinstance(event, RecordingErrored) and self._stop is not None:
            self._stop.set()

    # -- the background thread ----------------------------------------------------

    def _thread_entry(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            # Whatever stopped the loop, let a running recording close its file.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.recorder.close(STOP_CANCELLED)  # a file opened by start() with no session yet
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._ended.set_result(None)

    def _on_loop(self, coroutine: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        assert self.loop is not None
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:  # the loop is closed
            coroutine.close()
            raise InvalidState(_TERMINATED) from None

    def _wait(self, future: concurrent.futures.Future[_T], what: str) -> _T:
        """The result of work sent to the loop, or ``RuntimeError`` if the thread ends first.

        The thread's end is waited for too, so a loop stopped under a pending
        call never leaves the caller waiting for ``stop_timeout``.
        """
        # Futures of different result types: wait() takes them as Future[Any] (it is invariant).
        either: list[concurrent.futures.Future[Any]] = [future, self._ended]
        concurrent.futures.wait(either, self.stop_timeout, concurrent.futures.FIRST_COMPLETED)
        if future.done():
            if future.cancelled():
                raise InvalidState(_TERMINATED)
            return future.result()
        if self._ended.done():
            raise InvalidState(_TERMINATED)
        raise InvalidState(f"EventRecorder: {what} did not finish within {self.stop_timeout} s")

    def _signal_stop(self) -> None:
        assert self.loop is not None and self._stop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: its session is ending
            self.loop.call_soon_threadsafe(self._stop.set)

    def _check_thread(self) -> None:
        if not self.thread.is_alive():
            raise InvalidState(_TERMINATED)

    def _reap(self) -> None:
        """Forget a finished session; its summary becomes ``last_summary``."""
        session, self._session = self._session, None
        self.output_file = None
        if session is None or not session.done() or session.cancelled():
            return
        if session.exception() is None:
            self.last_summary = session.result()


def _close_at_exit(recorder: EventRecorder) -> Callable[[], None]:
    """Close the recorder's file properly if the script ends without ``stop()``."""
    ref = weakref.ref(recorder)

    def close() -> None:
        alive = ref()
        if alive is not None and alive.thread.is_alive():
            alive.close()

    atexit.register(close)
    return close
