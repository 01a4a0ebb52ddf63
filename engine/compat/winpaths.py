"""Folders written for Windows, refused with a clear error on every other system.

Scripts moved from the Windows machine the original ``ShotSaver`` ran on
carry folders such as ``r"D:\\DSSL\\shots"``. On Linux that string is a legal
*relative* name: the saver would quietly make one folder called
``D:\\DSSL\\shots`` in the current directory and the user would look for the
shots in the wrong place for days. No translation is right for every script
(which mount is ``D:``? is ``\\\\nas\\shots`` mounted at all?), so the value is
refused at once, naming the argument, what it would have become and what to
write instead. Pure: the system and the current folder are passed in.
"""

from __future__ import annotations

import ntpath
import os

from engine.errors import InvalidArgument

ON_WINDOWS = os.name == "nt"


def windows_path_problem(value: str) -> str:
    """What makes ``value`` a Windows path (a drive, a share, a backslash), or ``""``."""
    drive, _ = ntpath.splitdrive(value)
    if drive.startswith(("\\\\", "//")):
        return f"a Windows network share ({drive})"
    if len(drive) == 2 and drive[1] == ":":
        return f"a Windows path (drive {drive})"
    if "\\" in value:
        return "a Windows path ('\\' separates folders only on Windows)"
    return ""


def check_path(
    value: str | os.PathLike[str] | None,
    argument: str,
    *,
    where: str = "ShotSaver",
    what: str = "folder",
    cwd: str = ".",
    windows: bool = ON_WINDOWS,
) -> None:
    """Raise ``InvalidArgument`` if ``value`` (given as ``argument``) only means a path on Windows.

    ``what``: "folder" or "file", for the message; ``cwd``: where a relative
    name would land, for the message too.
    """
    if value is None or windows:
        return
    text = os.fspath(value)
    problem = windows_path_problem(text)
    if not problem:
        return
    drive, rest = ntpath.splitdrive(text)
    if drive:
        instead = (
            "give a folder of this machine, e.g. '/srv/shots' or '~/shots' "
            "(a Windows share is reached where it is mounted, e.g. '/mnt/shots')"
        )
    else:
        instead = f"write it with '/': {rest.replace(chr(92), '/')!r}"
    shown = _as_written(text)
    raise InvalidArgument(
        f"{where}: {argument}={shown} is {problem}, and this system is not Windows: "
        f"it would make one {what} named {shown} in {cwd!r}; {instead}"
    )


def _as_written(text: str) -> str:
    """The value as a script writes it: ``r'D:\\shots'`` rather than ``'D:\\\\shots'``."""
    if "\\" in text and "'" not in text and not text.endswith("\\"):
        return f"r'{text}'"
    return repr(text)
