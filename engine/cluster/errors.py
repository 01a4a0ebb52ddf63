"""The cluster's one exception: NATS errors are translated into it where they enter cuecap."""

from __future__ import annotations

from engine.errors import CuecapError


class ClusterError(CuecapError, ConnectionError):
    """The NATS server cannot be reached or refused what the cluster needs; says which and why."""
