"""Child programs that a timeout or a cancellation can end, with everything they started.

A program started by a rule or a command camera often starts others (a shell
script running ffmpeg, ffmpeg's own helpers). Killing only the direct child
leaves those running, holding the camera or the output pipe. So children run
in their own process group (session) and are killed as a group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import TypedDict

GROUPS = sys.platform != "win32"


class SpawnOptions(TypedDict):
    start_new_session: bool


def spawn_options() -> SpawnOptions:
    """Keyword arguments for ``asyncio.create_subprocess_exec``: a process group of its own."""
    return {"start_new_session": GROUPS}


async def kill_tree(process: asyncio.subprocess.Process) -> None:
    """Kill ``process`` and its process group, and reap it; quiet if it already ended."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if GROUPS:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
    with contextlib.suppress(ProcessLookupError):
        await process.wait()
