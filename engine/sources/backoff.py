"""Reconnect delays: exponential backoff with jitter, as a pure policy.

The policy only computes numbers; the adapter that sleeps passes in the
attempt number and a random draw. Tests then check exact delays without a
clock or a random seed, and a fleet of clients that lost the same server does
not reconnect in lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidArgument

# Defaults for a server on the LAN (stated in docs/recording.md and docs/rules.md): a
# restarted pdserver is reached within about a second of being back, for messages
# lost meanwhile are lost for good; jitter keeps a fleet of clients out of lockstep.
DEFAULT_INITIAL = 0.1
DEFAULT_MAXIMUM = 1.0
DEFAULT_JITTER = 0.25


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry number ``attempt`` (0-based) of a failed connection.

    ``initial * factor**attempt``, capped at ``maximum``, then shortened by up
    to ``jitter`` (a fraction, 0 to 1) of itself: jitter only ever shortens the
    delay, so ``maximum`` is a true upper bound.
    """

    initial: float = DEFAULT_INITIAL
    maximum: float = DEFAULT_MAXIMUM
    factor: float = 2.0
    jitter: float = DEFAULT_JITTER

    def __post_init__(self) -> None:
        if self.initial < 0:
            raise InvalidArgument(f"backoff initial delay must be >= 0, got {self.initial}")
        if self.maximum < self.initial:
            raise InvalidArgument(
                f"backoff maximum ({self.maximum}) must be >= initial delay ({self.initial})"
            )
        if self.factor < 1:
            raise InvalidArgument(f"backoff factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter <= 1:
            raise InvalidArgument(f"backoff jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, attempt: int, draw: float = 0.0) -> float:
        """Seconds to wait before retry ``attempt``; ``draw`` is uniform in [0, 1)."""
        if attempt < 0:
            raise InvalidArgument(f"attempt must be >= 0, got {attempt}")
        base = self.maximum
        # Stop multiplying once past the cap: factor**attempt overflows for long outages.
        if attempt < 64:
            base = min(self.maximum, self.initial * self.factor**attempt)
        return base * (1.0 - self.jitter * draw)
