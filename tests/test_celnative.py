"""Conditions load CEL's compiled core alone, not the package's interactive shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_loading_rules_imports_neither_the_cel_shell_nor_its_libraries() -> None:
    code = (
        "import sys\n"
        "from engine.rules.loader import load_rules\n"
        "from engine.core.condition import Condition\n"
        "print('cel.cel' in sys.modules)\n"  # rules without conditions never load it
        "c = Condition('type == \"electrode_state\" && size(source) > 1')\n"
        "print(sorted(m for m in ('cel', 'cel.cli', 'cel.stdlib', 'prompt_toolkit', 'rich')"
        " if m in sys.modules), 'cel.cel' in sys.modules)\n"
    )
    assert _run(code).splitlines() == ["False", "[] True"]


def test_the_native_module_compiles_and_runs_and_a_later_import_cel_reuses_it() -> None:
    code = (
        "import sys\n"
        "from engine.core.celnative import cel, NAME\n"
        "assert cel is sys.modules[NAME] and cel.__name__ == 'cel.cel', cel\n"
        "print(cel.compile('x * 2 + 1').execute({'x': 20}))\n"
        "import cel as package\n"
        "print(package.compile is cel.compile, package.Program is cel.Program)\n"
    )
    assert _run(code).splitlines() == ["41", "True True"]


def test_a_folder_without_the_extension_falls_back_to_the_whole_package(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from engine.core import celnative\n"
        "assert celnative.NAME not in sys.modules\n"  # importing the module loads nothing yet
        f"module = celnative.load(Path({str(tmp_path)!r}))\n"
        "print(module.__name__, 'cel.cli' in sys.modules, module.compile('1 + 2').execute())\n"
    )
    assert _run(code) == "cel True 3"
