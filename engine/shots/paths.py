"""Where a shot goes: templates rendered to a path that cannot leave its folder.

Pure: no file system access and no clock. The path is decided when the shot is
requested (``save`` returns it at once), from the requested moment, never from
when the file happens to be written. Whether a name is taken (a file is there,
or another shot still being saved will put one there) is a question the caller
answers (``taken``), so planning is tested from tables, without a disk.
A taken name gets `` (2)``, `` (3)``... before its extension, unless the
settings say ``on_exists: replace`` or ``error``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from engine.core.templates import Template, safe_component, safe_join
from engine.shots.config import PATH_FIELDS, OnExists

TEMP_SUFFIX = ".part"
# Numbered names tried for one shot before it fails for want of a free name. The
# caller passes where to start (the number it gave last time for that name), so
# a rule that always writes "gate.jpg" checks one or two names per shot, not
# thousands after weeks.
MAX_CANDIDATES = 1000
_DRIVE = re.compile(r"[A-Za-z]:")


@lru_cache(maxsize=256)
def path_template(text: str) -> Template:
    """A parsed file-name or folder template (cached: rules reuse the same few)."""
    return Template(text, PATH_FIELDS)


def zone(name: str | None) -> tzinfo | None:
    """The time zone for dates in names; None is the local zone."""
    return ZoneInfo(name) if name else None


def moment(when: float, tz: tzinfo | None, aware: bool = True) -> datetime:
    """Epoch seconds as a datetime in ``tz`` (local when None; naive unless ``aware``)."""
    if tz is not None:
        return datetime.fromtimestamp(when, tz)
    local = datetime.fromtimestamp(when)
    return local.astimezone() if aware else local


@lru_cache(maxsize=256)
def _zoned(text: str) -> bool:
    """Whether a template prints the zone (``%z``, ``%Z``): only then must local time be aware."""
    return "%z" in text or "%Z" in text


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


def numbered(path: Path, n: int) -> Path:
    """``stem (n).ext`` beside ``path``; ``n`` 1 is ``path`` itself."""
    if n <= 1:
        return path
    return path.with_name(f"{path.stem} ({n}){path.suffix}")


@dataclass(frozen=True, slots=True)
class PlannedPath:
    """Where a shot goes: ``path``, which is ``wanted`` numbered ``number`` (1: as is).

    ``clash``: ``wanted`` is taken and ``on_exists`` is ``error``, or no free
    number was found; the shot must fail.
    """

    path: Path
    wanted: Path
    number: int = 1
    clash: bool = False


def plan_path(
    *,
    root: str | os.PathLike[str],
    folder: str,
    file_name: str,
    values: Mapping[str, object],
    when: float,
    tz: tzinfo | None,
    on_exists: OnExists,
    taken: Callable[[str], bool],
    start: Mapping[str, int] | None = None,
) -> PlannedPath:
    """The path of a shot taken at ``when`` (epoch seconds), dates in zone ``tz``.

    ``taken(path)`` says whether a name is in use (a file, or a shot in flight);
    it is not asked at all with ``on_exists: replace``. With ``unique`` the
    name itself or, if taken, ``stem (n).ext`` for the first free ``n`` from
    ``start[name]`` (2 when absent: where the last shot of that name stopped),
    at most ``MAX_CANDIDATES`` numbers. Raises ``TemplateError`` or
    ``PathEscapeError`` for a name that cannot be made.
    """
    aware = _zoned(file_name) or _zoned(folder)
    path = render_path(root, folder, file_name, values, moment(when, tz, aware))
    text = os.fspath(path)
    if on_exists is OnExists.replace or not taken(text):
        return PlannedPath(path, path)
    if on_exists is OnExists.error:
        return PlannedPath(path, path, clash=True)
    first = max(2, start.get(text, 2)) if start else 2
    for n in range(first, first + MAX_CANDIDATES):
        candidate = numbered(path, n)
        if not taken(os.fspath(candidate)):
            return PlannedPath(candidate, path, n)
    return PlannedPath(path, path, clash=True)


def temp_path(final: Path, task: str) -> Path:
    """The hidden name a shot may be written under before it gets ``final``."""
    return final.with_name(temp_name(final.name, task))


def temp_name(name: str, task: str) -> str:
    return f".{name}.{task[:12]}{TEMP_SUFFIX}"


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)
