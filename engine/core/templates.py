"""Path templates: strftime plus named fields, safe by construction.

Templates come from configuration, so they must not reach Python objects
(``{channel.__class__}``) and must not write outside their root folder. A
template is parsed once, when the rule file is loaded; unknown fields,
attribute or index lookups and ``!r`` conversions are refused there, with the
column where they stand. Field values are made filesystem-safe before they are
inserted, and strftime applies only to the template's own literal text, so a
``%`` in a camera name is never read as a date directive.

Format specs are checked at parse time too, against the kind of value the
field holds (``{seq:03d}`` is fine, ``{camera:03d}`` or ``{seq:zz}`` is not),
with width at most ``MAX_WIDTH`` and precision at most ``MAX_PRECISION``: a
spec is outside input and ``{seq:.999999999f}`` would take gigabytes per
render. A whole template is at most ``MAX_TEMPLATE`` characters. Literal text
may hold no NUL and no lone trailing ``%``; a date directive whose text holds
a path separator (``%D`` is ``12/01/26``) has it replaced, so dates never
make folders. ``check_path`` adds what a path
template needs: no backslash, not absolute, no drive, no ``..``, and no fixed
component over the file-system limit.
"""

from __future__ import annotations

import enum
import os
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from engine.errors import CuecapError

_FORMATTER = string.Formatter()
# Characters that break paths on some system (the seed's users hit all of them).
_UNSAFE = re.compile(r'[|\\/:*?"<>\x00-\x1f\x7f]')
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Names Windows keeps for devices, whatever the extension ("nul.jpg" is the device too).
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{p}{i}" for p in ("COM", "LPT") for i in (*"123456789", "\u00b9", "\u00b2", "\u00b3")}
)

MAX_TEMPLATE = 8192  # characters of a whole template (a log line, an argument, a path)
MAX_WIDTH = 255  # a format spec's width: a file name's length at most
MAX_PRECISION = 20  # a format spec's precision: more digits than a double holds
MAX_TIME_SPEC = 64  # characters of a date field's strftime spec
MAX_NAME_BYTES = 255  # one path component, as the common file systems allow


class FieldKind(enum.Enum):
    """What a template field holds, which decides the format specs it takes."""

    TEXT = "text"
    INT = "integer"
    FLOAT = "number"
    TIME = "date"


# Kinds of the fields the project's templates use; any other name is text.
FIELD_KINDS: dict[str, FieldKind] = {
    "seq": FieldKind.INT,
    "count": FieldKind.INT,
    "part": FieldKind.INT,
    "index": FieldKind.INT,
    "epoch_ms": FieldKind.INT,
    "epoch": FieldKind.FLOAT,
    "time": FieldKind.TIME,
    "utc": FieldKind.TIME,
}
_SAMPLES: dict[FieldKind, object] = {
    FieldKind.TEXT: "text",
    FieldKind.INT: 7,
    FieldKind.FLOAT: 7.5,
    FieldKind.TIME: datetime(2000, 1, 2, 3, 4, 5, 6),
}
# Python's format-spec mini-language, one group per part.
_SPEC = re.compile(
    r"(?:(?P<fill>.)?(?P<align>[<>=^]))?(?P<sign>[-+ ])?(?P<z>z)?(?P<alt>\#)?(?P<zero>0)?"
    r"(?P<width>\d+)?(?P<grouping>[,_])?(?:\.(?P<precision>\d+))?(?P<type>[a-zA-Z%])?\Z",
    re.S,
)
_TYPES = {
    FieldKind.TEXT: "s",
    FieldKind.INT: "bcdoxXneEfFgG%",
    FieldKind.FLOAT: "neEfFgG%",
}
# A strftime directive: %Y, %-d (glibc's no padding), %%.
_DIRECTIVE = re.compile(r"%[-_0^#]?[A-Za-z]|%%")
# Directives whose text never holds a path separator, rendered with the text around them.
_PLAIN_DIRECTIVES = frozenset("aAbBdfGHIjmMpSuUVwWyYzZ%eklsPCgnt")


class TemplateError(CuecapError, ValueError):
    """A template that cannot be used; ``column`` is 1-based within the template."""

    def __init__(self, message: str, template: str, column: int | None = None) -> None:
        self.template = template
        self.column = column
        self.reason = message
        where = f" at column {column}" if column is not None else ""
        shown = repr(template) if len(template) <= 80 else repr(template[:77]) + "..."
        super().__init__(f"template {shown}{where}: {message}")


class PathEscapeError(CuecapError, ValueError):
    """A rendered path would leave its root folder."""


def safe_component(value: str, replacement: str = "_") -> str:
    """One path component: unsafe characters replaced, never empty, never ``.``/``..``,
    never a name Windows keeps for a device (``NUL``, ``com1.jpg`` get a ``_`` in front)."""
    cleaned = _UNSAFE.sub(replacement, value).strip().rstrip(". ")
    if cleaned in ("", ".", ".."):
        return replacement
    stem = cleaned.partition(".")[0]
    if len(stem) <= 8 and stem.rstrip(" ").upper() in _RESERVED:  # the longest is CONOUT$
        return replacement + cleaned
    return cleaned


def _kind(fields: Iterable[str] | Mapping[str, FieldKind], name: str) -> FieldKind:
    if isinstance(fields, Mapping):
        kind = fields.get(name)
        if isinstance(kind, FieldKind):
            return kind
    return FIELD_KINDS.get(name, FieldKind.TEXT)


def check_spec(name: str, spec: str, kind: FieldKind) -> str | None:
    """Why ``{name:spec}`` cannot format a value of ``kind`` (None when it can)."""
    if not spec:
        return None
    if kind is FieldKind.TIME:
        if len(spec) > MAX_TIME_SPEC:
            return f"a date format of at most {MAX_TIME_SPEC} characters, not {len(spec)}"
        return _literal_problem(spec)
    match = _SPEC.match(spec)
    if match is None:
        return f"{spec!r} is not a format spec"
    # Compared as text first: a spec of thousands of digits is no number Python will parse.
    width, precision = match.group("width"), match.group("precision")
    if width is not None and (len(width) > 6 or int(width) > MAX_WIDTH):
        return f"width {_digits(width)} is more than {MAX_WIDTH}"
    if precision is not None and (len(precision) > 6 or int(precision) > MAX_PRECISION):
        return f"precision {_digits(precision)} is more than {MAX_PRECISION}"
    kind_type = match.group("type")
    if kind_type is not None and kind_type not in _TYPES[kind]:
        allowed = ", ".join(_TYPES[kind])
        return f"{{{name}}} holds {kind.value}s: format type {kind_type!r} does not apply ({allowed} do)"
    try:
        format(_SAMPLES[kind], spec)
    except (ValueError, TypeError) as exc:
        return f"{{{name}}} holds {kind.value}s: {exc}"
    return None


def _digits(text: str) -> str:
    return text if len(text) <= 12 else f"{text[:6]}... ({len(text)} digits)"


def _literal_problem(text: str) -> str | None:
    """What is wrong with a template's literal text for strftime and paths (None: nothing)."""
    if "\x00" in text:
        return "a NUL character is not allowed"
    stripped = text.replace("%%", "")
    if stripped.endswith("%"):
        return "a lone '%' at the end (write %% for a percent sign)"
    return None


@dataclass(frozen=True, slots=True)
class _Piece:
    """Literal text for one strftime call, or a directive whose text may hold a separator."""

    text: str
    separate: bool


def _pieces(literal: str) -> tuple[_Piece, ...]:
    if "%" not in literal:
        return (_Piece(literal, False),) if literal else ()
    out: list[_Piece] = []
    plain = ""
    last = 0
    for match in _DIRECTIVE.finditer(literal):
        directive = match.group()
        if directive[-1] in _PLAIN_DIRECTIVES:
            continue
        plain += literal[last : match.start()]
        if plain:
            out.append(_Piece(plain, False))
            plain = ""
        out.append(_Piece(directive, True))
        last = match.end()
    plain += literal[last:]
    if plain:
        out.append(_Piece(plain, False))
    return tuple(out)


def _strftime(pieces: tuple[_Piece, ...], when: datetime) -> str:
    return "".join(
        when.strftime(p.text).replace("/", "-").replace("\\", "-")
        if p.separate
        else when.strftime(p.text)
        for p in pieces
    )


@dataclass(frozen=True, slots=True)
class _Part:
    literal: tuple[_Piece, ...]
    field: str | None
    spec: str
    plain: str | None  # the literal when one strftime call renders it (the usual case)


class Template:
    """A parsed path template.

    ``fields`` is the set of names the template may use; anything else is an
    error at parse time. ``render`` then never fails on a missing name.
    """

    __slots__ = ("_parts", "fields", "text")

    def __init__(self, text: str, fields: Iterable[str] | Mapping[str, FieldKind]) -> None:
        self.text = text
        if len(text) > MAX_TEMPLATE:
            raise TemplateError(f"longer than {MAX_TEMPLATE} characters ({len(text)})", text)
        allowed = frozenset(fields)
        parts: list[_Part] = []
        column = 1
        try:
            parsed = list(_FORMATTER.parse(text))
        except ValueError as exc:
            raise TemplateError(str(exc), text) from None
        used: set[str] = set()
        for literal, field, spec, conversion in parsed:
            problem = _literal_problem(literal)
            if problem is not None:
                raise TemplateError(problem, text, column)
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
                problem = check_spec(field, spec or "", _kind(fields, field))
                if problem is not None:
                    raise TemplateError(problem, text, column)
                used.add(field)
                column += len(field) + 2 + (len(spec) + 1 if spec else 0)
            pieces = _pieces(literal)
            plain = pieces[0].text if len(pieces) == 1 and not pieces[0].separate else None
            parts.append(_Part(pieces, field, spec or "", plain))
        self._parts = tuple(parts)
        self.fields = frozenset(used)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    def render(self, values: Mapping[str, object], when: datetime) -> str:
        """The template with fields filled in (made safe) and strftime applied to its text."""
        out: list[str] = []
        for part in self._parts:
            if part.plain is not None:
                out.append(when.strftime(part.plain))
            elif part.literal:
                out.append(_strftime(part.literal, when))
            if part.field is not None:
                value = values.get(part.field)
                if value is None or value == "":  # not known for this render: nothing to format
                    out.append(safe_component(""))
                    continue
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


def check_path(template: Template, what: str, *, allow_empty: bool = False) -> None:
    """Refuse a path template that could leave its root or cannot name a file.

    Checked on the template's text and on a sample rendering (fields empty):
    a backslash, an absolute path, a drive, a ``..`` component, a fixed
    component longer than ``MAX_NAME_BYTES`` bytes, or (unless ``allow_empty``)
    nothing at all. Raises ``TemplateError`` naming the column when it can.
    """
    text = template.text
    if "\\" in text:
        raise TemplateError(
            "a backslash is not allowed in a path; separate folders with /",
            text,
            text.index("\\") + 1,
        )
    fixed = template.render({}, _SAMPLES[FieldKind.TIME])  # type: ignore[arg-type]
    if fixed.startswith("/") or re.match(r"[A-Za-z]:", fixed):
        raise TemplateError(f"{what} is absolute; it must stay inside its folder", text, 1)
    if not fixed.strip(" /"):
        if allow_empty and not fixed.strip():
            return
        raise TemplateError(f"{what} names no file", text)
    for component in PurePosixPath(fixed).parts:
        if component == "..":
            raise TemplateError(f"{what} climbs out of its folder with '..'", text)
        size = len(component.encode())
        if size > MAX_NAME_BYTES:
            raise TemplateError(
                f"{what} has a name of {size} bytes without its fields; "
                f"file systems allow {MAX_NAME_BYTES}",
                text,
            )
