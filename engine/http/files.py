"""Downloads that cannot leave their folder: recordings and shots only.

A download names a file relative to the recordings folder or the shots
folder. The name is refused if it is absolute, climbs with ``..`` or holds a
NUL; what is left is resolved (symbolic links followed) and must still be a
regular file inside the folder, so a link planted inside pointing out is
refused too.
"""

from __future__ import annotations

from pathlib import Path

from engine.core.templates import PathEscapeError
from engine.errors import NoSuchFile


def inside(root: Path, relative: str) -> Path:
    """The file ``relative`` names under ``root``; ``PathEscapeError`` or ``NoSuchFile`` (a ``FileNotFoundError``)."""
    rel = relative.replace("\\", "/")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if rel.startswith("/") or "\0" in rel or any(p == ".." for p in parts) or not parts:
        raise PathEscapeError(f"{relative!r} is not a file inside {root.name}/")
    base = root.resolve()
    path = base.joinpath(*parts).resolve()
    if not path.is_relative_to(base):
        raise PathEscapeError(f"{relative!r} leads out of {root.name}/")
    if not path.is_file():
        raise NoSuchFile(relative)
    return path
