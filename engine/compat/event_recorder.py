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

The recording itself is ``engine.recording.session.record_stream``, the same
code ``cuecap record`` runs; this class only moves calls onto its loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import threading
import weakref
from collections.abc import Callable

from engine.core.clock import SYSTEM_CLOCK
from engine.recording.session import RecordingSummary, record_stream
from engine.recording.writer import RecordingWriter
from engine.sources.backoff import Backoff
from engine.sources.websocket import DEFAULT_MAX_SIZE, WebSocketSource, normalize_uri

log = logging.getLogger(__name__)


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
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._session: concurrent.futures.Future[RecordingSummary] | None = None
        self._stop: asyncio.Event | None = None
        self._source: WebSocketSource | None = None
        self._writer: RecordingWriter | None = None
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._thread_entry, args=(ready,), name="cuecap-event-recorder", daemon=True
        )
        self.thread.start()
        if not ready.wait(start_timeout) or self.loop is None:
            raise RuntimeError(f"EventRecorder thread did not start within {start_timeout} s")
        self._exit_hook = _close_at_exit(self)

    def __repr__(self) -> str:
        state = f"recording to {self.output_file}" if self.recording else "idle"
        return f"EventRecorder({self.uri!r}, {state})"

    # -- the seed's interface ------------------------------------------------------

    def start(self, filepath: str | os.PathLike[str]) -> None:
        """Start recording to ``filepath`` (which must not exist yet).

        Raises ``RuntimeError`` if already recording or if the recorder's thread
        has terminated, and ``RecordingError`` (an ``OSError``) naming the file
        if it cannot be created.
        """
        with self._lock:
            self._check_thread()
            if self.recording:
                raise RuntimeError("Already recording. Call stop() first.")
            self._reap()
            writer = RecordingWriter(
                filepath,
                recorder="EventRecorder",
                source=self.uri,
                opened_at=SYSTEM_CLOCK.time(),
                start_reason="start()",
            )
            self.output_file = str(filepath)
            self._writer = writer
            self._stop = asyncio.Event()
            self._source = WebSocketSource(
                self.uri,
                max_size=self.max_size,
                backoff=self.backoff,
                max_retries=self.max_retries,
            )
            assert self.loop is not None
            self._session = asyncio.run_coroutine_threadsafe(
                record_stream(self._source, writer, stop=self._stop), self.loop
            )

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
                assert self.loop is not None and self._stop is not None
                self.loop.call_soon_threadsafe(self._stop.set)
            try:
                session.result(self.stop_timeout)
            except concurrent.futures.TimeoutError:
                raise RuntimeError(
                    f"EventRecorder: recording to {self.output_file} did not stop within "
                    f"{self.stop_timeout} s"
                ) from None
            except concurrent.futures.CancelledError:
                self._reap()
                raise RuntimeError("EventRecorder thread has terminated.") from None
            return self._reap()

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
        writer = self._writer
        return writer.records if writer is not None else 0

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
            if loop is not None and self.thread.is_alive():
                loop.call_soon_threadsafe(loop.stop)
            self.thread.join(self.stop_timeout)

    def __enter__(self) -> EventRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _check_thread(self) -> None:
        if not self.thread.is_alive():
            raise RuntimeError("EventRecorder thread has terminated.")

    def _reap(self) -> RecordingSummary | None:
        """Forget a finished session; its summary becomes ``last_summary``."""
        session, self._session = self._session, None
        self.output_file = None
        if session is None or session.cancelled() or not session.done():
            return None
        summary = session.result()
        self.last_summary = summary
        if summary.error:
            log.warning("EventRecorder: recording %s ended: %s", summary.path, summary.error)
        return summary


def _close_at_exit(recorder: EventRecorder) -> Callable[[], None]:
    """Close the recorder's file properly if the script ends without ``stop()``."""
    ref = weakref.ref(recorder)

    def close() -> None:
        alive = ref()
        if alive is not None and alive.thread.is_alive():
            alive.close()

    atexit.register(close)
    return close
