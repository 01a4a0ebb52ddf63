"""The shot saver inside an asyncio loop: bounded queue, workers, retries, events.

``ShotService`` is the adapter around the pure ``ShotQueue``: it asks the queue
what to start whenever something changes (a request, a finished try, one
timer for the next retry or delayed start), runs each try as a task, and turns
outcomes into status callbacks and engine events. There is no polling: a shot
is reported the moment its backend returns and its file is renamed into place.

All methods except the coroutines and ``submit`` are called on the loop's
thread. ``submit`` may also be called from other threads (the synchronous
``ShotSaver`` does): it decides at once, under a lock, what the seed's callers
need back (the task id and path, or a refusal), and even claims a free slot;
the loop is then woken once for every request that arrived since its last
wake, not once per request, and announces them (``in_queue``) before it starts
any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import random as _random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.core.clock import SYSTEM_CLOCK, Clock
from engine.events import Emit, ShotErrored, ShotQueued, ShotSaved, ShotSaving, discard
from engine.shots.backends import build_camera
from engine.shots.backends.base import Camera, CaptureError, CaptureRequest
from engine.shots.backends.python import PythonCamera
from engine.shots.config import PATH_FIELDS, ShotsConfig
from engine.shots.frame_cache import FrameCache
from engine.shots.jpeg import jpeg_problem, jpeg_problem_thorough
from engine.shots.paths import TempFile, moment, render_path, unique_path, zone
from engine.shots.policy import InlineWrites, RetryPolicy, plan_time
from engine.shots.queue import Outcome, ShotQueue, ShotTask
from engine.shots.status import (
    SaverClosed,
    ShotFailed,
    ShotStatus,
    StatusUpdate,
    UnknownCamera,
)

logger = logging.getLogger(__name__)

StatusCallback = Callable[[str, str], Any]
Deliver = Callable[[Any], Any]
When = datetime | float | int | None
_MAX_THREADS = 64


@functools.lru_cache(maxsize=64)
def _folder(folder: str) -> Path:
    return Path(folder).expanduser()


def _root(folder: str) -> Path:
    """The screenshots folder as an absolute path.

    A relative folder follows the working directory at each request; an absolute
    one costs no system call (``getcwd`` lets other threads take the GIL).
    """
    path = _folder(folder)
    return path if path.is_absolute() else Path(os.getcwd(), path)


_GUIDS = _random.Random()  # its own generator: seeding the random module does not repeat ids
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_GUIDS.seed)


def new_guid() -> str:
    """A random task id (32 hex digits, as ``uuid4().hex``).

    A generator seeded from the OS (again after ``fork``) rather than
    ``os.urandom`` on each request: a task id must be unique, not secret, and
    that system call lets other threads take the GIL mid-request.
    """
    return f"{_GUIDS.getrandbits(128):032x}"


def to_epoch(dt: When) -> float | None:
    """A requested moment as epoch seconds; naive datetimes are local time (as in the seed)."""
    if dt is None:
        return None
    if isinstance(dt, datetime):
        return dt.timestamp()
    if isinstance(dt, int | float) and not isinstance(dt, bool):
        return float(dt)
    raise TypeError(f"dt must be a datetime or epoch seconds, not {type(dt).__name__}")


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
        self._queue = ShotQueue(
            pool_size=s.pool_size,
            queue_size=s.queue_size,
            retry=self._retry_policy(),
            random=random if random is not None else _random.random,
        )
        threads = min(s.pool_size, _MAX_THREADS)
        # Backend work that blocks (sync camera functions) and disk writes, apart:
        # a hung camera function must never stall the writing of other shots.
        self._workers = ThreadPoolExecutor(threads, thread_name_prefix="cuecap-camera")
        self._io = ThreadPoolExecutor(threads, thread_name_prefix="cuecap-shot-io")
        self.inline_writes = InlineWrites()  # where files are written; tunable
        # Guards what ``submit`` touches from other threads: cameras, the queue,
        # the tasks, reserved paths, counters and the hand-over lists below.
        # Reentrant: ``submit`` registers a camera object it is given.
        self._lock = threading.RLock()
        self._cameras: dict[str, Camera] = {}
        for name, camera in (cameras or {}).items():
            self.add_camera(name, camera)
        self._announce: list[ShotTask] = []  # accepted, in_queue not told yet
        self._starting: list[ShotTask] = []  # given a slot off the loop, not started yet
        self._wake_pending = False
        self._loop_thread: int | None = None
        self._tasks: dict[str, ShotTask] = {}
        self._reserved: set[Path] = set()
        self._seq: dict[str, int] = {}
        self._running: set[asyncio.Task[None]] = set()
        # Coroutine callbacks in progress: held here, since the loop keeps only weak references.
        self._callbacks: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
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
            camera = build_camera(
                name, camera, frame_cache=self.frame_cache, executor=self._workers, clock=self.clock
            )
        elif isinstance(camera, PythonCamera) and camera.executor is None:
            camera.executor = self._workers
        with self._lock:
            existing = self._cameras.get(name)
            if existing is not None and existing is not camera:
                raise ValueError(f"a different camera named {name!r} is already registered")
            self._cameras[name] = camera
            cfg = camera.config
            gate = self._queue.gate(name)
            gate.max_in_flight = cfg.max_in_flight
            gate.min_interval = cfg.min_interval
            gate.throttle = cfg.throttle
        return camera

    @property
    def cameras(self) -> Mapping[str, Camera]:
        return self._cameras

    def _camera(self, camera: str | Camera) -> Camera:
        if isinstance(camera, str):
            found = self._cameras.get(camera)
            if found is None:
                known = ", ".join(sorted(self._cameras)) or "none configured"
                raise UnknownCamera(f"no camera named {camera!r} (known: {known})")
            return found
        if hasattr(camera, "capture") and hasattr(camera, "name"):
            return self._cameras.get(camera.name) or self.add_camera(camera.name, camera)
        raise TypeError(
            f"camera must be a camera name or a camera object, not {type(camera).__name__}"
        )

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Bind to the running loop and start what was queued before."""
        if self._closed:
            raise SaverClosed("shot saver is closed")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
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
        with self._lock:
            self._closing = True
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
        reason = "saver closed before the shot started"
        with self._lock:
            announce, self._announce = self._announce, []
            # Given a slot by another thread but not started: they never ran.
            unstarted, self._starting = self._starting, []
            for task in unstarted:
                self._queue.done(task, now, reason, retryable=False)
                task.tries -= 1
            unstarted.extend(self._queue.remove_waiting())
        for task in announce:
            self._status(task, ShotStatus.in_queue, task.created)
        for task in sorted(unstarted, key=lambda t: t.order):
            task.reason = reason
            task.state = ShotStatus.error
            self._final(task, None, now)
        running = list(self._running)
        for t in running:
            t.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
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
        for camera in self._cameras.values():
            try:
                await camera.aclose()
            except Exception:
                logger.exception("camera %r did not close cleanly", camera.name)
        self._workers.shutdown(wait=False, cancel_futures=True)
        self._io.shutdown(wait=True)

    @property
    def closed(self) -> bool:
        return self._closing

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
    ) -> tuple[str, Path | None]:
        """Queue a shot; returns ``(task_guid, path)`` at once (path None with ``deliver``).

        ``file_name``/``folder`` are templates (folder relative to ``root``, the
        screenshots folder by default). ``fields`` fill ``{rule}``, ``{source}``,
        ``{event}`` and travel with the emitted events. With ``deliver``, the
        bytes go to ``deliver(bytes)`` instead of a file, or a ``ShotFailed``.
        Raises ``QueueFull``, ``Throttled``, ``UnknownCamera``, ``SaverClosed``,
        or ``TemplateError``/``PathEscapeError`` for a bad name; nothing is queued then.

        On the loop's thread (or before ``start``) the ``in_queue`` status is
        told before this returns. From another thread it is told on the loop,
        still before the shot's first ``saving``.
        """
        loop = self._loop
        off_loop = loop is not None and threading.get_ident() != self._loop_thread
        with self._lock:
            if self._closing:
                raise SaverClosed("shot saver is closing; no new shots")
            queue = self._queue
            queue.pool_size = self.settings.pool_size
            queue.queue_size = self.settings.queue_size
            try:
                cam = self._camera(camera)
                task = self._new_task(
                    cam, dt, file_name, folder, root, fields, figures, deliver, task_guid
                )
                task.context = _Context(
                    callback or self.default_callback,
                    deliver,
                    dict(fields) if fields else {},
                    to_epoch(dt),
                )
                queue.add(task, task.created)
            except Exception:
                self.stats.rejected += 1
                raise
            self._seq[cam.name] = task.seq
            if task.path is not None:
                self._reserved.add(task.path)
            self._tasks[task.guid] = task
            self._idle.clear()
            self.stats.submitted += 1
            self._announce.append(task)
            wake = False
            if off_loop and not self._closed:
                # Claim a free slot now, so a full queue is refused as it would be on
                # the loop; the loop starts the task when it wakes.
                self._starting.extend(queue.take(task.created))
                wake = not self._wake_pending
                self._wake_pending = True
        if not off_loop:
            self._pump()
        elif wake:
            assert loop is not None
            # Closed meanwhile: closing already gave this task its final status.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_wake)
        return task.guid, task.path

    def _new_task(
        self,
        cam: Camera,
        dt: When,
        file_name: str | None,
        folder: str | None,
        root: str | Path | None,
        fields: Mapping[str, Any] | None,
        figures: bool,
        deliver: Deliver | None,
        task_guid: str | None,
    ) -> ShotTask:
        s, cfg = self.settings, cam.config
        now = self.clock.time()
        shot_time, live, not_before = plan_time(to_epoch(dt), now, s.buffer_ts, cfg.live_window)
        guid = task_guid or new_guid()
        if guid in self._tasks:
            raise ValueError(f"task guid {guid!r} is already in use")
        seq = self._seq.get(cam.name, 0) + 1
        path: Path | None = None
        if deliver is None:
            values: dict[str, object] = {
                k: v for k, v in (fields or {}).items() if k in PATH_FIELDS
            }
            values.update(
                camera=cam.name,
                channel=cam.name,
                server=cfg.server or self.server,
                seq=seq,
                task=guid,
                figures="figures" if figures else "",
            )
            base = _root(str(root if root is not None else s.folder))
            sub = (
                folder
                if folder is not None
                else (cfg.folder if cfg.folder is not None else s.subfolder)
            )
            name = file_name or cfg.file_name or s.file_name
            when = moment(shot_time, zone(s.timezone))
            path = unique_path(render_path(base, sub, name, values, when), self._reserved)
        return ShotTask(
            guid=guid,
            camera=cam.name,
            created=now,
            not_before=not_before,
            shot_time=shot_time,
            live=live,
            path=path,
            max_tries=cfg.tries or s.max_tries,
            timeout=cfg.timeout or s.timeout_sec,
            figures=figures,
            seq=seq,
        )

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
        with self._lock:
            if self._wake_pending or not self._queue.waiting:
                return
            self._wake_pending = True
        assert self._loop is not None
        self._loop.call_soon(self._on_wake)

    def _on_wake(self) -> None:
        """Requests arrived from other threads, or tries ended (one pump for all of them)."""
        with self._lock:
            self._wake_pending = False
        self._pump()

    def _pump(self) -> None:
        """Tell ``in_queue`` for new requests, then start what may start, then arm the timer."""
        loop = self._loop
        with self._lock:
            announce, self._announce = self._announce, []
            if loop is None or self._closed:
                starts: list[ShotTask] = []
                wake = None
            else:
                queue = self._queue
                queue.pool_size = self.settings.pool_size
                queue.queue_size = self.settings.queue_size
                now = self.clock.time()
                starts, self._starting = self._starting, []
                starts.extend(queue.take(now))
                wake = queue.next_wake(now)
        for task in announce:
            self._status(task, ShotStatus.in_queue, task.created)
        if loop is None or not (starts or wake is not None):
            return
        for task in starts:
            runner = loop.create_task(self._attempt(task))
            self._running.add(runner)
            runner.add_done_callback(self._running.discard)
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
        camera = self._cameras[task.camera]
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
        early = self._create_early(task)
        try:
            data = await self._capture(camera, request)
            if task.path is not None:
                if early is not None:
                    early[1].cancel()  # not created yet: the write creates it
                target = early[0] if early is not None else TempFile(task.path, task.guid)
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
        self._finish(task, error, retryable, data)

    def _create_early(self, task: ShotTask) -> tuple[TempFile, asyncio.Handle] | None:
        """Create the shot's temporary file while the camera works, if the disk is quick.

        Creating the file is the costliest of its four system calls, and costs
        more still on a thread that has slept while the camera worked (measured:
        100-170 us after 50 ms asleep, against 15-40 us). Scheduled with ``call_soon``, it runs once the
        capture waits for its camera, so it is on neither side of the camera's
        time; with a camera that answers at once, the write cancels it and
        creates the file itself.
        """
        loop = self._loop
        if task.path is None or loop is None or not self.inline_writes.quick(time.monotonic()):
            return None
        target = TempFile(task.path, task.guid)
        return target, loop.call_soon(self._create_now, target)

    def _create_now(self, target: TempFile) -> None:
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

    async def _capture(self, camera: Camera, request: CaptureRequest) -> bytes:
        try:
            async with asyncio.timeout(request.timeout):
                data = await camera.capture(request)
        except TimeoutError:
            raise CaptureError(
                f"camera {camera.name!r} gave no shot within {request.timeout:g} s"
            ) from None
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

    async def _write(self, target: TempFile, data: bytes) -> None:
        """Finish the file: in place when small and the disk is quick, else on a worker.

        ``InlineWrites`` says why. A shutdown mid-write in a worker thread waits
        for it (it is quick), so a file is either complete or absent.
        """
        path = target.final
        started = time.monotonic()
        if self.inline_writes.inline(len(data), started):
            try:
                target.commit(data)
            except OSError as exc:
                raise CaptureError(f"cannot write {path}: {exc.strerror or exc}") from None
            finally:
                self._timed(started, path)
            return
        future = asyncio.get_running_loop().run_in_executor(self._io, target.commit, data)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await future
            if not future.done() or future.exception() is not None:
                raise
        except OSError as exc:
            raise CaptureError(f"cannot write {path}: {exc.strerror or exc}") from None

    def _finish(
        self, task: ShotTask, error: str | None, retryable: bool, data: bytes | None
    ) -> None:
        now = self.clock.time()
        with self._lock:
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
        with self._lock:
            self._tasks.pop(task.guid, None)
            if task.path is not None:
                self._reserved.discard(task.path)
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

    def snapshot(self) -> ShotStats:
        """Counters, with the queue's live numbers filled in."""
        self.stats.in_flight = self._queue.in_flight
        self.stats.waiting = self._queue.waiting
        self.stats.max_in_flight = self._queue.max_in_flight
        return self.stats
