"""Settings given from Python, checked by their models: errors in cuecap's words.

Rule files get their model errors as ``RuleFileError`` at file:line:column
from the loader. Settings handed to a class from Python (``ShotSaver(pool_size=...)``,
camera mappings) are checked by the same models; this translates pydantic's
error into an ``InvalidArgument`` that names each bad field, so no caller
needs to import pydantic to handle it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pydantic import ValidationError

from engine.errors import InvalidArgument


class InvalidSettings(InvalidArgument):
    """Settings given from Python that their model refuses; the message names each field."""


@contextlib.contextmanager
def settings_checked(what: str) -> Iterator[None]:
    """Raise ``InvalidSettings`` ("what: field: problem; ...") for a model's refusal."""
    try:
        yield
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
            for error in exc.errors()
        )
        raise InvalidSettings(f"{what}: {problems}") from None
