"""Errors of the log tools, each carrying the exit code the command line should use.

The tools are called from scripts; a script must be able to tell "your input
is bad" (2, like a usage error) from "this machine lacks an optional
library or encoder" (3) without parsing messages.
"""

from __future__ import annotations

from engine.errors import CuecapError


class LogToolError(CuecapError):
    """Bad input or an impossible request; the message says what and where."""

    exit_code = 2


class MissingDependency(LogToolError):
    """An optional library (PyAV, matplotlib) or an encoder is not installed."""

    exit_code = 3
