"""The PurpleDrop simulator: a seeded world, camera frames, a ``pdserver``-like websocket server.

Names load on first use, so code that only needs the world does not import websockets.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names for type checkers; at run time __getattr__ loads them
    from engine.sim.server import SimServer as SimServer
    from engine.sim.server import run_sim_in_thread as run_sim_in_thread
    from engine.sim.server import start_sim_server as start_sim_server
    from engine.sim.world import Burst as Burst
    from engine.sim.world import Move as Move
    from engine.sim.world import SimConfig as SimConfig
    from engine.sim.world import SimConfigError as SimConfigError
    from engine.sim.world import SimWorld as SimWorld

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


def __getattr__(name: str) -> object:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
