"""Where a shot goes: templates rendered to a path that cannot leave its folder.

The path is decided when the shot is requested (``save`` returns it at once),
from the requested moment, never from when the file happens to be written.
Two waiting shots never share a path: the second gets `` (2)`` before its
extension. A shot is written under a hidden temporary name beside its final
name and renamed only once complete and checked, so a reader or a crash never
sees half a JPEG under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from engine.core.templates import Template, safe_join
from engine.shots.config import PATH_FIELDS

TEMP_SUFFIX = ".part"
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
    return safe_join(root, f"{sub}/{name}" if sub else name)


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
    return final.with_name(f".{final.name}.{task[:12]}{TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def write_atomic(final: Path, data: bytes, task: str) -> None:
    """Write ``data`` to ``final`` through a temporary name; on failure nothing is left.

    Runs on a worker thread (disk I/O stays off the event loop). The folder is
    created only when missing: creating the file is the costly part already.
    """
    tmp = temp_path(final, task)
    try:
        fd = os.open(tmp, _CREATE, 0o666)
    except FileNotFoundError:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, _CREATE, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
