"""Sources from their rule-file definitions: websocket, replayed recording, simulator.

The source classes belong to their own modules and are imported here only
when a rule file asks for them, so a rule set without a simulator never
loads Pillow.
"""

from __future__ import annotations

import math
from typing import Any

from engine.core.clock import Clock
from engine.core.schema import PURPLEDROP
from engine.errors import UnsupportedType
from engine.rules.model import ReplaySourceConfig, WebSocketSourceConfig
from engine.sources.base import Source


def build_source(name: str, config: Any, clock: Clock, *, virtual: bool = False) -> Source:
    """The source ``config`` describes, named ``name``, stamping frames with ``clock``.

    ``virtual``: run as fast as possible in the frames' own time (replays, tests).
    """
    if isinstance(config, WebSocketSourceConfig):
        from engine.sources.backoff import Backoff
        from engine.sources.websocket import WebSocketSource

        return WebSocketSource(
            config.url,
            name=name,
            clock=clock,
            max_size=config.max_size,
            open_timeout=config.open_timeout,
            backoff=Backoff(
                initial=config.reconnect_initial,
                maximum=max(config.reconnect_max, config.reconnect_initial),
                jitter=config.reconnect_jitter,
            ),
            max_retries=config.max_retries,
            schema=config.schema_.loaded if config.schema_ is not None else PURPLEDROP,
            max_size_setting=f"max_size: of source {name} in the rule file",
        )
    if isinstance(config, ReplaySourceConfig):
        from engine.sources.log import LogSource

        # Live, "as fast as possible" still stamps frames with the clock (infinite pace).
        speed = None if virtual else (config.speed or math.inf)
        return LogSource(config.path, name=name, speed=speed, clock=clock)
    if getattr(config, "type", None) == "simulator":
        from engine.sim.world import SimWorld
        from engine.sources.simulator import SimulatorSource

        world = SimWorld(config.seed, **config.world_options())
        speed = config.speed or math.inf
        return SimulatorSource(world, name=name, clock=clock, paced=not virtual, speed=speed)
    if getattr(config, "type", None) == "nats":
        raise UnsupportedType(
            f"source {name!r}: a nats source is read through settings.cluster (the site's server)"
        )
    raise UnsupportedType(
        f"source {name!r}: unknown source type {getattr(config, 'type', config)!r}"
    )
