"""CEL conditions over frames: the escape hatch for activity nobody foresaw.

A condition is compiled once, when its rule file loads, and every name it uses
is checked against the source's schema then (PurpleDrop's by default), so ``active_capacitance.calibratd``
is an error with its column, not a rule that silently never matches.

What an expression sees:

- each message type by name (``active_capacitance.calibrated``,
  ``electrode_state.drive_groups[0].electrodes``), with proto3 semantics: the
  fields of a type other than the frame's read as their defaults;
- with ``message_type`` given, that type's fields also by their bare names
  (``calibrated > 3.5``);
- ``type`` (the frame's message type), ``time`` (receive time, epoch
  seconds), ``seq``, ``source`` and ``length`` (bytes on the wire).

Which frames a condition looks at: only ``message_type`` when given; otherwise
only the message types the expression names, unless it tests ``type`` itself,
in which case every frame. Frames outside that set are ``False`` without
evaluating anything, so camera frames cost one set lookup.

Evaluation never raises into the stream: ``evaluate`` returns False on error and
keeps a count and the last message (the first one is logged); ``check`` raises
``ConditionError`` for callers that want the error.

An expression is outside input, so its cost is bounded before CEL sees it: at
most ``MAX_LENGTH`` characters, ``MAX_NESTING`` levels of brackets,
``MAX_MACRO_NESTING`` comprehension macros (``map``, ``all``...) inside one
another, ``MAX_ITEMS`` items in a list or map literal and no comprehension
ranging over another's result (chained, they multiply sizes without bound),
each refused with its column. Type errors (``calibrated + 'x'``) are found at load by running the
expression over two sample messages (defaults, and every field set); a branch
neither sample reaches is checked when it first runs. What is still too slow
is caught at run time: an evaluation taking longer than ``BUDGET`` seconds
of CPU time disables the condition (it never matches again until the rules
are reloaded) and says so once; an overrun on the clock is timed again on
this thread's CPU, so a busy machine does not count against a condition.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from engine.core import celfast, celnative
from engine.core.clock import cpu_elapsed, elapsed
from engine.core.fieldpath import (
    kind_descriptor,
    type_name,
    unknown_field_message,
)
from engine.core.frame import Frame, FrameDecodeError
from engine.core.schema import PURPLEDROP, Schema
from engine.errors import CuecapError

log = logging.getLogger(__name__)

# What CEL reads: a message as nested dicts and lists of proto3 scalars.
CelValue: TypeAlias = "bool | int | float | str | bytes | list[CelValue] | dict[str, CelValue]"
CelMessage: TypeAlias = dict[str, CelValue]

# Frame facts every expression may use, with their CEL type for error messages.
CONTEXT_NAMES: dict[str, str] = {
    "type": "string",
    "time": "double",
    "seq": "int",
    "source": "string",
    "length": "int",
}
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
# Bounds on an expression (stated in docs/rules.md, "When things go wrong").
MAX_LENGTH = 2000
MAX_NESTING = 20
MAX_MACRO_NESTING = 2
MAX_ITEMS = 100
BUDGET = 0.05  # seconds one evaluation may take before the condition is disabled
# CEL's words for an operation its operand types do not have.
_TYPE_ERRORS = ("No such overload", "Unsupported operation", "not supported between")
_KEYWORDS = frozenset({"true", "false", "null", "in"})
_TOKEN = re.compile(
    r"""
    (?P<string>[rRbB]{0,2}(?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
  | (?P<number>(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<space>\s+)
  | (?P<op>\|\||&&|==|!=|<=|>=|[-+*/%!<>?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)
_CEL_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)", re.DOTALL)


class ConditionError(CuecapError, ValueError):
    """A condition that cannot compile or evaluate; ``line``/``column`` are 1-based."""

    def __init__(
        self, message: str, expression: str, line: int | None = None, column: int | None = None
    ) -> None:
        self.expression = expression
        self.reason = message
        self.line = line
        self.column = column
        where = ""
        if column is not None:
            where = (
                f" at line {line}, column {column}" if line and line > 1 else f" at column {column}"
            )
        super().__init__(f"condition {_shown(expression)}{where}: {message}")


def _shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message, cut short when long (a message stays one line)."""
    return repr(text) if len(text) <= limit else repr(text[: limit - 3]) + "..."


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokens(expression: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    n = len(expression)
    while pos < n:
        match = _TOKEN.match(expression, pos)
        if match is None:
            # CEL's own parser reports the error precisely; stop scanning here.
            break
        kind = match.lastgroup or ""
        if kind != "space":
            out.append(_Token(kind, match.group(), pos))
        pos = match.end()
    return out


def _line_col(expression: str, pos: int) -> tuple[int, int]:
    line = expression.count("\n", 0, pos) + 1
    start = expression.rfind("\n", 0, pos) + 1
    return line, pos - start + 1


def _bounds(expression: str, tokens: list[_Token]) -> tuple[str, int] | None:
    """The first bound ``expression`` crosses: (what, position), or None."""
    if len(expression) > MAX_LENGTH:
        return f"longer than {MAX_LENGTH} characters ({len(expression)})", MAX_LENGTH
    # Per open bracket: which one, the items so far, whether it opens a macro call.
    brackets: list[str] = []
    items: list[int] = []
    in_macro: list[bool] = []
    macros = 0
    for i, tok in enumerate(tokens):
        text = tok.text
        if text in ("(", "[", "{"):
            if len(brackets) >= MAX_NESTING:
                return f"nested more than {MAX_NESTING} levels deep", tok.pos
            macro = (
                text == "("
                and i >= 2
                and tokens[i - 1].text in _MACROS
                and tokens[i - 2].text == "."
            )
            if macro:
                if _ranges_over_a_comprehension(tokens, i - 2):
                    return (
                        "a comprehension over another's result (each can multiply the "
                        "size of what it ranges over: chained, they grow without bound)",
                        tokens[i - 1].pos,
                    )
                macros += 1
                if macros > MAX_MACRO_NESTING:
                    return (
                        f"more than {MAX_MACRO_NESTING} comprehensions "
                        f"({', '.join(sorted(_MACROS))}) inside one another",
                        tokens[i - 1].pos,
                    )
            brackets.append(text)
            items.append(1)
            in_macro.append(macro)
        elif text in (")", "]", "}"):
            if brackets:
                brackets.pop()
                items.pop()
                macros -= in_macro.pop()
        elif text == "," and brackets and brackets[-1] in ("[", "{"):
            items[-1] += 1
            if items[-1] > MAX_ITEMS:
                return f"a list or map literal of more than {MAX_ITEMS} items", tok.pos
    return None


def _is_macro_call(tokens: list[_Token], i: int) -> bool:
    """``tokens[i]`` names a comprehension macro called as a method (``.map(``)."""
    return (
        tokens[i].text in _MACROS
        and i >= 1
        and tokens[i - 1].text == "."
        and i + 1 < len(tokens)
        and tokens[i + 1].text == "("
    )


def _ranges_over_a_comprehension(tokens: list[_Token], dot: int) -> bool:
    """Whether the receiver ending before ``tokens[dot]`` (the ``.`` of ``.map(``) holds
    a comprehension: ``[[1]].map(l, l + l).map(l, l + l)...`` doubles per link, so a few
    hundred characters would take all the memory at load. Walks the postfix
    expression back: names, literals, ``.``, calls and ``[...]``/``(...)`` groups."""
    j = dot - 1
    while j >= 0:
        text = tokens[j].text
        if text in (")", "]", "}"):
            depth = 0
            while j >= 0:
                if tokens[j].text in (")", "]", "}"):
                    depth += 1
                elif tokens[j].text in ("(", "[", "{"):
                    depth -= 1
                    if depth == 0:
                        break
                j -= 1
            j -= 1
            if j >= 0 and tokens[j].kind == "ident":  # a call's name, or an indexed name
                j -= 1
        elif tokens[j].kind in ("ident", "number", "string"):
            j -= 1
        else:
            break
        if j >= 0 and tokens[j].text == ".":
            j -= 1
            continue
        if j >= 0 and tokens[j].text in ("]", ")") and tokens[j + 1].text in ("[", "("):
            continue  # x[0][1], f(a)(b): still the same receiver
        break
    return any(_is_macro_call(tokens, k) for k in range(j + 1, dot))


@dataclass(frozen=True, slots=True)
class _Chain:
    root: str
    pos: int
    members: tuple[tuple[str | None, int], ...]  # (field name, pos); None name: an index


def _chains(tokens: list[_Token]) -> Iterator[_Chain]:
    """Root names with the member accesses and indexes that follow them."""
    count = len(tokens)

    def text(i: int) -> str:
        return tokens[i].text if i < count else ""

    for i, tok in enumerate(tokens):
        if tok.kind != "ident" or tok.text in _KEYWORDS:
            continue
        if i > 0 and tokens[i - 1].text == ".":
            continue  # a member, handled with its root
        if text(i + 1) == "(":
            continue  # a function call
        members: list[tuple[str | None, int]] = []
        j = i + 1
        while j < count:
            if text(j) == "." and j + 1 < count and tokens[j + 1].kind == "ident":
                if text(j + 2) == "(":
                    break  # a method call (x.size(), xs.exists(...))
                members.append((tokens[j + 1].text, tokens[j + 1].pos))
                j += 2
            elif text(j) == "[":
                depth = 0
                start = j
                while j < count:
                    if text(j) == "[":
                        depth += 1
                    elif text(j) == "]":
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                members.append((None, tokens[start].pos))
                j += 1
            else:
                break
        yield _Chain(tok.text, tok.pos, tuple(members))


def _locals(tokens: list[_Token]) -> set[str]:
    """Names bound by comprehension macros: the ``x`` of ``xs.exists(x, x > 1)``."""
    names: set[str] = set()
    for i in range(len(tokens) - 4):
        if (
            tokens[i].text == "."
            and tokens[i + 1].text in _MACROS
            and tokens[i + 2].text == "("
            and tokens[i + 3].kind == "ident"
            and tokens[i + 4].text == ","
        ):
            names.add(tokens[i + 3].text)
    return names


def to_cel(message: Message, fields: frozenset[str] | None = None) -> CelMessage:
    """A message as the nested dicts and lists CEL reads; ``fields`` limits the top level.

    Numbers, strings and lists are always there (proto3 defaults); a message
    field only when set, so ``has(x.timestamp)`` is false for a message without one.
    """
    out: CelMessage = {}
    for field in message.DESCRIPTOR.fields:
        name = field.name
        if fields is not None and name not in fields:
            continue
        value = getattr(message, name)
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            if field.is_repeated:
                out[name] = _repeated_messages(field, value)
            elif message.HasField(name):  # so that has(x.timestamp) tells the truth
                out[name] = to_cel(value)
        elif field.is_repeated:
            out[name] = list(value)
        else:
            out[name] = value
    return out


def _map_value(field: Any) -> Any:
    """The value field of a map field's entries (None: not a map, a repeated message);
    ``field`` is upb's FieldDescriptor or the stubs' one."""
    entry = field.message_type
    if entry is None or not entry.GetOptions().map_entry:
        return None
    return entry.fields_by_name["value"]


def _repeated_messages(field: Any, value: Any) -> CelValue:
    """A repeated message field as CEL reads it: a list, or a map field's dict (its
    container iterates its keys, not entries)."""
    map_value = _map_value(field)
    if map_value is None:
        return [to_cel(v) for v in value]
    if map_value.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        return {k: to_cel(v) for k, v in value.items()}
    return dict(value.items())


class Condition:
    """A compiled, schema-checked CEL predicate over frames.

    ``kinds`` is the set of message types it looks at (None: all).
    ``errors`` counts evaluation errors, ``last_error`` holds the latest.
    """

    def __init__(
        self, expression: str, message_type: str | None = None, schema: Schema = PURPLEDROP
    ) -> None:
        self.expression = expression
        self._shown = repr(expression)  # as messages quote it
        self.message_type = message_type
        self.schema = schema
        self.errors = 0
        self.last_error: str | None = None
        self.disabled = False  # set when an evaluation ran over the budget
        self.on_disabled: Callable[[str], None] | None = None  # told why, once
        # Measures an evaluation's cost (not the time of day), and this thread's CPU time
        # to confirm an overrun; tests inject their own.
        self.timer: Callable[[], float] = elapsed
        self.cpu_timer: Callable[[], float] = cpu_elapsed
        kind_names = schema.kind_names
        if message_type is not None and message_type not in kind_names:
            raise ConditionError(
                f"unknown message type {message_type!r}; known types: {', '.join(sorted(kind_names))}",
                expression,
            )
        if not expression.strip():
            raise ConditionError(
                "empty expression; write e.g. active_capacitance.calibrated > 3.5", expression
            )
        tokens = _tokens(expression)
        crossed = _bounds(expression, tokens)
        if crossed is not None:
            raise self._at(f"too big to be a condition: {crossed[0]}", crossed[1])
        try:
            self._program = celnative.cel.compile(expression)
        except Exception as exc:  # the extension raises ValueError; be safe about others
            raise self._cel_error(str(exc)) from None
        local_names = _locals(tokens)
        bare: Descriptor | None = schema.kinds[message_type] if message_type else None
        # Per referenced message type: the top-level fields used (None: the whole message).
        plan: dict[str, set[str] | None] = {}
        bare_fields: set[str] = set()
        context: set[str] = set()
        seen_roots: set[str] = set()
        for chain in _chains(tokens):
            root = chain.root
            seen_roots.add(root)
            if root in local_names:
                continue
            if root in CONTEXT_NAMES:
                context.add(root)
                if chain.members:
                    name, pos = chain.members[0]
                    what = f"field {name!r}" if name else "elements"
                    raise self._at(f"{root} is a {CONTEXT_NAMES[root]}; it has no {what}", pos)
                continue
            if root in kind_names:
                if schema.kinds[root] is None:
                    if chain.members:
                        raise self._at(f"{root} is a plain value; it has no fields", chain.pos)
                    plan[root] = None
                    continue
                self._walk(kind_descriptor(root, schema), root, chain.members)
                if chain.members and chain.members[0][0] is not None:
                    used = plan.setdefault(root, set())
                    if used is not None:
                        used.add(chain.members[0][0])
                else:
                    plan[root] = None
                continue
            if bare is not None and root in bare.fields_by_name:
                bare_fields.add(root)
                self._walk(bare, message_type or "", ((root, chain.pos), *chain.members))
                continue
            known = sorted(kind_names | set(CONTEXT_NAMES))
            hint = f" or a field of {message_type}" if message_type else ""
            raise self._at(
                f"unknown name {root!r}; use a message type{hint} or one of: {', '.join(known)}",
                chain.pos,
            )
        # Names CEL saw that the scanner did not (a construct it does not know): refuse.
        for name in self._program.variables():
            if name not in seen_roots and name not in local_names:
                raise ConditionError(f"unknown name {name!r}", expression)
        if message_type is not None:
            self.kinds: frozenset[str] | None = frozenset({message_type})
        elif "type" in context or not plan:
            self.kinds = None
        else:
            self.kinds = frozenset(plan)
        self._plan = {k: (frozenset(v) if v is not None else None) for k, v in plan.items()}
        if message_type is not None and bare_fields:
            self._plan.setdefault(message_type, None)
            fields = self._plan[message_type]
            if fields is not None:
                self._plan[message_type] = fields | bare_fields
        self._bare_fields = tuple(sorted(bare_fields))
        # The type whose fields the bare names read (only set when some are used).
        self._bare_owner = message_type if bare_fields else None
        self._context = tuple(sorted(context))
        # Defaults for the message types a frame is not: proto3 reads unset fields as defaults.
        self._defaults = {
            kind: _default(schema, kind, fields) for kind, fields in self._plan.items()
        }
        self._dry_run()
        # The common subset runs as Python closures (the same outcomes, a tenth of the
        # cost); anything else keeps the CEL extension's program. The dry run above
        # used the extension, so load-time errors read the same either way.
        self.compiled: celfast.Compiled | None = celfast.compile_subset(
            expression, self._resolve, self._size_of
        )

    def _resolve(self, name: str, member: str | None) -> celfast.Compiled | None:
        """What a name (or ``name.member``) reads, for ``celfast``: env is (kind, message,
        frame), as ``check`` has them; the same values ``_variables`` hands CEL."""
        if name in self._context and member is None:
            return _CONTEXT_READERS[name]
        owner = name
        if name in self._bare_fields:
            if member is not None:
                return None
            owner, member = self.message_type or "", name
        if owner not in self._plan:
            return None
        default = self._defaults[owner]
        fields = self._plan[owner]
        if member is None:

            def whole(env: tuple[str | None, Any, Frame]) -> Any:
                kind, message, _ = env
                if kind == owner and message is not None:
                    return to_cel(message, fields) if isinstance(message, Message) else message
                return default

            return whole
        descriptor = self.schema.kinds[owner]
        if descriptor is None or not isinstance(default, dict):
            return None
        field = descriptor.fields_by_name.get(member)
        if field is None:
            return None
        missing = f"no such key: {member!r}"
        if field.cpp_type != FieldDescriptor.CPPTYPE_MESSAGE and not field.is_repeated:

            def scalar(env: tuple[str | None, Any, Frame]) -> Any:
                """The usual case (a number of the frame's message), in one call."""
                kind, message, _ = env
                if kind == owner and message is not None:
                    if isinstance(message, Message):
                        return getattr(message, member)
                    return celfast.select(message, member)
                if member in default:
                    return default[member]
                raise celfast.CelError(missing)

            return scalar
        read = _field_reader(field)

        def one(env: tuple[str | None, Any, Frame]) -> Any:
            kind, message, _ = env
            if kind == owner and message is not None:
                if isinstance(message, Message):
                    return read(message)
                return celfast.select(message, member)
            if member in default:
                return default[member]
            raise celfast.CelError(missing)

        return one

    def _size_of(self, name: str, member: str | None) -> celfast.Compiled | None:
        """``size(name.member)`` (or of a bare field name) of a repeated field, without
        converting its items."""
        if member is None:
            if name not in self._bare_fields:
                return None
            owner, member = self.message_type or "", name
        elif name in self._bare_fields:
            return None
        else:
            owner = name
        descriptor = self.schema.kinds.get(owner) if owner in self._plan else None
        default = self._defaults.get(owner)
        if descriptor is None or not isinstance(default, dict):
            return None
        field = descriptor.fields_by_name.get(member)
        if field is None or not field.is_repeated:
            return None
        missing = f"no such key: {member!r}"

        def size(env: tuple[str | None, Any, Frame]) -> int:
            kind, message, _ = env
            if kind == owner and isinstance(message, Message):
                return len(getattr(message, member))
            if kind == owner and message is not None:
                return celfast.size(celfast.select(message, member))
            if member in default:
                return celfast.size(default[member])
            raise celfast.CelError(missing)

        return size

    # -- compile-time checks ---------------------------------------------------

    def _at(self, message: str, pos: int) -> ConditionError:
        line, column = _line_col(self.expression, pos)
        return ConditionError(message, self.expression, line, column)

    def _cel_error(self, text: str) -> ConditionError:
        match = _CEL_POSITION.search(text)
        if match is None:
            return ConditionError(text, self.expression)
        detail = match.group(3).split("\n", 1)[0].strip()
        return ConditionError(detail, self.expression, int(match.group(1)), int(match.group(2)))

    def _walk(
        self, descriptor: Descriptor, owner: str, members: tuple[tuple[str | None, int], ...]
    ) -> None:
        current: Descriptor | None = descriptor
        field: FieldDescriptor | None = None
        repeated = False
        for name, pos in members:
            if name is None:
                if not repeated:
                    what = type_name(field) if field is not None else "message"
                    raise self._at(f"{owner} is a {what}, not a list; it cannot be indexed", pos)
                repeated = False
                map_value = _map_value(field) if field is not None else None
                if map_value is not None:  # a map's [key] is its value, not an entry
                    field = map_value
                    current = (
                        map_value.message_type
                        if map_value.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE
                        else None
                    )
                continue
            map_value = _map_value(field) if repeated else None
            if map_value is not None:  # a map's .key, as CEL selects a key (has(m.key) too)
                field, repeated, owner = map_value, False, name
                current = (
                    map_value.message_type
                    if map_value.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE
                    else None
                )
                continue
            if repeated:
                raise self._at(
                    f"{owner} is a list; pick one element with [index] before .{name}", pos
                )
            if current is None:
                assert field is not None
                raise self._at(
                    f"{owner} is a {type_name(field, repeated)}; it has no field {name!r}", pos
                )
            field = current.fields_by_name.get(name)
            if field is None:
                raise self._at(unknown_field_message(owner, current, name), pos)
            repeated = field.is_repeated
            current = (
                field.message_type if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE else None
            )
            owner = name

    def _dry_run(self) -> None:
        """Evaluate over sample messages: misspelled functions (``sise(x)``) and type
        errors (``calibrated + 'x'``) are errors at load time, not silent misses."""
        kind = self.message_type or min(self.kinds or self.schema.kind_names)
        empty = self.schema.empty(kind) if self.schema.kinds[kind] is not None else None
        samples = [
            self._variables(kind, empty, 0.0, 0, "", 0),
            self._filled_variables(kind),
        ]
        for i, variables in enumerate(samples):
            try:
                result = self._program.execute(variables)
            except Exception as exc:
                text = str(exc)
                if text.startswith("Undefined variable or function"):
                    name = re.search(r"'([^']*)'", text)
                    what = name.group(1) if name else "?"
                    if what in self._bare_fields:
                        continue  # an unset message field of the sample: the data's error
                    pos = self.expression.find(what) if name else -1
                    message = f"unknown function {what!r}"
                    raise (
                        self._at(message, pos)
                        if pos >= 0
                        else ConditionError(message, self.expression)
                    ) from None
                if "not a valid regex" in text:  # a literal pattern: wrong whatever the data
                    detail = text.rsplit("error:", 1)[-1].split(". Check", 1)[0].strip()
                    raise ConditionError(
                        f"bad regular expression: {detail}", self.expression
                    ) from None
                if isinstance(exc, TypeError) or any(t in text for t in _TYPE_ERRORS):
                    raise ConditionError(
                        f"type error: {text.split('. ', 1)[0].rstrip('.')}; CEL does not mix "
                        "types, convert with int(), double() or string()",
                        self.expression,
                    ) from None
                continue  # other errors depend on the data (an index past the end...)
            if i == 0 and result is not True and result is not False:
                raise ConditionError(
                    f"evaluates to a {type(result).__name__}, not true/false; compare it, e.g. x > 0",
                    self.expression,
                )

    def _filled_variables(self, kind: str) -> CelMessage:
        """Variables as if every message named had every field set (lists of one)."""
        variables: CelMessage = {}
        for name, fields in self._plan.items():
            if self.schema.kinds[name] is None:  # a plain oneof member: its zero value will do
                variables[name] = _default(self.schema, name, fields)
            else:
                variables[name] = to_cel(_filled(self.schema, name), fields)
        if self._bare_owner is not None:
            own = variables[self._bare_owner]
            assert isinstance(own, dict)  # to_cel made it
            for name in self._bare_fields:
                variables[name] = own[name]
        facts: CelMessage = {"type": kind, "time": 1.0, "seq": 1, "source": "s", "length": 1}
        for name in self._context:
            variables[name] = facts[name]
        return variables

    # -- evaluation ------------------------------------------------------------

    def applies_to(self, kind: str | None) -> bool:
        kinds = self.kinds
        return kinds is None or kind in kinds

    def _variables(
        self,
        kind: str | None,
        message: Message | None,
        time: float,
        seq: int,
        source: str,
        length: int,
    ) -> CelMessage:
        variables: CelMessage = {}
        for name, fields in self._plan.items():
            if name == kind and message is not None:
                variables[name] = (
                    to_cel(message, fields) if isinstance(message, Message) else message
                )
            else:
                variables[name] = self._defaults[name]
        if self._bare_owner is not None:
            own = variables[self._bare_owner]
            assert isinstance(own, dict)  # to_cel made it
            for name in self._bare_fields:
                if name in own:  # an unset message field is no key: reading it is an error
                    variables[name] = own[name]
        for name in self._context:
            if name == "type":
                variables[name] = kind or ""
            elif name == "time":
                variables[name] = time
            elif name == "seq":
                variables[name] = seq
            elif name == "source":
                variables[name] = source
            else:
                variables[name] = length
        return variables

    def check(self, frame: Frame) -> bool:
        """True when the frame matches; raises ``ConditionError`` when evaluation fails."""
        kind = frame.kind
        kinds = self.kinds
        if kinds is not None and kind not in kinds:
            return False
        try:
            message = frame.message if (kind is not None and kind in self._plan) else None
        except FrameDecodeError as exc:
            raise ConditionError(str(exc), self.expression) from None
        compiled = self.compiled
        try:
            try:
                if compiled is None:
                    raise celfast.Deferred("not in the compiled subset")
                result = compiled((kind, message, frame))
            except celfast.Deferred:
                variables = self._variables(
                    kind, message, frame.time, frame.seq, frame.source, len(frame.raw)
                )
                result = self._program.execute(variables)
        except Exception as exc:
            raise ConditionError(
                f"evaluation failed on frame {frame.seq} ({kind}): {exc}", self.expression
            ) from None
        if result is True or result is False:
            return result
        result = celfast.plain(result)
        raise ConditionError(
            f"evaluated to {result!r} ({type(result).__name__}) on frame {frame.seq}, not a bool; "
            "compare it, e.g. x > 0",
            self.expression,
        )

    def evaluate(self, frame: Frame) -> bool:
        """True when the frame matches; False (counted, logged once) when evaluation fails.

        An evaluation that takes longer than ``BUDGET`` disables the condition:
        a condition that slow would starve everything else the engine does.
        """
        if self.disabled:
            return False
        return _within_budget(self, self.check, frame, self._shown, _on_frame)

    def inputs(self, frame: Frame) -> CelMessage:
        """What the condition read of ``frame``: the trace of why it matched.

        Only the messages and fields the expression names (and ``time``,
        ``seq``... when it uses them); for a firing's trace, not the hot path.
        """
        kind = frame.kind
        try:
            message = frame.message if (kind is not None and kind in self._plan) else None
        except FrameDecodeError:
            message = None
        variables = self._variables(
            kind, message, frame.time, frame.seq, frame.source, len(frame.raw)
        )
        return {
            name: value
            for name, value in variables.items()
            if name == kind or name not in self._plan
        }

    def __repr__(self) -> str:
        extra = f", message_type={self.message_type!r}" if self.message_type else ""
        return f"Condition({self.expression!r}{extra})"


_FILLED: dict[tuple[int, str], Message] = {}

# What each frame fact reads, for compiled conditions (env: kind, message, frame).
_CONTEXT_READERS: dict[str, celfast.Compiled] = {
    "type": lambda env: env[0] or "",
    "time": lambda env: env[2].time,
    "seq": lambda env: env[2].seq,
    "source": lambda env: env[2].source,
    "length": lambda env: len(env[2].raw),
}


def _field_reader(field: FieldDescriptor) -> Callable[[Message], Any]:
    """A field of a decoded message as ``to_cel`` gives it (an unset message: no key)."""
    name = field.name
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        if field.is_repeated:
            return lambda m: _repeated_messages(field, getattr(m, name))
        missing = f"no such key: {name!r}"

        def message(m: Message) -> Any:
            if m.HasField(name):
                return to_cel(getattr(m, name))
            raise celfast.CelError(missing)

        return message
    if field.is_repeated:
        return lambda m: list(getattr(m, name))
    return lambda m: getattr(m, name)


def _default(schema: Schema, kind: str, fields: frozenset[str] | None) -> CelValue:
    """What a kind reads as in frames of another kind: its defaults (proto3)."""
    if schema.kinds[kind] is None:  # a plain oneof member: its type's zero value
        field = schema.descriptor.fields_by_name[kind]
        value: CelValue = field.default_value
        return value
    return to_cel(schema.empty(kind), fields)


class DataCondition:
    """A compiled CEL predicate over plain data: the names in ``names`` and nothing else.

    For conditions on things that are not frames (an MQTT message's decoded
    JSON payload, its topic, its raw text): the names are checked at compile
    time, with the column of an unknown one; what lies below a name is data of
    unknown shape, so a missing key is an evaluation error (False, counted).
    """

    def __init__(self, expression: str, names: frozenset[str]) -> None:
        self.expression = expression
        self.names = names
        self.errors = 0
        self.last_error: str | None = None
        self.disabled = False
        self.timer: Callable[[], float] = elapsed
        self.cpu_timer: Callable[[], float] = cpu_elapsed
        self.on_disabled: Callable[[str], None] | None = None  # told why, once
        if not expression.strip():
            raise ConditionError(f"empty expression; use {', '.join(sorted(names))}", expression)
        crossed = _bounds(expression, _tokens(expression))
        if crossed is not None:  # the same bounds as a frame condition's
            line, column = _line_col(expression, crossed[1])
            raise ConditionError(
                f"too big to be a condition: {crossed[0]}", expression, line, column
            )
        try:
            self._program = celnative.cel.compile(expression)
        except Exception as exc:
            match = _CEL_POSITION.search(str(exc))
            if match is None:
                raise ConditionError(str(exc), expression) from None
            detail = match.group(3).split("\n", 1)[0].strip()
            raise ConditionError(
                detail, expression, int(match.group(1)), int(match.group(2))
            ) from None
        tokens = _tokens(expression)
        local_names = _locals(tokens)
        for chain in _chains(tokens):
            if chain.root not in names and chain.root not in local_names:
                line, column = _line_col(expression, chain.pos)
                raise ConditionError(
                    f"unknown name {chain.root!r}; use one of: {', '.join(sorted(names))}",
                    expression,
                    line,
                    column,
                )
        for name in self._program.variables():
            if name not in names and name not in local_names:
                raise ConditionError(f"unknown name {name!r}", expression)

    def check(self, variables: dict[str, Any]) -> bool:
        """True when the data matches; raises ``ConditionError`` when evaluation fails."""
        try:
            result = self._program.execute(variables)
        except Exception as exc:
            raise ConditionError(f"evaluation failed: {exc}", self.expression) from None
        if result is True or result is False:
            return result
        raise ConditionError(
            f"evaluated to {result!r} ({type(result).__name__}), not a bool; compare it",
            self.expression,
        )

    def evaluate(self, variables: dict[str, Any]) -> bool:
        """True when the data matches; False (counted, logged once) when evaluation fails.

        Like a frame condition, one that takes longer than ``BUDGET`` is disabled.
        """
        if self.disabled:
            return False
        return _within_budget(self, self.check, variables, _shown(self.expression), _nowhere)

    def __repr__(self) -> str:
        return f"DataCondition({self.expression!r})"


def _filled(schema: Schema, kind: str) -> Message:
    """A message of ``kind`` with every field set: numbers 1, strings "x", lists of one."""
    key = (id(schema), kind)
    message = _FILLED.get(key)
    if message is None:
        message = _FILLED[key] = _fill(schema.empty(kind).__class__(), 3)
    return message


def _fill(message: Message, depth: int) -> Message:
    for field in message.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        if oneof is not None and message.WhichOneof(oneof.name) is not None:
            continue  # one member of a oneof is enough
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            if depth == 0:
                continue
            map_value = _map_value(field)
            if map_value is not None:  # one entry
                entries = getattr(message, field.name)
                key = _sample(map_value.containing_type.fields_by_name["key"])
                if map_value.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                    _fill(entries[key], depth - 1)
                else:
                    entries[key] = _sample(map_value)
            elif field.is_repeated:
                _fill(getattr(message, field.name).add(), depth - 1)
            else:
                inner = getattr(message, field.name)
                inner.SetInParent()
                _fill(inner, depth - 1)
            continue
        value = _sample(field)
        if field.is_repeated:
            getattr(message, field.name).append(value)
        else:
            setattr(message, field.name, value)
    return message


def _sample(field: Any) -> bool | int | str | bytes:
    """A set value for a scalar field: numbers 1, strings "x", an enum's last value."""
    if field.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        return b"x" if field.type == FieldDescriptor.TYPE_BYTES else "x"
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return True
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        number: int = field.enum_type.values[-1].number
        return number
    return 1


_Input = TypeVar("_Input")


class _Judged(Protocol):
    """What ``_within_budget`` keeps on a condition (frame or data)."""

    disabled: bool
    errors: int
    last_error: str | None
    timer: Callable[[], float]
    cpu_timer: Callable[[], float]
    on_disabled: Callable[[str], None] | None  # told why, once


def _on_frame(frame: Frame) -> str:
    return f" on frame {frame.seq}"


def _nowhere(variables: object) -> str:
    return ""


def _within_budget(
    condition: _Judged,
    check: Callable[[_Input], bool],
    given: _Input,
    shown: str,
    where: Callable[[_Input], str],
) -> bool:
    """``check(given)``, with its failures counted (logged once) and its time held to
    ``BUDGET``; ``where(given)`` says on what, in the message (only built when needed).

    A condition that takes longer than that once, in CPU time, is disabled: one
    that slow would starve everything else the engine does.
    """
    started = condition.timer()
    try:
        result = check(given)
    except ConditionError as exc:
        condition.errors += 1
        condition.last_error = str(exc)
        if condition.errors == 1:
            log.warning("%s (further errors of this condition are counted, not logged)", exc)
        result = False
    took = condition.timer() - started
    if took <= BUDGET:
        return result
    # Over by the clock: slow, or not running (a busy machine, another thread holding
    # the GIL)? The same evaluation again, on this thread's CPU time, tells which.
    cpu = condition.cpu_timer
    again = cpu()
    with contextlib.suppress(ConditionError):  # counted already, the first time
        check(given)
    took = cpu() - again
    if took <= BUDGET:
        return result
    condition.disabled = True
    condition.errors += 1
    condition.last_error = message = (
        f"condition {shown} took {took * 1000:.0f} ms{where(given)}, more than its budget of "
        f"{BUDGET * 1000:.0f} ms; it is disabled (never matches) until the rules are loaded again"
    )
    log.error("%s", message)
    if condition.on_disabled is not None:
        condition.on_disabled(message)
    return False
