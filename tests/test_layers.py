"""The package's shape: no import cycles, and a pure core that does no I/O.

Imports are read from the source (``ast``), so a lazy import inside a
function counts as much as one at the top: both make the modules depend on
each other. Imports under ``if TYPE_CHECKING:`` do not count; they exist only
for the type checker.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "engine"

# The pure core: decisions, templates, validation, schedules and the engine's reactions.
# Each is handed what it needs (frames, times, texts) and hands back what to do.
PURE = [
    "engine/events.py",
    "engine/errors.py",
    "engine/cluster/decide.py",
    "engine/cluster/feedcore.py",
    "engine/cluster/names.py",
    "engine/cluster/payload.py",
    "engine/cluster/roster.py",
    "engine/core/winpaths.py",
    "engine/core/clock.py",
    "engine/core/celfast.py",
    "engine/core/condition.py",
    "engine/core/fieldpath.py",
    "engine/core/frame.py",
    "engine/core/templates.py",
    "engine/core/units.py",
    "engine/core/humanize.py",
    "engine/core/retention.py",
    "engine/core/secrets.py",
    "engine/core/address.py",
    "engine/rules/describe.py",
    "engine/rules/errors.py",
    "engine/rules/fields.py",
    "engine/rules/locate.py",
    "engine/rules/model.py",
    "engine/rules/schedule.py",
    "engine/rules/yamlpos.py",
    "engine/mqtt/bridge.py",
    "engine/mqtt/config.py",
    "engine/mqtt/topics.py",
    "engine/notify/config.py",
    "engine/notify/message.py",
    "engine/notify/spam.py",
    "engine/recorder/config.py",
    "engine/recorder/decisions.py",
    "engine/recorder/detectors.py",
    "engine/recorder/preroll.py",
    "engine/shots/desk.py",
    "engine/shots/paths.py",
    "engine/shots/policy.py",
    "engine/shots/queue.py",
    "engine/shots/status.py",
    "engine/runtime/core.py",
    "engine/core/validation.py",
    "engine/runtime/jobs.py",
    "engine/runtime/policy.py",
    "engine/runtime/rulebook.py",
    "engine/runtime/stats.py",
    "engine/runtime/summary.py",
    "engine/runtime/history.py",
    "engine/http/security.py",
]
# What the pure core may not use: event loops, threads, the wall clock, processes,
# sockets, files, and the libraries that do I/O for us.
FORBIDDEN = {
    "asyncio", "threading", "time", "socket", "subprocess", "selectors", "concurrent",
    "multiprocessing", "shutil", "tempfile", "signal", "websockets", "httpx", "watchfiles",
    "transitions", "apscheduler.schedulers", "uvicorn", "aiomqtt", "nats",
}  # fmt: skip
# The one place the wall clock is read: ``SystemClock``, the Clock the driver hands in.
ALLOWED = {"engine/core/clock.py": {"time"}}
FORBIDDEN_CALLS = {"open", "input", "print"}


def imports(path: Path) -> Iterator[str]:
    """Modules ``path`` imports, absolute, except those under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base
            for alias in node.names:  # ``from engine.x import y``: y may be a module
                yield f"{base}.{alias.name}"


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name.endswith("_pb2.py"):
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        if name == "engine":  # the public API re-exports everything, lazily, by design
            continue
        for target in imports(path):
            if target in known and target != name and target != "engine":
                edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(set(edges) | {n for targets in edges.values() for n in targets}):
        if node not in index:
            visit(node)
    return out


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])  # engine.core, engine.rules... and engine.events, engine.errors


def test_no_import_cycles_between_modules() -> None:
    assert cycles(graph()) == []


def test_no_import_cycles_between_packages() -> None:
    packages: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph().items():
        for target in targets:
            if package_of(source) != package_of(target):
                packages[package_of(source)].add(package_of(target))
    assert cycles(packages) == []


def test_the_walk_sees_the_package() -> None:
    edges = graph()
    assert "engine.events" in edges["engine.runtime.rulebook"]
    assert len(edges) > 50


def test_the_pure_core_does_no_io_and_reads_no_clock() -> None:
    found: dict[str, list[str]] = {}
    for relative in PURE:
        path = ROOT / relative
        allowed = ALLOWED.get(relative, set())
        bad = sorted(
            {
                name
                for name in imports(path)
                for banned in FORBIDDEN - allowed
                if name == banned or name.startswith(banned + ".")
            }
        )
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bad += sorted(
            f"{node.func.id}()"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_CALLS
        )
        if bad:
            found[relative] = bad
    assert found == {}


def test_the_pure_modules_exist() -> None:
    assert [p for p in PURE if not (ROOT / p).is_file()] == []
