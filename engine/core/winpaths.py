"""Folders written for Windows, refused with a clear error on every other system.

Scripts moved from the Windows machine the original ``ShotSaver`` ran on
carry folders such as ``r"D:\\DSSL\\shots"``. On Linux that string is a legal
*relative* name: the saver would quietly make one folder called
``D:\\DSSL\\shots`` in the current directory and the user would look for the
shots in the wrong place for days. No translation is right for every script
(which mount is ``D:``? is ``\\\\nas\\shots`` mounted at all?), so the value is
refused at once, naming the argument, what it would have become and what to
write instead. ``ShotSaver`` checks its arguments (``check_path``); the rule
loader checks the folders of rule files (``problem_text``), at file:line:column.
Pure: the system and the current folder are passed in.
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


def problem_text(text: str, *, what: str = "folder", cwd: str = "", example: str = "shots") -> str:
    """Why ``text`` is no path here and what to write instead, or ``""`` when it is one.

    ``what``: "folder" or "file"; ``cwd``: where a relative name would land ("" leaves
    it out); ``example``: the last part of the folders suggested instead.
    """
    problem = windows_path_problem(text)
    if not problem:
        return ""
    drive, rest = ntpath.splitdrive(text)
    if drive:
        instead = (
            f"give a folder of this machine, e.g. '/srv/{example}' or '~/{example}' "
            f"(a Windows share is reached where it is mounted, e.g. '/mnt/{example}')"
        )
    else:
        instead = f"write it with '/': {rest.replace(chr(92), '/')!r}"
    landing = f" in {cwd!r}" if cwd else ""
    return (
        f"is {problem}, and this system is not Windows: it would make one {what} named "
        f"{as_written(text)}{landing}; {instead}"
    )


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
    tail = problem_text(text, what=what, cwd=cwd)
    if tail:
        raise InvalidArgument(f"{where}: {argument}={as_written(text)} {tail}")


def as_written(text: str) -> str:
    """The value as a script writes it: ``r'D:\\shots'`` rather than ``'D:\\\\shots'``."""
    if "\\" in text and "'" not in text and not text.endswith("\\"):
        return f"r'{text}'"
    return repr(text)
