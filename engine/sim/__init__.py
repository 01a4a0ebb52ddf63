"""The PurpleDrop simulator: a seeded world, camera frames, a ``pdserver``-like websocket server.

Names load on first use, so code that only needs the world does not import websockets.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "Burst": "engine.sim.world",
    "Move": "engine.sim.world",
    "SimConfig": "engine.sim.world",
    "SimConfigError": "engine.sim.world",
    "SimWorld": "engine.sim.world",
    "SimServer": "engine.sim.server",
    "run_sim_in_thread": "engine.sim.server",
    "start_sim_server": "engine.sim.server",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
