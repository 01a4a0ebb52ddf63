"""Rule-file errors: each one says where (file:line:column) and what is wrong.

A rule file is read whole before anything starts, and every problem found is
collected rather than raised at the first one, so a user fixes a file in one
pass instead of one error per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.errors import CuecapError


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a rule file; ``line`` and ``column`` are 1-based."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class RuleError:
    """One problem in a rule file."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class RuleFileError(CuecapError, ValueError):
    """Rule files that cannot be used; ``errors`` lists every problem found, in file order."""

    def __init__(self, errors: Iterable[RuleError]) -> None:
        self.errors = sorted(
            errors, key=lambda e: (e.location.file, e.location.line or 0, e.location.column or 0)
        )
        super().__init__("\n".join(str(e) for e in self.errors))
