"""The CEL compiler alone, without the ``cel`` package's command-line tool.

``import cel`` runs the package's ``__init__``, which imports its interactive
shell (prompt_toolkit and rich, about 0.2 s) and its pure-Python extra
functions (``cel.stdlib``). Conditions use neither: they compile with the
Rust core only, and the extras are opt-in (``add_stdlib_to_context``), which
the engine never calls. So this module loads the compiled extension
``cel/cel*.so`` directly, in milliseconds, under its own name ``cel.cel``: a
later ``import cel`` then reuses it instead of initialising it a second time.
Should the package's layout change (no extension beside its ``__init__``),
it falls back to ``import cel``, which has the same functions. The extension
loads when the first condition compiles (``celnative.cel``): rules without
CEL conditions never map its ~4 MB.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = ["NAME", "cel", "load"]

NAME = "cel.cel"


def load(package_dir: Path | None = None) -> ModuleType:
    """The module holding ``compile``: the extension from ``package_dir`` (default: the
    installed ``cel`` package's folder), or the whole package when none is found."""
    if NAME in sys.modules:
        return sys.modules[NAME]
    if package_dir is None:
        spec = importlib.util.find_spec("cel")  # finds a top-level package, runs nothing
        locations = spec.submodule_search_locations if spec else None
        package_dir = Path(next(iter(locations))) if locations else None
    if package_dir is not None:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = package_dir / f"cel{suffix}"
            if not path.is_file():
                continue
            native = importlib.util.spec_from_file_location(NAME, path)
            if native is None or native.loader is None:
                break
            module = importlib.util.module_from_spec(native)
            sys.modules[NAME] = module
            try:
                native.loader.exec_module(module)
            except BaseException:
                del sys.modules[NAME]
                raise
            return module
    import cel

    return cel


if TYPE_CHECKING:
    import cel.cel as cel
else:

    def __getattr__(name: str) -> ModuleType:
        """``cel`` is loaded on first use, so ``load`` can be given another folder first."""
        if name != "cel":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        module = globals()["cel"] = load()
        return module
