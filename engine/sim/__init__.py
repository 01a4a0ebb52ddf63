"""The PurpleDrop simulator: a seeded world, camera frames, a ``pdserver``-like websocket server."""

from engine.sim.server import SimServer, run_sim_in_thread, start_sim_server
from engine.sim.world import Burst, Move, SimConfig, SimConfigError, SimWorld

__all__ = [
    "Burst",
    "Move",
    "SimConfig",
    "SimConfigError",
    "SimServer",
    "SimWorld",
    "run_sim_in_thread",
    "start_sim_server",
]
