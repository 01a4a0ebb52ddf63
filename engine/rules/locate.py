"""Pydantic validation errors turned into file:line:column messages.

A pydantic error location mixes data keys with names pydantic adds for
unions (``tagged-union[...]``, the tag value, ``list[...]``). The data path is
recovered by matching the location against the data itself, skipping what is
not a key or index there, so any model, including the other parts' configs,
maps back to the YAML position without knowing its shape. The model classes
are walked only to suggest the keys that are allowed where an unknown one
stands.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from engine.rules.errors import RuleError
from engine.rules.yamlpos import Path, Positions


def data_path(data: object, loc: Sequence[str | int]) -> Path:
    """The longest path through ``data`` that consumes elements of ``loc`` in order."""
    best: Path = ()

    def search(node: object, i: int, path: Path) -> None:
        nonlocal best
        if len(path) > len(best):
            best = path
        if i >= len(loc):
            return
        element = loc[i]
        # Two branches, not one `or`: each narrows `element` to the index type of its node.
        if isinstance(node, dict) and isinstance(element, str) and element in node:  # noqa: SIM114
            search(node[element], i + 1, (*path, element))
        elif (
            isinstance(node, list)
            and isinstance(element, int)
            and not isinstance(element, bool)
            and 0 <= element < len(node)
        ):
            search(node[element], i + 1, (*path, element))
        search(node, i + 1, path)  # not a data element: a union branch or tag name

    search(data, 0, ())
    return best


def _members(tp: object) -> list[object]:
    """Concrete types behind Annotated, unions and Optional."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _members(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        out: list[object] = []
        for arg in typing.get_args(tp):
            out.extend(_members(arg))
        return out
    return [tp]


def _tag_values(model: type[BaseModel]) -> set[str]:
    values: set[str] = set()
    for info in model.model_fields.values():
        if typing.get_origin(info.annotation) is typing.Literal:
            values.update(str(v) for v in typing.get_args(info.annotation))
    return values


def allowed_keys(root: object, loc: Sequence[str | int]) -> list[str]:
    """Keys allowed beside ``loc``'s last element (best effort: the models that may hold it)."""
    candidates: list[object] = [root]
    for element in loc[:-1]:
        expanded = [m for c in candidates for m in _members(c)]
        nxt: list[object] = []
        for tp in expanded:
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                nxt.extend(
                    info.annotation
                    for name, info in tp.model_fields.items()
                    if element in (name, info.alias)
                )
            origin, args = typing.get_origin(tp), typing.get_args(tp)
            if origin is dict and args and isinstance(element, str):
                nxt.append(args[1])
            if origin is list and args and isinstance(element, int):
                nxt.append(args[0])
        if not nxt:
            tagged: list[object] = [
                tp
                for tp in expanded
                if isinstance(tp, type)
                and issubclass(tp, BaseModel)
                and str(element) in _tag_values(tp)
            ]
            nxt = tagged or expanded
        candidates = nxt
    keys: set[str] = set()
    for tp in (m for c in candidates for m in _members(c)):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            keys.update(info.alias or name for name, info in tp.model_fields.items())
    return sorted(keys)


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _expected(msg: str) -> str:
    for prefix in ("Input should be ", "Value should be "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _message(
    error: ErrorDetails, path: Path, root: object, positions: Positions, full: Path
) -> str:
    kind = error["type"]
    msg: str = error["msg"]
    ctx = error.get("ctx") or {}
    name = next((str(p) for p in reversed(path) if isinstance(p, str)), "")
    prefix = f"{name}: " if name else ""
    secret = full in positions.secrets
    value = error.get("input")
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        allowed = allowed_keys(root, error["loc"])
        hint = ""
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            hint = f"; did you mean {close[0]!r}?"
        expected = f" (expected one of: {', '.join(allowed)}{hint})" if allowed else ""
        return f"unknown key {key!r}{expected}"
    if kind == "missing":
        return f"missing required key {str(error['loc'][-1])!r}"
    if kind == "union_tag_invalid":
        disc = str(ctx.get("discriminator", "type")).strip("'")
        tag = ctx.get("tag", "")
        expected = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"unknown {disc} {tag!r} (expected one of: {expected})"
    if kind == "union_tag_not_found":
        disc = str(ctx.get("discriminator", "type")).strip("'")
        return f"missing key {disc!r} that says which kind this is"
    if kind in ("value_error", "assertion_error"):
        text = (
            msg.split(", ", 1)[1]
            if ", " in msg and msg.split(", ", 1)[0].endswith("error")
            else msg
        )
        return positions.redact(f"{prefix}{text}", full)
    if not msg.startswith(("Input should be ", "Value should be ")):
        return positions.redact(f"{prefix}{msg[:1].lower()}{msg[1:]}", full)
    got = "" if secret else f", got {_describe(value)}"
    return positions.redact(f"{prefix}expected {_expected(msg)}{got}", full)


_AT_COLUMN = re.compile(r"\bat (?:line (\d+), )?column (\d+)\b")


def _inner_position(error: ErrorDetails) -> tuple[int, int | None]:
    """Line and column inside a string value that a validator named (a CEL or template error)."""
    cause = (error.get("ctx") or {}).get("error")
    column = getattr(cause, "column", None)
    if isinstance(column, int):
        return getattr(cause, "line", None) or 1, column
    match = _AT_COLUMN.search(str(error.get("msg", "")))
    if match is None:
        return 1, None
    return int(match.group(1) or 1), int(match.group(2))


def validation_errors(
    exc: ValidationError,
    root: object,
    data: object,
    positions: Positions,
    prefix: Path = (),
) -> list[RuleError]:
    """One ``RuleError`` per pydantic error, located in the YAML file, duplicates dropped."""
    out: list[RuleError] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path = data_path(data, loc)
        kind = error["type"]
        if kind in ("extra_forbidden", "missing"):
            # An unknown key is shown at the key; a missing one at the key that lacks it.
            location = positions.location((*prefix, *path), key=True)
        elif kind in ("union_tag_invalid",):
            disc = str((error.get("ctx") or {}).get("discriminator", "type")).strip("'")
            location = positions.location((*prefix, *path, disc))
        else:
            location = positions.location((*prefix, *path))
            line, column = _inner_position(error)
            if column is not None and (*prefix, *path) not in positions.secrets:
                location = positions.inside((*prefix, *path), line, column)
        message = _message(error, path, root, positions, (*prefix, *path))
        key = (str(location), message)
        if key in seen:
            continue
        seen.add(key)
        out.append(RuleError(location, message))
    return out
