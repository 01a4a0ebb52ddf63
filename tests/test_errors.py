"""One exception root: every exception class the package defines derives from CuecapError."""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil

import engine
import engine.errors
from engine.errors import CuecapError


def defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(engine.__path__, "engine."):
        if info.name.endswith("_pb2") or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
                and not name.startswith("_")  # private control flow, never reaches a caller
            ):
                found[f"{info.name}.{name}"] = value
    return found


def test_every_exception_of_the_package_has_the_one_root() -> None:
    found = defined_exceptions()
    assert len(found) >= 20  # the walk saw the package, not an empty list
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, CuecapError))
    assert outside == []


def test_the_tree_in_the_docstring_names_every_exception() -> None:
    doc = engine.errors.__doc__ or ""
    missing = sorted(
        name
        for name, cls in defined_exceptions().items()
        if cls is not CuecapError and f" {cls.__name__}" not in doc
    )
    assert missing == []


def test_builtin_bases_kept_where_callers_expect_them() -> None:
    from engine.recording.format import RecordingError
    from engine.rules.errors import RuleFileError
    from engine.shots.status import UnknownCamera

    assert issubclass(RuleFileError, ValueError)
    assert issubclass(RecordingError, OSError)
    assert issubclass(UnknownCamera, KeyError)
    try:
        raise RecordingError(28, "No space left on device")
    except OSError as exc:
        assert exc.errno == 28 and isinstance(exc, CuecapError)


BUILTIN_ERRORS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}
# Modules of pydantic models and their field parsers: pydantic wants ValueError from a
# validator and turns it into a ValidationError, which the rule loader reports at
# file:line:column (a RuleFileError): those never reach a caller as they are.
VALIDATORS = {
    "engine/core/units.py",
    "engine/rules/fields.py",
    "engine/rules/model.py",
    "engine/recorder/config.py",
    "engine/shots/config.py",
    "engine/mqtt/config.py",
    "engine/notify/config.py",
    "engine/cluster/config.py",
    "engine/core/secrets.py",
}
# Hooks whose caller wants a built-in: json's ``default`` raises TypeError; the
# hard-link fallback raises what ``os.link`` itself raises for a taken name.
HOOKS = {("engine/recording/writer.py", "_jsonable"), ("engine/shots/files.py", "_link_named")}


def builtin_raises() -> list[str]:
    import ast
    from pathlib import Path

    root = Path(engine.__file__).resolve().parent.parent
    found = []
    for path in sorted((root / "engine").rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.endswith("_pb2.py") or relative in VALIDATORS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if (relative, function.name) in HOOKS or function.name == "__getattr__":
                continue  # a module's __getattr__ must raise AttributeError
            decorators = {ast.unparse(d).split("(")[0] for d in function.decorator_list}
            if decorators & {"field_validator", "model_validator"}:
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    name = ast.unparse(node.exc.func)
                    if name in BUILTIN_ERRORS and name != "NotImplementedError":
                        found.append(f"{relative}:{node.lineno} {function.name}: {name}")
    return found


def test_the_package_raises_its_own_errors_not_bare_builtins() -> None:
    """What cuecap raises on purpose is a CuecapError (which is also the built-in)."""
    assert builtin_raises() == []


def test_settings_from_python_are_refused_in_cuecaps_words() -> None:
    import pytest

    from engine.errors import InvalidArgument
    from engine.shots.saver import ShotSaver

    with pytest.raises(InvalidArgument, match="pool_size"):
        ShotSaver(pool_size=-1)
    with pytest.raises(InvalidArgument, match=r"http\.url"):
        ShotSaver(cameras={"x": {"type": "http", "url": "ftp://x"}})
