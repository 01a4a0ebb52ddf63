"""YAML with positions: plain Python data plus where every key and value stands.

PyYAML's ``load`` throws node marks away and silently keeps the last of two
equal keys. Rule files need both: every validation error must point at
file:line:column, and a duplicated rule name is a mistake, not an override.
So files are composed into nodes (which carry marks) and built into data here,
recording each path's position on the way.

The scalar rules are YAML 1.2's core schema rather than PyYAML's YAML 1.1:
only ``true``/``false`` are booleans (``on``, ``no``, ``yes`` stay strings),
``18:00`` is a string rather than the sexagesimal integer 1080, ``010`` is
ten, and dates stay strings for the models to parse.

``${NAME}`` in a string is replaced by that environment variable when the file
is loaded (``${NAME:-default}`` gives a fallback, ``$${`` a literal ``${``);
a missing variable is an error at its position. Substituted paths are
remembered so that error messages never echo a secret.

A rule file is outside input, so composing it is bounded before any value is
built: at most ``MAX_DEPTH`` levels of nesting (deeper would exhaust the
stack), at most ``MAX_VALUES`` values once aliases are expanded (a "billion
laughs" file of nine lines would otherwise build gigabytes), each refused at
the position where the bound is crossed. ``MAX_FILE_BYTES`` bounds what the
loader reads at all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from engine.rules.errors import Location, RuleError

Path = tuple[str | int, ...]

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


class _CoreResolver(BaseResolver):
    """Implicit types of the YAML 1.2 core schema (no yes/no/on/off, no sexagesimals)."""


_CoreResolver.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreResolver.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_CoreResolver.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
_CoreResolver.add_implicit_resolver(
    _NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_CoreResolver.add_implicit_resolver(_MERGE, re.compile(r"^(?:<<)$"), ["<"])


# Bounds on a rule file (stated in docs/rules.md, "When things go wrong").
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 50
MAX_VALUES = 50_000
MAX_NUMBER_DIGITS = 100
_DEPTH_MESSAGE = f"nested more than {MAX_DEPTH} levels deep; rule files are never that deep"


def _too_big(message: str, mark: Any) -> ComposerError:
    """A bound of the rule file crossed while composing it (marked so, for ``compose``)."""
    error = ComposerError(None, None, message, mark)
    error.bound = True  # type: ignore[attr-defined]
    return error


class _Bounded(Composer):
    """PyYAML's composer with the nesting depth and the expanded size bounded."""

    peek_event: Any  # from the parser it is mixed with

    def _start_bounds(self, budget: int = MAX_VALUES) -> None:
        Composer.__init__(self)
        self._depth = 0
        self._budget = budget  # values this document may expand to
        self._values = 0  # values the document expands to, aliases counted in full
        self._sizes: dict[int, int] = {}  # id(node) -> values it expands to

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        node: Node | None
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)
            # A recursive alias is not sized yet; the builder refuses it.
            self._count(self._sizes.get(id(node), 1), event)
            return node
        if isinstance(event, CollectionStartEvent):
            if self._depth >= MAX_DEPTH:
                raise _too_big(_DEPTH_MESSAGE, event.start_mark)
            self._depth += 1
            before = self._values
            try:
                self._count(1, event)
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            self._sizes[id(node)] = self._values - before
            return node
        node = super().compose_node(parent, index)
        self._count(1, event)
        self._sizes[id(node)] = 1
        return node

    def _count(self, values: int, event: Any) -> None:
        self._values += values
        if self._values > self._budget:
            what = "the file expands" if self._budget == MAX_VALUES else "the rule files expand"
            raise _too_big(
                f"{what} to more than {MAX_VALUES} values (counting each alias in full); "
                "use fewer aliases or fewer definitions",
                event.start_mark,  # libyaml's marks are alike
            )


class _PyLoader(Reader, Scanner, Parser, _Bounded, SafeConstructor, _CoreResolver):
    def __init__(self, stream: str, budget: int = MAX_VALUES) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        self._start_bounds(budget)
        SafeConstructor.__init__(self)
        _CoreResolver.__init__(self)


_Loader: Any = _PyLoader
try:  # libyaml's parser when PyYAML has it: about ten times faster, same events and marks
    from yaml._yaml import CParser

    class _CLoader(_Bounded, CParser, SafeConstructor, _CoreResolver):
        def __init__(self, stream: str, budget: int = MAX_VALUES) -> None:
            CParser.__init__(self, stream)
            self._start_bounds(budget)
            SafeConstructor.__init__(self)
            _CoreResolver.__init__(self)

    _Loader = _CLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    pass


_ENV_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?\Z", re.S)


@dataclass(frozen=True, slots=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


def _mark(node: Node, *, end: bool = False) -> Mark:
    m = node.end_mark if end else node.start_mark
    return Mark(m.line + 1, m.column + 1)


@dataclass
class Positions:
    """Where each path of a document stands: its value, and for mapping entries its key."""

    file: str
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)
    secrets: dict[Path, set[str]] = field(default_factory=dict)  # values from the environment
    environment: dict[str, str] = field(default_factory=dict)  # variables used: name -> value
    broken: set[Location] = field(default_factory=set)  # values already reported as wrong
    styles: dict[Path, str] = field(default_factory=dict)  # quote or block style of strings

    def inside(self, path: Path, line: int, column: int) -> Location:
        """The position of ``line``/``column`` (1-based) within the string at ``path``."""
        base = self.location(path)
        style = self.styles.get(path, "")
        if path not in self.values or style in ("|", ">") or base.line is None:
            return base
        quote = 1 if style in ("'", '"') else 0
        if line > 1:
            return Location(self.file, base.line + line - 1, None)
        return Location(self.file, base.line, (base.column or 1) + quote + column - 1)

    def location(self, path: Path, *, key: bool = False) -> Location:
        """The position of ``path`` (its key if asked and known), else of its nearest ancestor."""
        if key and path in self.keys:
            m = self.keys[path]
            return Location(self.file, m.line, m.column)
        p: Path = ()
        for element in path:
            if (*p, element) in self.values:
                p = (*p, element)
            elif element != 0:  # index 0 of a list written as its single item: stay
                break
        mark = self.values.get(p)
        if mark is None:
            return Location(self.file, 1, 1)
        return Location(self.file, mark.line, mark.column)

    def redact(self, text: str, path: Path) -> str:
        """``text`` with the environment values substituted at ``path`` replaced by ``***``."""
        for secret in sorted(self.secrets.get(tuple(path), ()), key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text


@dataclass
class Document:
    """One composed rule file: its data, positions and the problems met while building it."""

    file: str
    data: Any
    positions: Positions
    errors: list[RuleError]
    values: int = 0  # what it expanded to, aliases counted in full


class _Builder:
    def __init__(self, file: str, env: Mapping[str, str]) -> None:
        self.file = file
        self.env = env
        self.positions = Positions(file)
        self.errors: list[RuleError] = []
        self._constructor = SafeConstructor()
        self._active: set[int] = set()

    def error(self, mark: Mark, message: str) -> None:
        self.errors.append(RuleError(Location(self.file, mark.line, mark.column), message))

    def build(self, node: Node, path: Path) -> Any:
        self.positions.values[path] = _mark(node)
        if id(node) in self._active:
            self.error(_mark(node), "an alias refers to itself (recursive anchors are not allowed)")
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if node.tag not in (_SEQ, _MAP):  # !!python/object, !!set, !!omap...: not rule data
            self.error(_mark(node), f"unsupported tag {node.tag!r}; write a plain list or mapping")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self._active.discard(id(node))
        self.error(_mark(node), f"unsupported YAML node {type(node).__name__}")  # pragma: no cover
        return None  # pragma: no cover

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, Mark] = {}
        merged: list[MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.extend(self._merge_sources(value_node))
                continue
            if not isinstance(key_node, ScalarNode):
                self.error(_mark(key_node), "a key must be a plain name, not a list or mapping")
                continue
            key = str(key_node.value)
            key_mark = _mark(key_node)
            if "\x00" in key:
                self.error(key_mark, "a NUL character is not allowed in a key")
                continue
            if key in seen:
                first = seen[key]
                self.error(
                    key_mark,
                    f"duplicate key {key!r} (first at line {first.line}, column {first.column}; "
                    "each key may appear once)",
                )
                continue
            seen[key] = key_mark
            self.positions.keys[(*path, key)] = key_mark
            out[key] = self.build(value_node, (*path, key))
        # Merge keys (``<<: *defaults``): explicit keys win, earlier merges win over later.
        for source in merged:
            for key_node, value_node in source.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
                    continue
                key = str(key_node.value)
                if key not in out:
                    self.positions.keys[(*path, key)] = _mark(key_node)
                    out[key] = self.build(value_node, (*path, key))
        return out

    def _merge_sources(self, node: Node) -> list[MappingNode]:
        if isinstance(node, MappingNode):
            return [node]
        if isinstance(node, SequenceNode) and all(isinstance(n, MappingNode) for n in node.value):
            return list(node.value)
        self.error(_mark(node), "'<<' merges a mapping or a list of mappings")
        return []

    def _offset_mark(self, node: ScalarNode, offset: int) -> Mark:
        """Where character ``offset`` of a one-line scalar stands (the scalar's start otherwise)."""
        start = _mark(node)
        if "\n" in node.value[:offset] or node.style in ("|", ">"):
            return start
        quoted = 1 if node.style in ("'", '"') else 0
        return Mark(start.line, start.column + quoted + offset)

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        tag, value = node.tag, node.value
        if tag == _STR:
            if node.style:
                self.positions.styles[path] = node.style
            return self._substitute(node, path)
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return value.lower() == "true"
        if tag == _INT:
            if len(value) > MAX_NUMBER_DIGITS:  # Python would refuse to parse it anyway
                mark = _mark(node)
                self.positions.broken.add(Location(self.file, mark.line, mark.column))
                self.error(
                    _mark(node),
                    f"a number of {len(value)} digits; numbers here have at most "
                    f"{MAX_NUMBER_DIGITS}",
                )
                return None
            if value.startswith(("0o", "0x")):
                return int(value, 0)
            return int(value, 10)
        if tag == _FLOAT:
            lowered = value.lower()
            if lowered.endswith("nan"):
                return math.nan
            if lowered.endswith("inf"):
                return -math.inf if value.startswith("-") else math.inf
            return float(value)
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError:
            self.error(_mark(node), f"unsupported tag {tag!r}; write a plain value")
            return None

    def _substitute(self, node: ScalarNode, path: Path) -> str:
        text: str = node.value
        if "\x00" in text:  # "\0" in a quoted string: no path, argument or name takes it
            self.error(
                self._offset_mark(node, text.index("\x00")), "a NUL character is not allowed"
            )
            return text.replace("\x00", "")
        if "$" not in text:
            return text
        quoted = 1 if node.style in ("'", '"') else 0
        start = _mark(node)
        used: set[str] = set()

        def column_of(offset: int) -> Mark:
            if "\n" in text[:offset]:
                return start
            return Mark(start.line, start.column + quoted + offset)

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            ref = match.group(1)
            parsed = _ENV_NAME.match(ref)
            if parsed is None:
                self.error(
                    column_of(match.start()),
                    f"bad environment reference ${{{ref}}} (expected ${{NAME}} or ${{NAME:-default}})",
                )
                return ""
            name, default = parsed.group(1), parsed.group(2)
            value = self.env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    self.positions.broken.add(Location(self.file, start.line, start.column))
                    self.error(
                        column_of(match.start()),
                        f"environment variable {name} is not set "
                        f"(set it, or give a default: ${{{name}:-value}})",
                    )
                    return ""
                return default
            used.add(value)
            self.positions.environment[name] = value
            return value

        result = _ENV_REF.sub(replace, text)
        if used:
            self.positions.secrets[path] = used
        return result


def compose(text: str, file: str, env: Mapping[str, str], budget: int = MAX_VALUES) -> Document:
    """Build one YAML document into data with positions; problems go to ``errors``.

    ``budget``: the values it may expand to (what the files before it left).
    """
    builder = _Builder(file, env)
    loader = _Loader(text, budget)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Mark(mark.line + 1, mark.column + 1) if mark is not None else Mark(1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.context}: {exc.problem}"
        bound = getattr(exc, "bound", False)
        if "maximum nesting depth" in problem:  # libyaml's own bound, met before ours
            problem, bound = _DEPTH_MESSAGE, True
        builder.error(where, problem if bound else f"YAML syntax error: {problem}")
        return Document(file, None, builder.positions, builder.errors)
    except ReaderError as exc:
        line, column = _position(text, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        builder.error(Mark(line, column), f"character U+{code:04X} is not allowed in a YAML file")
        return Document(file, None, builder.positions, builder.errors)
    except yaml.YAMLError as exc:
        builder.error(Mark(1, 1), f"YAML error: {exc}")
        return Document(file, None, builder.positions, builder.errors)
    finally:
        loader.dispose()
    data = builder.build(node, ()) if node is not None else None
    return Document(file, data, builder.positions, builder.errors, loader._values)


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` of ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def decode(data: bytes) -> str | tuple[int, int, str]:
    """``data`` as UTF-8 text, or the line, column and reason of its first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[start : exc.start].decode("utf-8", errors="replace")) + 1
        return line, column, f"byte 0x{data[exc.start]:02x} is not UTF-8 ({exc.reason})"
