"""Path templates: strftime plus named fields, safe by construction.

Templates come from configuration, so they must not reach Python objects
(``{channel.__class__}``) and must not write outside their root folder. A
template is parsed once, when the rule file is loaded; unknown fields,
attribute or index lookups and ``!r`` conversions are refused there, with the
column where they stand. Field values are made filesystem-safe before they are
inserted, and strftime applies only to the template's own literal text, so a
``%`` in a camera name is never read as a date directive.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.errors import CuecapError

_FORMATTER = string.Formatter()
# Characters that break paths on some system (the seed's users hit all of them).
_UNSAFE = re.compile(r'[|\\/:*?"<>\x00-\x1f\x7f]')
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class TemplateError(CuecapError, ValueError):
    """A template that cannot be used; ``column`` is 1-based within the template."""

    def __init__(self, message: str, template: str, column: int | None = None) -> None:
        self.template = template
        self.column = column
        self.reason = message
        where = f" at column {column}" if column is not None else ""
        super().__init__(f"template {template!r}{where}: {message}")


class PathEscapeError(CuecapError, ValueError):
    """A rendered path would leave its root folder."""


def safe_component(value: str, replacement: str = "_") -> str:
    """One path component: unsafe characters replaced, never empty, never ``.``/``..``."""
    cleaned = _UNSAFE.sub(replacement, value).strip().rstrip(". ")
    if cleaned in ("", ".", ".."):
        return replacement
    return cleaned


@dataclass(frozen=True, slots=True)
class _Part:
    literal: str
    field: str | None
    spec: str


class Template:
    """A parsed path template.

    ``fields`` is the set of names the template may use; anything else is an
    error at parse time. ``render`` then never fails on a missing name.
    """

    __slots__ = ("_parts", "fields", "text")

    def __init__(self, text: str, fields: Iterable[str]) -> None:
        self.text = text
        allowed = frozenset(fields)
        parts: list[_Part] = []
        column = 1
        try:
            parsed = list(_FORMATTER.parse(text))
        except ValueError as exc:
            raise TemplateError(str(exc), text) from None
        used: set[str] = set()
        for literal, field, spec, conversion in parsed:
            column += len(literal)
            if field is not None:
                if field == "" or field.isdigit():
                    raise TemplateError(
                        "positional fields are not allowed; name the field, e.g. {camera}",
                        text,
                        column,
                    )
                if not _IDENTIFIER.match(field):
                    raise TemplateError(
                        f"{{{field}}}: attribute and index lookups are not allowed", text, column
                    )
                if field not in allowed:
                    raise TemplateError(
                        f"unknown field {{{field}}}; known fields: {', '.join(sorted(allowed))}",
                        text,
                        column,
                    )
                if conversion is not None:
                    raise TemplateError(f"conversion !{conversion} is not allowed", text, column)
                if spec and "{" in spec:
                    raise TemplateError(
                        "nested fields in a format spec are not allowed", text, column
                    )
                used.add(field)
                column += len(field) + 2 + (len(spec) + 1 if spec else 0)
            parts.append(_Part(literal, field, spec or ""))
        self._parts = tuple(parts)
        self.fields = frozenset(used)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    def render(self, values: Mapping[str, object], when: datetime) -> str:
        """The template with fields filled in (made safe) and strftime applied to its text."""
        out: list[str] = []
        for part in self._parts:
            if part.literal:
                out.append(when.strftime(part.literal))
            if part.field is not None:
                value = values.get(part.field, "")
                try:
                    text = format(value, part.spec)
                except (ValueError, TypeError) as exc:
                    raise TemplateError(
                        f"{{{part.field}:{part.spec}}} cannot format {value!r}: {exc}", self.text
                    ) from None
                out.append(safe_component(text))
        return "".join(out)


def safe_join(root: str | os.PathLike[str], relative: str) -> Path:
    """``root / relative``, refusing absolute paths and anything that climbs out of root.

    Each component is cleaned with ``safe_component``; ``..`` is refused rather
    than cleaned, because a template that climbs is a configuration mistake.
    """
    root_path = Path(root)
    rel = relative.replace("\\", "/")
    if rel.startswith("/") or re.match(r"[A-Za-z]:", rel):
        raise PathEscapeError(f"{relative!r} is absolute; it must stay inside {root_path}")
    components = [c for c in rel.split("/") if c not in ("", ".")]
    if any(c == ".." for c in components):
        raise PathEscapeError(f"{relative!r} climbs out of {root_path} with '..'")
    if not components:
        raise PathEscapeError(f"{relative!r} names no file inside {root_path}")
    return root_path.joinpath(*(safe_component(c) for c in components))


def render(text: str, values: Mapping[str, Any]) -> str:
    """Fill a checked ``str.format`` text (a log line, a message, a command argument).

    A value that does not fit its format spec (``{count:%H}``) is shown as is:
    a message that goes out slightly plain beats one that does not go out.
    """
    try:
        return text.format_map(values)
    except (ValueError, TypeError):
        plain = {k: (v if isinstance(v, datetime) else str(v)) for k, v in values.items()}
        try:
            return text.format_map(plain)
        except (ValueError, TypeError):
            return text
