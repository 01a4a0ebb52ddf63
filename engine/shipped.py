"""The files that come with cuecap besides its code: the default rules and the examples.

A clone runs them in place (``rules/``, ``examples/``); a wheel carries them
inside the package (``engine/_shipped/``, see pyproject.toml), so that
``pip install cuecap`` users get them too and ``cuecap init`` can copy them.
One lookup serves both: the packaged copy first, then the source tree.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import CuecapError, InvalidArgument

PACKAGE = Path(__file__).resolve().parent
NAMES = ("rules", "examples")


class NotShipped(CuecapError, FileNotFoundError):
    """This installation lacks the shipped files (a broken or stripped install)."""


def shipped(name: str) -> Path:
    """The folder ``rules`` or ``examples`` as installed with this copy of cuecap."""
    if name not in NAMES:
        raise InvalidArgument(f"{name!r} is not shipped (shipped: {', '.join(NAMES)})")
    for candidate in (PACKAGE / "_shipped" / name, PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise NotShipped(f"this cuecap installation has no {name}/ folder (looked in {PACKAGE})")
