"""Numbers for people to read in reports and log lines (no pydantic: the CLI's help stays fast)."""

from __future__ import annotations


def format_bytes(n: int) -> str:
    """A size for people: ``512 B``, ``1.5 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover
