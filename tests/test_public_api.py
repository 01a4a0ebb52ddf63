"""Everything the README documents is importable from ``engine``."""

from __future__ import annotations

import subprocess
import sys

import engine


def test_every_public_name_resolves() -> None:
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name


def test_unknown_names_raise_attribute_error() -> None:
    try:
        engine.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_engine_loads_no_network_or_state_machine_library() -> None:
    code = (
        "import sys, engine; "
        "heavy = [m for m in ('websockets', 'httpx', 'transitions', 'av', 'apscheduler') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
