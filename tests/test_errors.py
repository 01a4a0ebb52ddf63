"""One exception root: every exception class the package defines derives from CuecapError."""

from __future__ import annotations

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
