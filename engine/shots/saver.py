"""``ShotSaver``: the seed's synchronous interface, on top of ``ShotService``.

Plain scripts call ``save``/``get`` from their own thread; the saver runs its
event loop in a background thread, as the seed's ``EventRecorder`` does.
This is the hand-off between those threads and the loop-only service:
``save`` decides the request in the caller's thread (the service's desk, one
caller at a time under the saver's lock) and returns ``(task_guid, path)``
without waiting for the loop: a refusal is raised at once. The task goes to
an inbox, and the loop is woken once for a whole burst of requests
(``call_soon_threadsafe``), not once per request; it then tells each
``in_queue`` before any try starts. Status callbacks run on that background
thread, in order per task; keep them quick (hand slow work to a thread).
A callback may itself call ``save``. At interpreter exit, shots still queued
are finished (bounded by their timeouts) so a short script does not lose them.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.core.validation import settings_checked
from engine.errors import InvalidState
from engine.events import Emit, discard
from engine.shots.backends.base import Camera
from engine.shots.config import ShotsConfig
from engine.shots.frame_cache import FrameCache
from engine.shots.queue import ShotTask
from engine.shots.service import ShotService, ShotStats, StatusCallback, When, new_guid
from engine.shots.status import NoCallback, SaverClosed, ShotFailed, UnknownCamera

T = TypeVar("T")
Channel = str | Camera


def _camera_spec(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return {"type": "http", "url": value}
    return value


class ShotSaver:
    """Save screenshots asynchronously: bounded, retried, checked, and reported.

    ``pool_size`` (10 by default) bounds how many shots run at once;
    ``callback(task_guid, state)`` hears every status of every task. Cameras
    are named: ``ShotSaver(cameras={"gate": {"type": "http", "url": ...}})``,
    or a URL string as a shorthand for an http camera. ``engine.ShotSaver``
    (``engine.compat``) adds the rule files: without ``cameras`` it uses those
    of the default rule files, and ``from_file`` reads one.
    """

    def __init__(
        self,
        pool_size: int | None = None,
        callback: StatusCallback | None = None,
        *,
        cameras: Mapping[str, Any] | None = None,
        settings: ShotsConfig | None = None,
        screenshots_folder: str | Path | None = None,
        queue_size: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
        emit: Emit = discard,
        frame_cache: FrameCache | None = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        # what an unknown camera's error adds: where cameras are configured (see engine.compat)
        self._unknown_hint = ""
        with settings_checked("ShotSaver"):  # a bad value: InvalidSettings, not pydantic's
            settings = settings.model_copy(deep=True) if settings is not None else ShotsConfig()
            if pool_size is not None:
                settings.pool_size = pool_size
            if queue_size is not None:
                settings.queue_size = queue_size
            if screenshots_folder is not None:
                settings.folder = str(screenshots_folder)
            specs = {name: _camera_spec(value) for name, value in (cameras or {}).items()}
            self._service = ShotService(
                specs, settings, emit=emit, clock=clock, frame_cache=frame_cache, random=random
            )
        self._service.default_callback = callback
        # The hand-off: requests decided in callers' threads wait here for the loop.
        self._lock = threading.Lock()
        self._inbox: list[ShotTask] = []
        self._wake_pending = False
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="cuecap-shot-saver", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._thread.join()
            self._loop.close()
            raise self._start_error
        _finish_at_exit(self)

    # -- the seed's public attributes ----------------------------------------

    @property
    def service(self) -> ShotService:
        return self._service

    @property
    def settings(self) -> ShotsConfig:
        return self._service.settings

    @property
    def pool_size(self) -> int:
        return self.settings.pool_size

    @pool_size.setter
    def pool_size(self, value: int) -> None:
        self.settings.pool_size = value
        self._in_loop(self._service.poke)

    @property
    def timeout_sec(self) -> float:
        return self.settings.timeout_sec

    @timeout_sec.setter
    def timeout_sec(self, value: float) -> None:
        self.settings.timeout_sec = value

    @property
    def buffer_ts(self) -> float:
        return self.settings.buffer_ts

    @buffer_ts.setter
    def buffer_ts(self, value: float) -> None:
        self.settings.buffer_ts = value

    @property
    def max_tries(self) -> int:
        return self.settings.max_tries

    @max_tries.setter
    def max_tries(self, value: int) -> None:
        self.settings.max_tries = value

    @property
    def screenshots_folder(self) -> str:
        return str(Path(self.settings.folder).expanduser().absolute())

    @screenshots_folder.setter
    def screenshots_folder(self, value: str | Path) -> None:
        self.settings.folder = str(value)

    @property
    def callback(self) -> StatusCallback | None:
        return self._service.default_callback

    @callback.setter
    def callback(self, value: StatusCallback | None) -> None:
        self._service.default_callback = value

    # -- requests ----------------------------------------------------------

    def save(
        self,
        channel_full_guid: Channel,
        dt: When = None,
        figures: bool = False,
        file_name: str | None = None,
        file_path: str | Path | None = None,
        callback: StatusCallback | None = None,
        task_guid: str | None = None,
    ) -> tuple[str, Path]:
        """Queue a shot; returns ``(task_guid, full_path)`` at once, before the file exists.

        ``file_path`` is the folder to save into (default: ``screenshots_folder``);
        ``file_name`` a template (strftime and ``{camera}``, ``{server}``...).
        Raises ``QueueFull`` when too many shots wait, ``UnknownCamera``...
        """
        task = self._admit(
            channel_full_guid,
            dt=dt,
            figures=figures,
            file_name=file_name,
            root=file_path,
            callback=callback,
            task_guid=task_guid,
        )
        assert task.path is not None
        return task.guid, task.path

    def get(
        self,
        channel_full_guid: Channel,
        dt: When = None,
        figures: bool = False,
        callback: Callable[[bytes | ShotFailed], Any] | None = None,
        task_guid: str | None = None,
    ) -> str:
        """Take a shot and hand it to ``callback``: the JPEG ``bytes``, or a ``ShotFailed``.

        Nothing is written to disk. The callback is called exactly once, on
        failure too (the seed's callers waited forever). Returns the task guid;
        the saver's own ``callback`` hears the statuses as for ``save``.
        Without ``callback`` the saver's ``callback`` is used, as in the
        original: after the task's statuses it hears ``(task_guid, result)``.
        With neither, ``EnvironmentError`` (``OSError``) is raised, as the
        original documents.
        """
        deliver: Callable[[Any], Any] | None = callback
        if deliver is None:
            status_callback = self.callback
            if status_callback is None:
                raise NoCallback(
                    "get() needs a callback: pass callback=, or set the saver's callback; "
                    "it receives the image bytes or a ShotFailed"
                )
            task_guid = task_guid or new_guid()
            guid_now = task_guid

            def deliver(result: bytes | ShotFailed) -> None:
                status_callback(guid_now, result)  # type: ignore[arg-type]  # as the original

        return self._admit(
            channel_full_guid, dt=dt, figures=figures, deliver=deliver, task_guid=task_guid
        ).guid

    def _admit(self, channel: Channel, **request: Any) -> ShotTask:
        """Decide a request here, queue it for the loop; wake the loop once per burst."""
        with self._lock:
            if self._closed:
                raise SaverClosed("shot saver is closed")
            try:
                task = self._service.prepare(channel, **request)
            except UnknownCamera as exc:
                raise self._explain(exc) from None
            self._inbox.append(task)
            if self._wake_pending:
                return task
            self._wake_pending = True
        # Closed meanwhile: closing handed this task over already.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._hand_over)
        return task

    def _hand_over(self) -> None:
        """On the loop: give the service every task decided since the last wake."""
        with self._lock:
            tasks, self._inbox = self._inbox, []
            self._wake_pending = False
        if tasks:
            self._service.accept(tasks)

    def _explain(self, exc: UnknownCamera) -> UnknownCamera:
        """An unknown camera says where cameras are configured (the service only lists them)."""
        return UnknownCamera(f"{exc}; {self._unknown_hint}") if self._unknown_hint else exc

    def grab(
        self,
        channel_full_guid: Channel,
        dt: When = None,
        figures: bool = False,
        timeout: float | None = None,
    ) -> bytes:
        """The image bytes of one shot, waiting for them; raises ``ShotFailed``."""
        if threading.get_ident() == self._thread.ident:
            raise InvalidState(
                "grab() would block the saver's own thread; use get() with a callback"
            )
        done: concurrent.futures.Future[bytes] = concurrent.futures.Future()

        def deliver(result: bytes | ShotFailed) -> None:
            if isinstance(result, ShotFailed):
                done.set_exception(result)
            else:
                done.set_result(result)

        self.get(channel_full_guid, dt, figures, callback=deliver)
        return done.result(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every accepted shot is final; False if ``timeout`` passed first."""
        future = asyncio.run_coroutine_threadsafe(self._drain(), self._loop)
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return False
        return True

    async def _drain(self) -> None:
        self._hand_over()
        await self._service.drain()

    @property
    def stats(self) -> ShotStats:
        return self._in_loop(self._service.snapshot)

    # -- lifecycle ---------------------------------------------------------

    def close(self, graceful: bool = True, timeout: float | None = None) -> None:
        """Finish (or abandon) queued shots, then stop the background thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True  # no more requests: the inbox only empties from here on
        future = asyncio.run_coroutine_threadsafe(self._close(graceful, timeout), self._loop)
        future.result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _close(self, graceful: bool, timeout: float | None) -> None:
        self._hand_over()  # requests accepted before closing get their statuses too
        await self._service.aclose(graceful=graceful, timeout=timeout)

    def __enter__(self) -> ShotSaver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _at_exit(self) -> None:
        if not self._closed and self._thread.is_alive():
            # Long enough for queued shots to run their tries; a shot waiting for a
            # far-future moment is abandoned (it still gets its error status).
            s = self.settings
            self.close(
                graceful=True, timeout=s.timeout_sec * s.max_tries + s.backoff_max + s.buffer_ts
            )

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._service.start())
        except BaseException as exc:  # told to the constructor, which would wait for ever
            self._start_error = exc
            return
        finally:
            self._started.set()
        self._loop.run_forever()

    def _in_loop(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the saver's loop and return its result (or raise its error)."""
        if self._closed:
            raise SaverClosed("shot saver is closed")
        if threading.get_ident() == self._thread.ident:
            return fn(*args, **kwargs)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result()


def _finish_at_exit(saver: ShotSaver) -> None:
    """Finish the saver's queued shots when the program ends, without keeping it alive.

    The hook must run before ``concurrent.futures`` stops accepting work at
    interpreter shutdown, so it goes where that module registers its own
    (``threading._register_atexit``, run in reverse order of registration);
    plain ``atexit`` is the fallback.
    """
    ref = weakref.ref(saver)

    def finish() -> None:
        alive = ref()
        if alive is not None:
            alive._at_exit()

    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError
        register(finish)
    except RuntimeError:
        atexit.register(finish)
