"""Deciding a shot request at once: its id, its moment, its path, or a refusal.

``save()`` and ``submit()`` return ``(task_guid, path)`` before the shot is
taken; this is where that answer comes from. The desk keeps what requests must
know about each other: task ids in use, names reserved by shots in flight (so
two shots never get the same file), the per-camera counter behind ``{seq}``,
the ``min_interval`` of cameras that skip, and the bound on unfinished shots.

It does no I/O and reads no clock: ``now`` is passed in, and so are the two
questions it asks the system, whether a name is taken on disk (``exists``) and
the working directory a relative folder follows (``cwd``).

Threads: one admitting caller at a time (the event loop's thread inside the
engine; callers in turn under ``ShotSaver``'s lock). The loop ends shots while
callers admit: ``release`` only adds to ``finished`` (the loop is its only
writer) and removes one entry from each of two sets, single steps under the
GIL, so an admitting caller sees a shot either unfinished (counted, its name
taken) or gone, never half of it.
"""

from __future__ import annotations

import functools
import os
import random as _random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidArgument, UnsupportedType
from engine.shots.backends.base import Camera
from engine.shots.config import PATH_FIELDS, OnExists, ShotsConfig
from engine.shots.paths import MAX_CANDIDATES, plan_path, zone
from engine.shots.policy import plan_time
from engine.shots.queue import ShotTask
from engine.shots.status import QueueFull, SaverClosed, Throttled, UnknownCamera

_GUIDS = _random.Random()  # its own generator: seeding the random module does not repeat ids
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_GUIDS.seed)
_MAX_HINTS = 4096  # names remembered with the last number they were given


def new_guid() -> str:
    """A random task id (32 hex digits, as ``uuid4().hex``).

    A generator seeded from the OS (again after ``fork``) rather than
    ``os.urandom`` on each request: a task id must be unique, not secret, and
    that system call lets other threads take the GIL mid-request.
    """
    return f"{_GUIDS.getrandbits(128):032x}"


@functools.lru_cache(maxsize=64)
def _expand(folder: str) -> str:
    return os.path.expanduser(folder)


@dataclass(slots=True)
class ShotRequest:
    """What a caller asks for; ``to_file`` false: the bytes go to a callback, no path."""

    dt: float | None = None
    file_name: str | None = None
    folder: str | None = None
    root: str | os.PathLike[str] | None = None
    fields: Mapping[str, Any] | None = None
    figures: bool = False
    to_file: bool = True
    task_guid: str | None = None
    on_exists: OnExists | None = None


class ShotDesk:
    """Admits or refuses shot requests; remembers what the next requests must know."""

    def __init__(
        self,
        settings: ShotsConfig,
        *,
        server: str,
        exists: Callable[[str], bool] = os.path.lexists,
        cwd: Callable[[], str] = os.getcwd,
        guid: Callable[[], str] = new_guid,
    ) -> None:
        self.settings = settings
        self.server = server
        self._exists = exists
        self._cwd = cwd
        self._guid = guid
        self.cameras: dict[str, Camera] = {}
        self.closed = False
        self.admitted = 0  # written by the admitting side only
        self.rejected = 0  # written by the admitting side only
        self.finished = 0  # written by the loop only (release)
        self._guids: set[str] = set()
        self._reserved: set[str] = set()
        self._seq: dict[str, int] = {}
        self._last_admit: dict[str, float] = {}
        self._hints: dict[str, int] = {}

    # -- cameras -----------------------------------------------------------

    def register(self, name: str, camera: Camera) -> Camera:
        existing = self.cameras.get(name)
        if existing is not None and existing is not camera:
            raise InvalidArgument(f"a different camera named {name!r} is already registered")
        self.cameras[name] = camera
        return camera

    def camera(self, camera: str | Camera) -> Camera:
        """The camera of that name, or the camera object given (registered on first use)."""
        if isinstance(camera, str):
            found = self.cameras.get(camera)
            if found is None:
                known = ", ".join(sorted(self.cameras)) or "none configured"
                raise UnknownCamera(f"no camera named {camera!r} (known: {known})")
            return found
        if hasattr(camera, "capture") and hasattr(camera, "name"):
            return self.cameras.get(camera.name) or self.register(camera.name, camera)
        raise UnsupportedType(
            f"camera must be a camera name or a camera object, not {type(camera).__name__}"
        )

    # -- requests ----------------------------------------------------------

    @property
    def unfinished(self) -> int:
        return self.admitted - self.finished

    def taken(self, path: str) -> bool:
        """A shot in flight will write ``path``, or a file is there."""
        return path in self._reserved or self._exists(path)

    def decide(
        self, camera: str | Camera, request: ShotRequest, now: float, context: Any = None
    ) -> ShotTask:
        """The task for ``request``, admitted; or raise why not (nothing is kept then).

        Raises ``SaverClosed``, ``UnknownCamera``, ``QueueFull``, ``Throttled``,
        ``ValueError`` for a task guid in use, ``TemplateError``/``PathEscapeError``
        for a name that cannot be made. A shot whose name is taken under
        ``on_exists: error`` is admitted with ``clash`` set: it fails without a try.
        """
        try:
            task = self._decide(camera, request, now, context)
        except Exception:
            self.rejected += 1
            raise
        self.admitted += 1
        return task

    def _decide(
        self, camera: str | Camera, request: ShotRequest, now: float, context: Any
    ) -> ShotTask:
        if self.closed:
            raise SaverClosed("shot saver is closing; no new shots")
        cam = self.camera(camera)
        s, cfg = self.settings, cam.config
        guid = request.task_guid or self._guid()
        if guid in self._guids:
            raise InvalidArgument(f"task guid {guid!r} is already in use")
        # Refusals that cost nothing come first: a flood of requests is refused
        # without rendering a name or asking the disk about it.
        unfinished = self.admitted - self.finished
        if unfinished >= s.pool_size + s.queue_size:
            raise QueueFull(
                f"shot queue is full ({unfinished} shots unfinished: pool_size={s.pool_size} "
                f"+ queue_size={s.queue_size}); refused a shot from camera {cam.name!r}"
            )
        skip = cfg.throttle == "skip" and cfg.min_interval > 0
        if skip:
            last = self._last_admit.get(cam.name)
            if last is not None and now - last < cfg.min_interval:
                raise Throttled(
                    f"camera {cam.name!r} took a shot {now - last:.3f} s ago "
                    f"(min_interval={cfg.min_interval:g} s); request skipped"
                )
        shot_time, live, not_before = plan_time(request.dt, now, s.buffer_ts, cfg.live_window)
        seq = self._seq.get(cam.name, 0) + 1
        planned = None
        on_exists = OnExists.unique
        if request.to_file:
            fields = request.fields
            values: dict[str, object] = (
                {k: v for k, v in fields.items() if k in PATH_FIELDS} if fields else {}
            )
            values["camera"] = values["channel"] = cam.name
            values["server"] = cfg.server or self.server
            values["seq"] = seq
            values["task"] = guid
            values["figures"] = "figures" if request.figures else ""
            base = _expand(os.fspath(request.root if request.root is not None else s.folder))
            if not os.path.isabs(base):
                base = os.path.join(self._cwd(), base)
            if request.folder is not None:
                sub = request.folder
            else:
                sub = cfg.folder if cfg.folder is not None else s.subfolder
            on_exists = request.on_exists or cfg.on_exists or s.on_exists
            planned = plan_path(
                root=base,
                folder=sub,
                file_name=request.file_name or cfg.file_name or s.file_name,
                values=values,
                when=shot_time,
                tz=zone(s.timezone),
                on_exists=on_exists,
                taken=self.taken,
                start=self._hints,
            )
        if skip:
            self._last_admit[cam.name] = now
        # Admitted: from here on nothing raises.
        self._seq[cam.name] = seq
        self._guids.add(guid)
        task = ShotTask(
            guid=guid,
            camera=cam.name,
            created=now,
            not_before=not_before,
            shot_time=shot_time,
            live=live,
            path=planned.path if planned is not None else None,
            max_tries=cfg.tries or s.max_tries,
            timeout=cfg.timeout or s.timeout_sec,
            figures=request.figures,
            seq=seq,
            context=context,
            replace=on_exists is OnExists.replace,
        )
        if planned is not None:
            if planned.clash:
                task.clash = True
                wanted = os.fspath(planned.wanted)
                if on_exists is OnExists.unique:
                    task.reason = f"no free name for {wanted} after {MAX_CANDIDATES} numbers"
                elif wanted in self._reserved:
                    task.reason = f"another shot is saving to {wanted} (on_exists: error)"
                else:
                    task.reason = f"{wanted} exists (on_exists: error)"
            else:
                self._reserved.add(os.fspath(planned.path))
            if planned.number > 1:
                if len(self._hints) >= _MAX_HINTS:
                    self._hints.clear()
                self._hints[os.fspath(planned.wanted)] = planned.number + 1
        return task

    def release(self, task: ShotTask) -> None:
        """The task has its final status: its id and name are free again (loop only)."""
        self._guids.discard(task.guid)
        if task.path is not None and not task.clash:
            self._reserved.discard(os.fspath(task.path))
        self.finished += 1
