"""Whether a process is gone, read from /proc (tests that check nothing is left running)."""

from __future__ import annotations

from pathlib import Path


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")
