"""The shot saver inside an asyncio loop: bounded queue, workers, retries, events.

``ShotService`` is the adapter around the pure ``ShotDesk`` (which answers a
request at once: its id and path, or a refusal) and ``ShotQueue`` (which says
what starts when): it asks the queue what to start whenever something changes
(a request, a finished try, one timer for the next retry or delayed start),
runs each try as a task, and turns outcomes into status callbacks and engine
events. There is no polling: a shot is reported the moment its backend returns
and its file has its name.

Everything here runs on the loop's thread (or before ``start``): there is no
lock. Other threads go through ``ShotSaver``, which decides their requests
with ``prepare`` (desk only, one caller at a time under its lock) and hands
the tasks to ``accept`` on the loop, one wake for a whole burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random as _random
import socket
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.errors import UnsupportedType
from engine.events import Emit, ShotErrored, ShotQueued, ShotSaved, ShotSaving, discard
from engine.shots.backends import build_camera
from engine.shots.backends.base import Camera, CaptureError, CaptureRequest
from engine.shots.backends.python import PythonCamera
from engine.shots.config import CameraConfig, OnExists, ShotsConfig
from engine.shots.desk import ShotDesk, ShotRequest, new_guid
from engine.shots.files import ShotFile
from engine.shots.frame_cache import FrameCache
from engine.shots.jpeg import jpeg_problem, jpeg_problem_thorough
from engine.shots.policy import InlineWrites, RetryPolicy
from engine.shots.queue import Outcome, ShotQueue, ShotTask
from engine.shots.status import (
    SaverClosed,
    ShotFailed,
    ShotStatus,
    StatusUpdate,
)
from engine.shots.writer import ShotWriter

logger = logging.getLogger(__name__)

StatusCallback = Callable[[str, str], Any]
Deliver = Callable[[Any], Any]
When = datetime | float | int | None
_MAX_THREADS = 64
T = TypeVar("T")
__all__ = ["ShotService", "ShotStats", "StatusCallback", "When", "new_guid", "to_epoch"]


def to_epoch(dt: When) -> float | None:
    """A requested moment as epoch seconds; naive datetimes are local time (as in the seed)."""
    if dt is None:
        return None
    if isinstance(dt, datetime):
        return dt.timestamp()
    if isinstance(dt, int | float) and not isinstance(dt, bool):
        return float(dt)
    raise UnsupportedType(f"dt must be a datetime or epoch seconds, not {type(dt).__name__}")


@types.coroutine
def _resume(coro: Coroutine[Any, Any, T], value: Any) -> Generator[Any, Any, T]:
    """Go on with ``coro`` after its first step yielded ``value``, as ``await coro`` would.

    What the camera yields goes to the awaiting task unchanged (so it waits
    for the camera's future as usual), and what the task sends or throws
    (a result, a cancellation from the timeout or from closing) goes back in.
    """
    while True:
        try:
            sent = yield value
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                value = coro.throw(exc)
            except StopIteration as done:
                return cast(T, done.value)
        else:
            try:
                value = coro.send(sent)
            except StopIteration as done:
                return cast(T, done.value)


def _write_error(path: str, exc: OSError) -> CaptureError:
    if isinstance(exc, FileExistsError):
        return CaptureError(
            f"{path} was created by something else after the shot was planned; "
            "not overwritten (on_exists: replace would)",
            retryable=False,
        )
    return CaptureError(f"cannot write {path}: {exc.strerror or exc}")


@dataclass(slots=True)
class _Context:
    callback: StatusCallback | None
    deliver: Deliver | None
    fields: Mapping[str, Any]
    requested: float | None


@dataclass
class ShotStats:
    """Counters since start; ``max_in_flight`` is the most tries ever running at once."""

    submitted: int = 0
    rejected: int = 0
    succeeded: int = 0
    failed: int = 0
    retries: int = 0
    callback_errors: int = 0
    in_flight: int = 0
    waiting: int = 0
    max_in_flight: int = 0


# Statuses announced as events; the final ones go out from ``_final`` with the outcome.
_PROGRESS = frozenset({ShotStatus.in_queue, ShotStatus.saving})


class ShotService:
    """Bounded, retried shots from named cameras, inside the engine's event loop."""

    def __init__(
        self,
        cameras: Mapping[str, Camera | Any] | None = None,
        settings: ShotsConfig | None = None,
        *,
        emit: Emit = discard,
        clock: Clock = SYSTEM_CLOCK,
        frame_cache: FrameCache | None = None,
        random: Callable[[], float] | None = None,
        server: str | None = None,
    ) -> None:
        self.settings = settings if settings is not None else ShotsConfig()
        self.emit = emit
        self.clock = clock
        self.frame_cache = frame_cache
        self.server = server if server is not None else socket.gethostname()
        self.default_callback: StatusCallback | None = None
        s = self.settings
        self.desk = ShotDesk(s, server=self.server)
        self._queue = ShotQueue(
            pool_size=s.pool_size,
            retry=self._retry_policy(),
            random=random if random is not None else _random.random,
        )
        threads = min(s.pool_size, _MAX_THREADS)
        # Backend work that blocks (sync camera functions) and disk writes, apart:
        # a hung camera function must never stall the writing of other shots.
        self._workers = ThreadPoolExecutor(threads, thread_name_prefix="cuecap-camera")
        self._io = ThreadPoolExecutor(threads, thread_name_prefix="cuecap-shot-io")
        self.inline_writes = InlineWrites()  # where files are written; tunable
        self._writer: ShotWriter | None = None  # files not written on the loop
        self._gated: set[str] = set()  # cameras whose limits the queue knows
        for name, camera in (cameras or {}).items():
            self.add_camera(name, camera)
        self._tasks: dict[str, ShotTask] = {}
        # Tries running, by task guid; each removes itself when it ends (no done callback:
        # that would cost a loop turn per shot). One cancelled before its first step
        # never runs its ending; closing finds it here.
        self._running: dict[str, asyncio.Task[None]] = {}
        # Coroutine callbacks in progress: held here, since the loop keeps only weak references.
        self._callbacks: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._wake_pending = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._abandon = False  # closing hard: no more retries
        self._closed = False
        self._retention: asyncio.Task[None] | None = None
        self.stats = ShotStats()

    def _retry_policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(s.backoff, s.backoff_factor, s.backoff_max, s.jitter)

    # -- cameras -----------------------------------------------------------

    def add_camera(self, name: str, camera: Camera | Any) -> Camera:
        """Register a camera object, or build one from its config (model or mapping)."""
        if not hasattr(camera, "capture"):
            config = cast("CameraConfig | dict[str, object]", camera)
            camera = build_camera(
                name, config, frame_cache=self.frame_cache, executor=self._workers, clock=self.clock
            )
        self.desk.register(name, camera)
        self._configure(camera)
        return camera

    def _configure(self, camera: Camera) -> None:
        """Give the queue the camera's limits, and sync camera functions the worker threads."""
        if isinstance(camera, PythonCamera) and camera.executor is None:
            camera.executor = self._workers
        cfg = camera.config
        gate = self._queue.gate(camera.name)
        gate.max_in_flight = cfg.max_in_flight
        gate.min_interval = cfg.min_interval
        gate.throttle = cfg.throttle
        self._gated.add(camera.name)

    @property
    def cameras(self) -> Mapping[str, Camera]:
        return self.desk.cameras

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Bind to the running loop and start what was queued before."""
        if self._closed:
            raise SaverClosed("shot saver is closed")
        self._loop = asyncio.get_running_loop()
        retention = self.settings.retention
        if retention is not None and self._retention is None:
            self._retention = self._loop.create_task(self._retention_loop())
        self._pump()

    async def __aenter__(self) -> ShotService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose(graceful=exc_info[0] is None)

    async def drain(self) -> None:
        """Wait until every accepted shot has its final status."""
        while self._tasks:
            await self._idle.wait()

    async def aclose(self, graceful: bool = True, timeout: float | None = None) -> None:
        """Stop taking requests; finish (graceful) or abandon what is left, then release all.

        Abandoned shots still get their final ``error`` status ("saver closed").
        With ``timeout``, a graceful close turns hard after that many seconds.
        """
        if self._closed:
            return
        self.desk.closed = True
        if graceful and self._loop is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self.drain()
            except TimeoutError:
                logger.warning(
                    "shot saver: %d shots unfinished after %gs, abandoning",
                    len(self._tasks),
                    timeout,
                )
        self._abandon = True
        now = self.clock.time()
        for task in list(self._queue.remove_waiting()):
            task.reason = "saver closed before the shot started"
            task.state = ShotStatus.error
            self._final(task, None, now)
        running = list(self._running.values())
        for t in running:
            t.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        self._running.clear()
        # A try cancelled before its first step never ran its own ending.
        for task in [t for t in self._tasks.values() if t.state is ShotStatus.saving]:
            self._queue.done(task, now, "saver closed before the shot started", retryable=False)
            self._final(task, None, now)
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
            self._retention = None
        await self._finish_callbacks(graceful, timeout)
        for camera in self.desk.cameras.values():
            try:
                await camera.aclose()
            except Exception:
                logger.exception("camera %r did not close cleanly", camera.name)
        self._workers.shutdown(wait=False, cancel_futures=True)
        if self._writer is not None:
            self._writer.close()
        self._io.shutdown(wait=True)

    @property
    def closed(self) -> bool:
        return self.desk.closed

    # -- requests ----------------------------------------------------------

    def submit(
        self,
        camera: str | Camera,
        *,
        dt: When = None,
        file_name: str | None = None,
        folder: str | None = None,
        root: str | Path | None = None,
        fields: Mapping[str, Any] | None = None,
        callback: StatusCallback | None = None,
        task_guid: str | None = None,
        figures: bool = False,
        deliver: Deliver | None = None,
        on_exists: OnExists | None = None,
    ) -> tuple[str, Path | None]:
        """Queue a shot; returns ``(task_guid, path)`` at once (path None with ``deliver``).

        ``file_name``/``folder`` are templates (folder relative to ``root``, the
        screenshots folder by default). ``fields`` fill ``{rule}``, ``{source}``,
        ``{event}`` and travel with the emitted events. With ``deliver``, the
        bytes go to ``deliver(bytes)`` instead of a file, or a ``ShotFailed``.
        ``on_exists`` (default: the camera's, else the settings') says what a
        taken name leads to. Raises ``QueueFull``, ``Throttled``,
        ``UnknownCamera``, ``SaverClosed``, or ``TemplateError``/``PathEscapeError``
        for a bad name; nothing is queued then.

        On the loop's thread (or before ``start``); the ``in_queue`` status is
        told before this returns.
        """
        task = self.prepare(
            camera,
            dt=dt,
            file_name=file_name,
            folder=folder,
            root=root,
            fields=fields,
            callback=callback,
            task_guid=task_guid,
            figures=figures,
            deliver=deliver,
            on_exists=on_exists,
        )
        self.accept((task,))
        return task.guid, task.path

    def prepare(
        self,
        camera: str | Camera,
        *,
        dt: When = None,
        file_name: str | None = None,
        folder: str | None = None,
        root: str | Path | None = None,
        fields: Mapping[str, Any] | None = None,
        callback: StatusCallback | None = None,
        task_guid: str | None = None,
        figures: bool = False,
        deliver: Deliver | None = None,
        on_exists: OnExists | None = None,
    ) -> ShotTask:
        """Decide a request (``submit``'s arguments) without queuing it: the desk's part.

        It reads and changes only the desk (and the clock), nothing the loop
        owns; ``ShotSaver`` calls it from its callers' threads, one at a time,
        and gives the tasks to ``accept`` on the loop.
        """
        request = ShotRequest(
            dt=to_epoch(dt),
            file_name=file_name,
            folder=folder,
            root=root,
            fields=fields,
            figures=figures,
            to_file=deliver is None,
            task_guid=task_guid,
            on_exists=on_exists,
        )
        context = _Context(
            callback or self.default_callback,
            deliver,
            dict(fields) if fields else {},
            request.dt,
        )
        return self.desk.decide(camera, request, self.clock.time(), context)

    def accept(self, tasks: Iterable[ShotTask]) -> None:
        """Queue prepared tasks: tell each ``in_queue``, then start what may start (loop only)."""
        now: float | None = None
        for task in tasks:
            self._tasks[task.guid] = task
            self._idle.clear()
            if task.camera not in self._gated:
                self._configure(self.desk.cameras[task.camera])
            self._status(task, ShotStatus.in_queue, task.created)
            if task.clash:  # its name is taken (on_exists: error): no try
                task.state = ShotStatus.error
                if now is None:
                    now = self.clock.time()
                self._final(task, None, now)
            else:
                self._queue.add(task)
        self._pump()

    async def shoot(self, camera: str | Camera, **kwargs: Any) -> StatusUpdate:
        """Submit and wait for the final status (``success`` or ``error``, with reason)."""
        done: asyncio.Future[StatusUpdate] = asyncio.get_running_loop().create_future()
        user = kwargs.pop("callback", None)

        def track(guid: str, state: str) -> None:
            if user is not None:
                user(guid, state)
            if isinstance(state, StatusUpdate) and state.final and not done.done():
                done.set_result(state)

        self.submit(camera, callback=track, **kwargs)
        return await done

    async def grab(self, camera: str | Camera, *, dt: When = None, figures: bool = False) -> bytes:
        """The image bytes of one shot, no file; raises ``ShotFailed``."""
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def deliver(result: bytes | ShotFailed) -> None:
            if done.done():
                return
            if isinstance(result, ShotFailed):
                done.set_exception(result)
            else:
                done.set_result(result)

        self.submit(camera, dt=dt, figures=figures, deliver=deliver)
        return await done

    def task(self, guid: str) -> ShotTask | None:
        """A shot not finished yet, by guid."""
        return self._tasks.get(guid)

    def poke(self) -> None:
        """Look at the queue again now (after a manual clock moved, for instance)."""
        self._pump()

    # -- the machinery -----------------------------------------------------

    def _pump_soon(self) -> None:
        """Pump once in the next loop iteration: all tries that end together share it.

        Nothing waiting, nothing to start: no pump (the loop goes idle sooner, and
        a caller woken by the final status gets the GIL sooner).
        """
        if self._wake_pending or not self._queue.waiting:
            return
        self._wake_pending = True
        assert self._loop is not None
        self._loop.call_soon(self._on_wake)

    def _on_wake(self) -> None:
        self._wake_pending = False
        self._pump()

    def _pump(self) -> None:
        """Start what may start, then arm the timer for what waits."""
        loop = self._loop
        if loop is None or self._closed:
            return
        queue = self._queue
        queue.pool_size = self.settings.pool_size
        now = self.clock.time()
        starts = queue.take(now)
        wake = queue.next_wake(now)
        for task in starts:
            self._running[task.guid] = loop.create_task(self._attempt(task))
        if wake is not None:
            if self._timer is not None and self._timer_at <= wake and not self._timer.cancelled():
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = wake
            self._timer = loop.call_later(max(0.0, wake - now), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    async def _attempt(self, task: ShotTask) -> None:
        camera = self.desk.cameras[task.camera]
        self._status(task, ShotStatus.saving, self.clock.time())
        ctx: _Context = task.context
        request = CaptureRequest(
            camera=task.camera,
            task=task.guid,
            time=ctx.requested,
            live=task.live,
            figures=task.figures,
            timeout=task.timeout,
        )
        error: str | None = None
        retryable = True
        data: bytes | None = None
        early: tuple[ShotFile, asyncio.Handle] | None = None
        try:
            capture = camera.capture(request)
            if type(capture) is types.CoroutineType:
                # The camera's first step runs here: a camera that answers at once
                # (a frame from memory) needs no timer, no early file, no loop turn.
                try:
                    waiting = capture.send(None)
                except StopIteration as answered:
                    data = answered.value
                else:
                    early = self._create_early(task)
                    data = await self._wait(camera, request, _resume(capture, waiting))
            else:
                early = self._create_early(task)
                data = await self._wait(camera, request, capture)
            if self.settings.verify == "pillow" or not isinstance(data, bytes):
                data = await self._check(camera, data)
            else:  # the markers check, here: no coroutine for what cannot wait
                problem = jpeg_problem(data)
                if problem is not None:
                    raise CaptureError(f"camera {camera.name!r}: {problem}")
            if task.path is not None:
                if early is not None:
                    early[1].cancel()  # not created yet: the write creates it
                target = early[0] if early is not None else self._file(task)
                if not self._write_here(target, data):
                    await self._write(target, data)
        except CaptureError as exc:
            error, retryable, data = exc.reason, exc.retryable, None
        except asyncio.CancelledError:
            error, retryable, data = "saver closed during the shot", False, None
        except Exception as exc:
            logger.exception("camera %r failed unexpectedly on task %s", task.camera, task.guid)
            error, data = f"{type(exc).__name__}: {exc}", None
        finally:
            if early is not None:
                early[1].cancel()
                self._quietly(early[0].discard)  # nothing once written
            self._running.pop(task.guid, None)
        self._finish(task, error, retryable, data)

    @staticmethod
    def _file(task: ShotTask) -> ShotFile:
        assert task.path is not None
        return ShotFile(task.path, task.guid, replace=task.replace)

    def _create_early(self, task: ShotTask) -> tuple[ShotFile, asyncio.Handle] | None:
        """Create the shot's file (not named yet) while the camera works, if the disk is quick.

        Creating the file is the costliest of its four system calls, and costs
        more still on a thread that has slept while the camera worked (measured:
        100-170 us after 50 ms asleep, against 15-40 us). Called only once the
        camera's first step has waited, and scheduled with ``call_soon``, it is
        on neither side of the camera's time; a camera that answers at once
        never gets here, and its write creates the file.
        """
        loop = self._loop
        if task.path is None or loop is None or not self.inline_writes.quick(time.monotonic()):
            return None
        target = self._file(task)
        return target, loop.call_soon(self._create_now, target)

    def _create_now(self, target: ShotFile) -> None:
        started = time.monotonic()
        try:
            target.create()
        except OSError:
            pass  # the write tries again and reports why
        finally:
            self._timed(started, target.final)

    def _timed(self, started: float, path: str) -> None:
        """A file system call made on the loop's thread took this long: tell the policy."""
        now = time.monotonic()
        pause = self.inline_writes.took(now - started, now)
        if pause is not None:
            logger.warning(
                "writing %s took %.0f ms; shot files go to worker threads for %g s",
                path,
                1000 * (now - started),
                pause,
            )

    @staticmethod
    def _quietly(fn: Callable[[], None]) -> None:
        try:
            fn()
        except OSError as exc:
            logger.warning("cannot remove a temporary shot file: %s", exc)

    @staticmethod
    async def _wait(camera: Camera, request: CaptureRequest, capture: Awaitable[Any]) -> Any:
        """The rest of a capture, within the try's timeout."""
        try:
            async with asyncio.timeout(request.timeout):
                return await capture
        except TimeoutError:
            raise CaptureError(
                f"camera {camera.name!r} gave no shot within {request.timeout:g} s"
            ) from None

    async def _check(self, camera: Camera, data: Any) -> bytes:
        """The camera's answer if it is a complete JPEG; else why not, as a ``CaptureError``."""
        if not isinstance(data, bytes):
            raise CaptureError(f"camera {camera.name!r} returned {type(data).__name__}, not bytes")
        if self.settings.verify == "pillow":
            problem = await asyncio.get_running_loop().run_in_executor(
                self._io, jpeg_problem_thorough, data
            )
        else:
            problem = jpeg_problem(data)
        if problem is not None:
            raise CaptureError(f"camera {camera.name!r}: {problem}")
        return data

    def _write_here(self, target: ShotFile, data: bytes) -> bool:
        """Finish the file on the loop's thread if it is small and the disk quick (``InlineWrites``
        says why); False: it goes to a worker (``_write``)."""
        started = time.monotonic()
        if not self.inline_writes.inline(len(data), started):
            return False
        try:
            target.commit(data)
        except OSError as exc:
            raise _write_error(target.final, exc) from None
        finally:
            self._timed(started, target.final)
        return True

    async def _write(self, target: ShotFile, data: bytes) -> None:
        """Finish the file on a worker thread.

        A shutdown mid-write waits for it (it is quick), so a file is either
        complete or absent.
        """
        path = target.final
        if self._writer is None:
            self._writer = ShotWriter(asyncio.get_running_loop(), min(4, self.settings.pool_size))
        future = self._writer.write(target, data)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await future
            if not future.done() or future.exception() is not None:
                raise
        except OSError as exc:
            raise _write_error(path, exc) from None

    def _finish(
        self, task: ShotTask, error: str | None, retryable: bool, data: bytes | None
    ) -> None:
        now = self.clock.time()
        outcome, at = self._queue.done(task, now, error, retryable and not self._abandon)
        if outcome is Outcome.retry:
            self.stats.retries += 1
            logger.info(
                "shot %s from %r: try %d of %d failed (%s); retrying in %.2f s",
                task.guid,
                task.camera,
                task.tries,
                task.max_tries,
                error,
                at - now,
            )
        else:
            self._final(task, data, now)
        if not self._closed:
            self._pump_soon()

    def _final(self, task: ShotTask, data: bytes | None, now: float) -> None:
        ctx: _Context = task.context
        self._tasks.pop(task.guid, None)
        self.desk.release(task)
        if not self._tasks:
            self._idle.set()
        ok = task.state is ShotStatus.success
        if ok:
            self.stats.succeeded += 1
            logger.debug("shot %s from %r saved: %s", task.guid, task.camera, task.path)
        else:
            self.stats.failed += 1
            logger.warning("shot %s from %r failed: %s", task.guid, task.camera, task.reason)
        self._status(task, task.state, now)
        if ctx.deliver is not None:
            result: Any = data if ok else ShotFailed(task.guid, task.camera, task.reason)
            self._call(ctx.deliver, result)
        if self.emit is discard:
            return
        path = str(task.path) if task.path is not None else None
        facts = {
            "time": now,
            "camera": task.camera,
            "task": task.guid,
            "path": path,
            "extra": ctx.fields,
            "reason": task.reason,
            "tries": task.tries,
            "shot_time": task.shot_time,
            "live": task.live,
        }
        try:
            self.emit((ShotSaved if ok else ShotErrored).from_facts(facts))
        except Exception:
            logger.exception("emitting the event of shot %s failed", task.guid)

    def _status(self, task: ShotTask, state: ShotStatus, now: float) -> None:
        if self.emit is not discard and state in _PROGRESS:
            path = str(task.path) if task.path is not None else None
            try:
                if state is ShotStatus.in_queue:
                    event: ShotQueued | ShotSaving = ShotQueued(
                        time=now,
                        camera=task.camera,
                        task=task.guid,
                        path=path,
                        extra=task.context.fields,
                    )
                else:
                    event = ShotSaving(
                        time=now,
                        camera=task.camera,
                        task=task.guid,
                        path=path,
                        extra=task.context.fields,
                        tries=task.tries,
                    )
                self.emit(event)
            except Exception:
                logger.exception("emitting the progress of shot %s failed", task.guid)
        callback = task.context.callback
        if callback is None:
            return
        update = StatusUpdate(
            state,
            task=task.guid,
            camera=task.camera,
            path=task.path,
            try_number=task.tries,
            # error: why it failed; saving on a retry: why the previous try failed
            reason=task.reason if state is not ShotStatus.success else "",
            time=now,
        )
        self._call(callback, task.guid, update)

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a user callback; an exception is logged with its traceback and counted."""
        try:
            result = fn(*args)
        except Exception:
            self.stats.callback_errors += 1
            logger.exception("shot callback %r raised", fn)
            return
        if result is not None and inspect.isawaitable(result) and self._loop is not None:
            runner = asyncio.ensure_future(result, loop=self._loop)
            self._callbacks.add(runner)
            runner.add_done_callback(self._callback_done)

    def _callback_done(self, runner: asyncio.Future[Any]) -> None:
        self._callbacks.discard(runner)
        if not runner.cancelled() and runner.exception() is not None:
            self.stats.callback_errors += 1
            logger.error("shot callback raised", exc_info=runner.exception())

    async def _finish_callbacks(self, graceful: bool, timeout: float | None) -> None:
        """Let coroutine callbacks of final statuses end (graceful), else cancel them."""
        pending = set(self._callbacks)
        if pending and graceful:
            _, pending = await asyncio.wait(pending, timeout=5.0 if timeout is None else timeout)
            if pending:
                logger.warning(
                    "shot saver: %d status callbacks still running; cancelled", len(pending)
                )
        for runner in pending:
            runner.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    # -- retention ---------------------------------------------------------

    async def _retention_loop(self) -> None:
        from engine.shots.retention import apply_retention

        loop = asyncio.get_running_loop()
        while True:
            config = self.settings.retention
            if config is None:
                return
            try:
                report = await loop.run_in_executor(
                    self._io, apply_retention, self.settings.folder, config, self.clock.time()
                )
                if report.deleted:
                    logger.info("retention: %s", report.summary())
            except Exception:
                logger.exception("retention of %s failed", self.settings.folder)
            await asyncio.sleep(config.interval)

    def load(self) -> dict[str, tuple[int, int]]:
        """Per camera with unfinished shots: (waiting, in flight), for status and metrics."""
        out: dict[str, tuple[int, int]] = {}
        for task in self._tasks.values():  # loop-only: the loop's thread reads it
            waiting, in_flight = out.get(task.camera, (0, 0))
            if task.state is ShotStatus.saving:
                in_flight += 1
            else:
                waiting += 1
            out[task.camera] = (waiting, in_flight)
        return out

    def snapshot(self) -> ShotStats:
        """Counters, with the desk's and the queue's live numbers filled in."""
        self.stats.submitted = self.desk.admitted
        self.stats.rejected = self.desk.rejected
        self.stats.in_flight = self._queue.in_flight
        self.stats.waiting = self._queue.waiting
        self.stats.max_in_flight = self._queue.max_in_flight
        return self.stats
