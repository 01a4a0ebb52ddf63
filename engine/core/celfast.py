"""CEL's common subset compiled to Python closures: conditions without the interpreter's toll.

A condition is evaluated on every frame of the types it names, and handing a
frame's fields to the CEL extension costs more than the test itself (about
9 us a call, most of it converting the variables). So at load time the
expressions built only of the common subset are compiled here into nested
Python closures that read the values directly:

- literals: ints (decimal, hex), uints (``1u``), doubles, strings without
  escapes or prefixes, ``true``, ``false``, ``null``, lists ``[a, b]``;
- names (resolved by the caller at compile time), ``a.b`` and ``a[i]``;
- ``!``, unary ``-``, ``* / % + -``, ``< <= > >= == !=``, ``in``, ``&&``,
  ``||``, ``a ? b : c``, ``size(x)``, ``x.size()`` and ``has(a.b)``.

Anything else (macros, map literals, other functions, escapes...) makes
``compile_subset`` return None and the caller keeps the extension's program.

Semantics are those of the CEL extension the engine uses (not a reading of
the spec), each checked by tests/test_celfast.py against it: no implicit
int/uint/double arithmetic (an error), comparisons and equality across
numeric types by value (ints as doubles against a double), a NaN in an
ordering is an error, ints are 64-bit with overflow an error (but ``-`` of
the smallest int wraps), ``/`` and ``%`` truncate toward zero and by zero
are errors, a double divided by zero is an infinity, ``size`` of a string
counts its UTF-8 bytes, a missing key or field and an index past the end are
errors, and ``&&``/``||`` absorb an error (or a non-bool) when the other side
alone decides (``false && error`` and ``error && false`` are false). Python
values map to CEL's as the extension maps them: an int of 2**63 or more is a
uint, past 2**64 (or below -2**63) a double.

Errors are ``CelError``; a compiled expression never raises anything else
for well-formed inputs (the nested dicts, lists and scalars CEL reads) but
``Deferred``, for the one case whose outcome only the extension knows (a
list plus a map gives the map's keys, in its order): the caller then
evaluates that once with the extension.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import CuecapError

__all__ = [
    "CelError",
    "Compiled",
    "Deferred",
    "Resolve",
    "SizeOf",
    "UInt",
    "compile_subset",
    "plain",
    "resolver",
    "select",
    "size",
    "value",
]

Compiled = Callable[[Any], Any]  # evaluates for one environment (what the names read)
# The value of a name for an environment, or of a name's field (fused: no dict in between).
Resolve = Callable[[str, "str | None"], "Compiled | None"]
# The size of a name's field read directly (a repeated field's length without its items).
SizeOf = Callable[[str, "str | None"], "Compiled | None"]

_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 63) - 1
_UINT_MAX = (1 << 64) - 1
# Kinds of values, as CEL types them.
_BOOL, _INT, _UINT, _DOUBLE, _STRING, _BYTES, _LIST, _MAP, _NULL, _OTHER = range(10)
_NUMERIC = (_INT, _UINT, _DOUBLE)
_KEYS = (_INT, _UINT, _BOOL, _STRING)  # what a map key may be
# Closures nest as deep as the expression, at most one level a token, two or three
# Python frames a level: a longer expression stays on the extension, well inside
# Python's recursion limit (a condition is at most 2000 characters).
_MAX_TOKENS = 150


class CelError(CuecapError, ValueError):
    """An evaluation error of a compiled expression (the extension's would be the same)."""


class UInt(int):
    """A CEL uint (``1u``, a result of uint arithmetic); a plain int is CEL's int."""

    __slots__ = ()


class _Unsupported(Exception):
    """Outside the subset: the caller falls back to the extension."""


class Deferred(CuecapError):
    """This evaluation met values whose outcome only the extension gives (a list plus
    a map: the map's keys, in the extension's order); evaluate it there instead."""


def _kind(v: Any) -> int:
    t = type(v)
    if t is float:
        return _DOUBLE
    if t is bool:
        return _BOOL
    if t is int:
        return _INT if _INT_MIN <= v <= _INT_MAX else _UINT if 0 <= v <= _UINT_MAX else _DOUBLE
    if t is UInt:
        return _UINT
    if t is str:
        return _STRING
    if t is bytes:
        return _BYTES
    if t is list or t is tuple:
        return _LIST
    if t is dict:
        return _MAP
    if v is None:
        return _NULL
    return _OTHER


def _fail(what: str) -> CelError:
    return CelError(what)


def _no_overload(op: str, *values: Any) -> CelError:
    kinds = ", ".join(type(v).__name__ for v in values)
    return CelError(f"no such overload: {op} on {kinds}; CEL does not mix types")


# -- equality and order -------------------------------------------------------------------


def _eq(a: Any, b: Any) -> bool:
    ta = type(a)
    if ta is type(b) and (ta is float or ta is str or ta is bytes):
        return bool(a == b)
    ka, kb = _kind(a), _kind(b)
    if ka in _NUMERIC and kb in _NUMERIC:
        if ka == _DOUBLE or kb == _DOUBLE:
            return float(a) == float(b)
        return bool(a == b)
    if ka != kb:
        return False
    if ka == _LIST:
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    if ka == _MAP:
        if len(a) != len(b):
            return False
        for key, value in a.items():
            found, other = _lookup(b, int(key) if type(key) is bool else key)
            if not found or not _eq(value, other):
                return False
        return True
    if ka == _NULL:
        return True
    return bool(a == b)


def _order(a: Any, b: Any, op: str) -> tuple[Any, Any]:
    """``a`` and ``b`` as Python can order them the way CEL does, or the error."""
    ta = type(a)
    if ta is float and type(b) is float:
        if a != a or b != b:  # NaN
            raise _no_overload(op, a, b)
        return a, b
    ka, kb = _kind(a), _kind(b)
    if ka in _NUMERIC and kb in _NUMERIC:
        if ka == _DOUBLE or kb == _DOUBLE:
            fa, fb = float(a), float(b)
            if fa != fa or fb != fb:
                raise _no_overload(op, a, b)
            return fa, fb
        return a, b
    if ka == kb and ka in (_STRING, _BYTES, _BOOL):
        return a, b
    raise _no_overload(op, a, b)


def _lt(a: Any, b: Any) -> bool:
    x, y = _order(a, b, "<")
    return bool(x < y)


def _le(a: Any, b: Any) -> bool:
    x, y = _order(a, b, "<=")
    return bool(x <= y)


def _gt(a: Any, b: Any) -> bool:
    x, y = _order(a, b, ">")
    return bool(x > y)


def _ge(a: Any, b: Any) -> bool:
    x, y = _order(a, b, ">=")
    return bool(x >= y)


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


# -- arithmetic ---------------------------------------------------------------------------


def _int_result(r: int, op: str) -> int:
    if _INT_MIN <= r <= _INT_MAX:
        return r
    raise _fail(f"integer overflow in {op}")


def _uint_result(r: int, op: str) -> UInt:
    if 0 <= r <= _UINT_MAX:
        return UInt(r)
    raise _fail(f"unsigned integer overflow in {op}")


def _same_numbers(a: Any, b: Any, op: str) -> int:
    ka, kb = _kind(a), _kind(b)
    if ka != kb or ka not in _NUMERIC:
        raise _no_overload(op, a, b)
    return ka


def _add(a: Any, b: Any) -> Any:
    if type(a) is float and type(b) is float:
        return a + b
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        return _add_mixed(a, b)
    if ka == _INT:
        return _int_result(a + b, "+")
    if ka == _UINT:
        return _uint_result(a + b, "+")
    if ka == _DOUBLE:
        return float(a) + float(b)
    if ka in (_STRING, _BYTES):
        return a + b
    if ka == _LIST:
        return [*a, *b]
    raise _no_overload("+", a, b)


def _add_mixed(a: Any, b: Any) -> Any:
    if _kind(a) == _LIST and _kind(b) == _MAP:
        raise Deferred("list + map")
    raise _no_overload("+", a, b)


def _sub(a: Any, b: Any) -> Any:
    if type(a) is float and type(b) is float:
        return a - b
    k = _same_numbers(a, b, "-")
    if k == _INT:
        return _int_result(a - b, "-")
    if k == _UINT:
        return _uint_result(a - b, "-")
    return float(a) - float(b)


def _mul(a: Any, b: Any) -> Any:
    if type(a) is float and type(b) is float:
        return a * b
    k = _same_numbers(a, b, "*")
    if k == _INT:
        return _int_result(a * b, "*")
    if k == _UINT:
        return _uint_result(a * b, "*")
    return float(a) * float(b)


def _div(a: Any, b: Any) -> Any:
    k = _same_numbers(a, b, "/")
    if k == _DOUBLE:
        x, y = float(a), float(b)
        if y == 0.0:
            if x == 0.0 or x != x:
                return math.nan
            return math.copysign(math.inf, x) * math.copysign(1.0, y)
        return x / y
    if b == 0:
        raise _fail("division by zero")
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    return _int_result(q, "/") if k == _INT else UInt(q)


def _mod(a: Any, b: Any) -> Any:
    k = _same_numbers(a, b, "%")
    if k == _DOUBLE:
        raise _no_overload("%", a, b)
    if b == 0:
        raise _fail("modulo by zero")
    if k == _INT and a == _INT_MIN and b == -1:
        raise _fail("integer overflow in %")
    r = abs(a) % abs(b)
    if a < 0:
        r = -r
    return r if k == _INT else UInt(r)


def _neg(a: Any) -> Any:
    t = type(a)
    if t is float:
        return -a
    k = _kind(a)
    if k == _INT:
        return a if a == _INT_MIN else -a  # the extension wraps here
    if k == _DOUBLE:
        return -float(a)
    if k == _BOOL:
        return not a  # the extension's -true is false
    raise _no_overload("-", a)


def _not(a: Any) -> bool:
    if a is True:
        return False
    if a is False:
        return True
    raise _no_overload("!", a)


# -- containers ---------------------------------------------------------------------------


def _lookup(m: dict[Any, Any], key: Any) -> tuple[bool, Any]:
    """A map's value for ``key``, keys matched by CEL type and value (``1`` is not ``1u``).

    A bool key of the data (a protobuf ``map<bool, ...>``) is an int to the extension,
    so ``true`` does not find it and ``1`` does."""
    k = _kind(key)
    if k not in _KEYS:
        raise _fail(f"a {type(key).__name__} cannot be a map key")
    if k == _STRING:
        if key in m:
            return True, m[key]
        return False, None
    for other, value in m.items():
        if (_INT if type(other) is bool else _kind(other)) == k and other == key:
            return True, value
    return False, None


def _index(c: Any, i: Any) -> Any:
    k = _kind(c)
    if k == _LIST:
        ki = _kind(i)
        if ki != _INT and ki != _UINT:
            raise _fail(f"a list index must be an int or uint, not {type(i).__name__}")
        if 0 <= i < len(c):
            return c[i]
        raise _fail(f"index out of bounds: {i}")
    if k == _MAP:
        found, value = _lookup(c, i)
        if found:
            return value
        raise _fail(f"no such key: {i!r}")
    raise _no_overload("[]", c, i)


def _in(a: Any, c: Any) -> bool:
    k = _kind(c)
    if k == _LIST:
        return any(_eq(a, x) for x in c)
    if k == _MAP:
        return _lookup(c, a)[0]
    raise _no_overload("in", a, c)


def _select(v: Any, name: str) -> Any:
    if type(v) is dict:
        if name in v:
            return v[name]
        raise _fail(f"no such key: {name!r}")
    raise _no_overload(f".{name}", v)


select = _select  # for callers that read a name's fields themselves


def _has(v: Any, name: str) -> bool:
    if type(v) is dict:
        return name in v
    raise _no_overload(f"has(.{name})", v)


def _size(v: Any) -> int:
    t = type(v)
    if t is list or t is tuple or t is dict or t is bytes:
        return len(v)
    if t is str:
        return len(v.encode("utf-8", "surrogatepass"))
    raise _no_overload("size", v)


size = _size  # for callers sizing values themselves


# -- parsing ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<double>(?:\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?))
  | (?P<uint>(?:0[xX][0-9a-fA-F]+|\d+)[uU])
  | (?P<int>0[xX][0-9a-fA-F]+|\d+)
  | (?P<string>"[^"\\\n]*"|'[^'\\\n]*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[-+*/%!<>?:.,()\[\]])
    """,
    re.VERBOSE,
)
_RESERVED = frozenset(
    {"as", "break", "const", "continue", "else", "for", "function", "if", "import", "let",
     "loop", "package", "namespace", "return", "var", "void", "while", "in"}
)  # fmt: skip
_RELATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": _lt, "<=": _le, ">": _gt, ">=": _ge, "==": _eq, "!=": _ne, "in": _in,
}  # fmt: skip
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add, "-": _sub, "*": _mul, "/": _div, "%": _mod,
}  # fmt: skip


def _lex(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _Unsupported(text[pos:])
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "ident" and value == "in":
            kind = "op"
        if kind == "ident" and (match.end() < len(text) and text[match.end()] in "\"'"):
            raise _Unsupported("a string prefix")  # r"...", b'...'
        if kind != "space":
            out.append((kind, value))
        pos = match.end()
    return out


class _Parser:
    """Recursive descent over CEL's grammar, building closures as it goes."""

    def __init__(self, text: str, resolve: Resolve, size_of: SizeOf | None) -> None:
        self.tokens = _lex(text)
        if len(self.tokens) > _MAX_TOKENS:
            raise _Unsupported("too long to nest closures for")
        self.pos = 0
        self.resolve = resolve
        self.size_of = size_of
        # By id of a node reading a name (field None) or a name's field: which (the node
        # is kept too, so that no other node can take its id).
        self.fused: dict[int, tuple[Compiled, str, str | None]] = {}
        self.constants: dict[int, tuple[Compiled, Any]] = {}  # by id of a literal's node

    def peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.tokens[i][1] if i < len(self.tokens) else ""

    def take(self, text: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise _Unsupported("end of input")
        token = self.tokens[self.pos]
        if text is not None and token[1] != text:
            raise _Unsupported(f"expected {text}")
        self.pos += 1
        return token

    def constant(self, value: Any) -> Compiled:
        node = _constant(value)
        self.constants[id(node)] = (node, value)
        return node

    def binary(self, op: Callable[[Any, Any], Any], left: Compiled, right: Compiled) -> Compiled:
        constant = self.constants.get(id(right))
        if constant is not None:
            return _binary_constant(op, left, constant[1])
        return _binary(op, left, right)

    def parse(self) -> Compiled:
        node = self.expr()
        if self.pos != len(self.tokens):
            raise _Unsupported("trailing input")
        return node

    def expr(self) -> Compiled:
        cond = self.or_()
        if self.peek() != "?":
            return cond
        self.take("?")
        then = self.or_()
        self.take(":")
        other = self.expr()

        def ternary(env: Any) -> Any:
            c = cond(env)
            if c is True:
                return then(env)
            if c is False:
                return other(env)
            raise _no_overload("?:", c)

        return ternary

    def or_(self) -> Compiled:
        node = self.and_()
        while self.peek() == "||":
            self.take()
            node = _logic(node, self.and_(), True)
        return node

    def and_(self) -> Compiled:
        node = self.relation()
        while self.peek() == "&&":
            self.take()
            node = _logic(node, self.relation(), False)
        return node

    def relation(self) -> Compiled:
        node = self.addition()
        while self.peek() in _RELATIONS:
            op = _RELATIONS[self.take()[1]]
            node = self.binary(op, node, self.addition())
        return node

    def addition(self) -> Compiled:
        node = self.multiplication()
        while self.peek() in ("+", "-"):
            op = _ARITHMETIC[self.take()[1]]
            node = self.binary(op, node, self.multiplication())
        return node

    def multiplication(self) -> Compiled:
        node = self.unary()
        while self.peek() in ("*", "/", "%"):
            op = _ARITHMETIC[self.take()[1]]
            node = self.binary(op, node, self.unary())
        return node

    def unary(self) -> Compiled:
        # CEL's parser drops an even run of ``!`` or ``-`` whatever the operand's type
        # (``!!1`` is 1, ``--'a'`` is 'a'), so only the run's parity is applied.
        if self.peek() == "!":
            count = 0
            while self.peek() == "!":
                self.take()
                count += 1
            return _repeat(_not, self.member(), count % 2)
        if self.peek() == "-":
            count = 0
            while self.peek() == "-":
                self.take()
                count += 1
            kind = self.tokens[self.pos][0] if self.pos < len(self.tokens) else ""
            if kind in ("int", "double") and self.peek(1) not in (".", "["):
                # CEL's grammar reads "-1" as one literal (so -9223372036854775808 fits).
                value = self.literal(negative=True)
                return _repeat(_neg, self.constant(value), (count - 1) % 2)
            return _repeat(_neg, self.member(), count % 2)
        return self.member()

    def member(self) -> Compiled:
        node, name = self.primary()
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                kind, field = self.take()
                if kind != "ident" or field in _RESERVED:
                    raise _Unsupported(field)
                if self.peek() == "(":
                    node = self.method(node, field)
                    name = None
                    continue
                fused = self.resolve(name, field) if name is not None else None
                if fused is not None and name is not None:
                    self.fused[id(fused)] = (fused, name, field)
                node = fused if fused is not None else _selector(node, field)
                name = None
            else:
                index = self.expr()
                self.take("]")
                node = _binary(_index, node, index)
                name = None
        return node

    def method(self, target: Compiled, name: str) -> Compiled:
        self.take("(")
        self.take(")")
        if name != "size":
            raise _Unsupported(f"method {name}")
        return self.sized(target)

    def sized(self, target: Compiled) -> Compiled:
        """``size(target)``: read directly when ``target`` is a fused field and the caller
        can tell its size without building it."""
        fused = self.fused.get(id(target))
        if fused is not None and self.size_of is not None:
            direct = self.size_of(fused[1], fused[2])
            if direct is not None:
                return direct
        return _unary(_size, target)

    def primary(self) -> tuple[Compiled, str | None]:
        """The node, and the name when it is a bare name (so ``name.field`` can fuse)."""
        kind, text = self.tokens[self.pos] if self.pos < len(self.tokens) else ("", "")
        if kind == "ident":
            self.take()
            if text == "true" or text == "false" or text == "null":
                return _constant({"true": True, "false": False, "null": None}[text]), None
            if text in _RESERVED:
                raise _Unsupported(text)
            if self.peek() == "(":
                return self.call(text), None
            node = self.resolve(text, None)
            if node is None:
                raise _Unsupported(f"name {text}")
            self.fused[id(node)] = (node, text, None)
            return node, text
        if text == "(":
            self.take()
            node = self.expr()
            self.take(")")
            return node, None
        if text == "[":
            self.take()
            items: list[Compiled] = []
            while self.peek() != "]":
                items.append(self.expr())
                if self.peek() != ",":
                    break
                self.take(",")
            self.take("]")
            return _list(items), None
        if kind in ("int", "uint", "double", "string"):
            return self.constant(self.literal()), None
        raise _Unsupported(text or "end of input")

    def call(self, name: str) -> Compiled:
        self.take("(")
        if name == "has":
            start = self.pos
            target, root = self.primary()
            fields: list[str] = []
            while self.peek() == ".":
                self.take()
                kind, field = self.take()
                if kind != "ident" or self.peek() == "(":
                    raise _Unsupported("has() of a call")
                fields.append(field)
            if not fields or self.peek() != ")":
                self.pos = start
                raise _Unsupported("has() needs a field selection")
            self.take(")")
            node = target
            for i, field in enumerate(fields[:-1]):
                fused = self.resolve(root, field) if i == 0 and root is not None else None
                node = fused if fused is not None else _selector(node, field)
            last = fields[-1]
            return _unary(lambda v: _has(v, last), node)
        if name == "size":
            arg = self.expr()
            self.take(")")
            return self.sized(arg)
        raise _Unsupported(f"function {name}")

    def literal(self, negative: bool = False) -> Any:
        kind, text = self.take()
        sign = -1 if negative else 1
        if kind == "double":
            return sign * float(text)
        if kind == "int":
            value = sign * int(text, 0) if text.lower().startswith("0x") else sign * int(text)
            if not _INT_MIN <= value <= _INT_MAX:
                raise _Unsupported("an int literal out of range")
            return value
        if kind == "uint":
            digits = text[:-1]
            value = int(digits, 16) if digits.lower().startswith("0x") else int(digits)
            if value > _UINT_MAX:
                raise _Unsupported("a uint literal out of range")
            return UInt(value)
        return text[1:-1]  # a string without escapes


# -- closures -----------------------------------------------------------------------------


def _constant(value: Any) -> Compiled:
    return lambda env: value


def _list(items: list[Compiled]) -> Compiled:
    return lambda env: [item(env) for item in items]


def _repeat(op: Callable[[Any], Any], node: Compiled, count: int) -> Compiled:
    for _ in range(count):
        node = _unary(op, node)
    return node


def _unary(op: Callable[[Any], Any], node: Compiled) -> Compiled:
    return lambda env: op(node(env))


def _selector(node: Compiled, name: str) -> Compiled:
    return lambda env: _select(node(env), name)


def _binary(op: Callable[[Any, Any], Any], left: Compiled, right: Compiled) -> Compiled:
    return lambda env: op(left(env), right(env))


def _binary_constant(op: Callable[[Any, Any], Any], left: Compiled, c: Any) -> Compiled:
    """``op(left, c)`` for a literal ``c``: one call less, the double case inline."""
    if type(c) is float and op in _FLOAT_FAST:
        return _FLOAT_FAST[op](left, c)
    return lambda env: op(left(env), c)


def _float_lt(left: Compiled, c: float) -> Compiled:
    def lt(env: Any) -> bool:
        a = left(env)
        if type(a) is float and a == a:  # not NaN: compares as Python does
            return a < c
        return _lt(a, c)

    return lt


def _float_le(left: Compiled, c: float) -> Compiled:
    def le(env: Any) -> bool:
        a = left(env)
        if type(a) is float and a == a:
            return a <= c
        return _le(a, c)

    return le


def _float_gt(left: Compiled, c: float) -> Compiled:
    def gt(env: Any) -> bool:
        a = left(env)
        if type(a) is float and a == a:
            return a > c
        return _gt(a, c)

    return gt


def _float_ge(left: Compiled, c: float) -> Compiled:
    def ge(env: Any) -> bool:
        a = left(env)
        if type(a) is float and a == a:
            return a >= c
        return _ge(a, c)

    return ge


# A comparison with a double literal (the usual condition): the double case inline.
_FLOAT_FAST: dict[Callable[[Any, Any], Any], Callable[[Compiled, float], Compiled]] = {
    _lt: _float_lt,
    _le: _float_le,
    _gt: _float_gt,
    _ge: _float_ge,
}


def _logic(left: Compiled, right: Compiled, decides: bool) -> Compiled:
    """``&&`` (``decides`` False) or ``||`` (True): a side equal to ``decides`` wins, even
    over an error or a non-bool on the other side; otherwise both must be bools."""

    outcome: bool = decides

    def logic(env: Any) -> bool:
        try:
            a = left(env)
        except CelError as exc:
            a = exc
        if a is decides:
            return outcome
        try:
            b = right(env)
        except CelError as exc:
            b = exc
        if b is decides:
            return outcome
        if isinstance(a, CelError):
            raise a
        if isinstance(b, CelError):
            raise b
        if type(a) is bool and type(b) is bool:
            return not decides
        raise _no_overload("||" if decides else "&&", a, b)

    return logic


def compile_subset(
    expression: str, resolve: Resolve, size_of: SizeOf | None = None
) -> Compiled | None:
    """``expression`` as a closure over an environment, or None when outside the subset.

    ``resolve(name, None)`` gives the closure reading a name (None: the name is not
    known here, so the expression falls back); ``resolve(name, field)`` may give one
    reading ``name.field`` directly (None: select the field from the name's value),
    and then ``size_of(name, field)`` one reading its size (None: ``size`` of the value).
    The expression must already have compiled with the CEL extension (its syntax
    errors are the extension's to report).
    """
    try:
        return _Parser(expression, resolve, size_of).parse()
    except (_Unsupported, RecursionError):
        return None


def plain(value: Any) -> Any:
    """A compiled result as the extension returns it (a ``UInt`` as an int)."""
    return int(value) if type(value) is UInt else value


def value(v: Any) -> Any:
    """A Python value as the extension takes it in: an int past 64 bits is a double,
    a tuple a list (nested values too); what ``Resolve``'s closures should return."""
    t = type(v)
    if t is int and not _INT_MIN <= v <= _UINT_MAX:
        return float(v)
    if t is list or t is tuple:
        return [value(x) for x in v]
    if t is dict:
        return {k: value(x) for k, x in v.items()}
    return v


def resolver(names: Mapping[str, Compiled]) -> Resolve:
    """A ``Resolve`` over fixed names, each read converted by ``value``."""

    def resolve(name: str, field: str | None) -> Compiled | None:
        read = names.get(name) if field is None else None
        if read is None:
            return None
        return lambda env: value(read(env))

    return resolve
