"""Where a shot goes: templates rendered to a path that cannot leave its folder.

The path is decided when the shot is requested (``save`` returns it at once),
from the requested moment, never from when the file happens to be written.
Two waiting shots never share a path: the second gets `` (2)`` before its
extension. A shot is written under a hidden temporary name beside its final
name and renamed only once complete and checked, so a reader or a crash never
sees half a JPEG under the final name.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from engine.core.templates import Template, safe_component, safe_join
from engine.shots.config import PATH_FIELDS

TEMP_SUFFIX = ".part"
_DRIVE = re.compile(r"[A-Za-z]:")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)


@lru_cache(maxsize=256)
def path_template(text: str) -> Template:
    """A parsed file-name or folder template (cached: rules reuse the same few)."""
    return Template(text, PATH_FIELDS)


def zone(name: str | None) -> tzinfo | None:
    """The time zone for dates in names; None is the local zone."""
    return ZoneInfo(name) if name else None


def moment(when: float, tz: tzinfo | None) -> datetime:
    """Epoch seconds as an aware datetime in ``tz`` (local when None)."""
    return (
        datetime.fromtimestamp(when, tz)
        if tz is not None
        else datetime.fromtimestamp(when).astimezone()
    )


def render_path(
    root: str | os.PathLike[str],
    folder: str,
    file_name: str,
    values: Mapping[str, object],
    when: datetime,
) -> Path:
    """``root / folder / file_name`` with templates filled in; never outside ``root``."""
    name = path_template(file_name).render(values, when)
    sub = path_template(folder).render(values, when) if folder else ""
    if "/" in name or "\\" in name or name in ("", ".", "..") or _DRIVE.match(name):
        return safe_join(root, f"{sub}/{name}" if sub else name)
    # One plain component (the usual case): what safe_join would make of it, with
    # the folder's checks and path parsing done once per folder, not per shot.
    return _folder_path(os.fspath(root), sub) / safe_component(name)


@lru_cache(maxsize=256)
def _folder_path(root: str, sub: str) -> Path:
    return safe_join(root, f"{sub}/_").parent if sub else Path(root)


def unique_path(path: Path, taken: set[Path] | frozenset[Path]) -> Path:
    """``path``, or ``stem (2).ext``, ``stem (3).ext``... the first not in ``taken``."""
    if path not in taken:
        return path
    n = 2
    while True:
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
        if candidate not in taken:
            return candidate
        n += 1


def temp_path(final: Path, task: str) -> Path:
    """The hidden name a shot is written under before it is renamed to ``final``."""
    return final.with_name(_temp_name(final.name, task))


def _temp_name(name: str, task: str) -> str:
    return f".{name}.{task[:12]}{TEMP_SUFFIX}"


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


class TempFile:
    """A shot's file while it is made: a hidden temporary, renamed once complete.

    ``create`` may come early (the saver creates the file while the camera
    works, so the costliest system call is off the path from the camera's
    answer to ``success``); ``commit`` writes, closes and renames, creating
    first if needed; ``discard`` removes what an unfinished shot left. Four
    system calls for a folder that exists: the folder is created only when
    creating the file says it is missing, so no stat or mkdir per shot. No
    fsync: the rename protects readers and a crash of the program; surviving a
    power cut would cost a disk flush (milliseconds) per shot. Plain strings,
    not pathlib: its parsing costs more than the system calls. The caller
    picks the thread (``InlineWrites``) and calls one method at a time.
    """

    __slots__ = ("done", "fd", "final", "tmp")

    def __init__(self, final: str | os.PathLike[str], task: str) -> None:
        self.final = os.fspath(final)
        cut = max(self.final.rfind("/"), self.final.rfind(os.sep)) + 1
        self.tmp = self.final[:cut] + _temp_name(self.final[cut:], task)
        self.fd: int | None = None
        self.done = False  # committed or discarded

    def create(self) -> None:
        """Create the temporary (and its folder when missing)."""
        try:
            self.fd = os.open(self.tmp, _CREATE, 0o666)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self.tmp) or ".", exist_ok=True)
            self.fd = os.open(self.tmp, _CREATE, 0o666)

    def commit(self, data: bytes) -> None:
        """``data`` under the final name, complete; on failure nothing is left."""
        if self.fd is None:
            self.create()
        fd, self.fd = self.fd, None
        assert fd is not None
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(self.tmp, self.final)
        except BaseException:
            self.discard()
            raise
        self.done = True

    def discard(self) -> None:
        """Close and remove the temporary; nothing once committed."""
        if self.done:
            return
        self.done = True
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def write_atomic(final: str | os.PathLike[str], data: bytes, task: str) -> None:
    """Write ``data`` to ``final`` through a temporary name; on failure nothing is left."""
    TempFile(final, task).commit(data)
