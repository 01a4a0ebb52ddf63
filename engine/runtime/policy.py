"""Whether a rule's firing runs now, waits, replaces the running one, or is dropped.

Pure bookkeeping with time passed in, kept apart from asyncio so each mode is
tested as a table of cases. Two layers, on purpose:

- the cooldown decides whether a trigger counts as a firing at all. It
  depends only on trigger times, so a replay of a recording counts exactly the
  firings a live run counted;
- the mode decides what a firing does while earlier ones still run. That
  depends on how long actions take, which only a live run knows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from engine.errors import InvalidArgument
from engine.rules.model import RuleMode


class Decision(enum.Enum):
    START = "start"  # run it now
    QUEUE = "queue"  # run it when a running one finishes
    RESTART = "restart"  # cancel the running ones, then run it
    DROP = "drop"  # do not run it


@dataclass
class FiringPolicy:
    """The state of one rule: how many runs are going and waiting, when it last fired.

    ``mode`` is single, queued, parallel or restart; ``limit`` is the most
    waiting (queued) or at once (parallel).
    """

    mode: RuleMode = RuleMode.SINGLE
    limit: int = 10
    cooldown: float = 0.0
    running: int = 0
    waiting: int = 0
    last_fired: float | None = None
    fired: int = 0
    cooled: int = 0  # triggers ignored during the cooldown
    dropped: int = 0  # firings not run because of the mode

    def __post_init__(self) -> None:
        if self.mode not in RuleMode.__members__.values():
            raise InvalidArgument(f"unknown mode {self.mode!r}")
        self.mode = RuleMode(self.mode)
        if self.limit < 1:
            raise InvalidArgument(f"limit must be at least 1, got {self.limit}")

    def accepts(self, time: float) -> bool:
        """Whether a trigger at ``time`` is a firing (not inside the cooldown); counts it."""
        last = self.last_fired
        if self.cooldown > 0 and last is not None and time - last < self.cooldown:
            self.cooled += 1
            return False
        self.last_fired = time
        self.fired += 1
        return True

    def decide(self) -> Decision:
        """What to do with an accepted firing; updates the counts as if it is done."""
        mode = self.mode
        if self.running == 0 and self.waiting == 0:
            self.running = 1
            return Decision.START
        if mode is RuleMode.SINGLE:
            decision = Decision.DROP
        elif mode is RuleMode.QUEUED:
            decision = Decision.QUEUE if self.waiting < self.limit else Decision.DROP
        elif mode is RuleMode.PARALLEL:
            decision = Decision.START if self.running < self.limit else Decision.DROP
        else:
            decision = Decision.RESTART
        if decision is Decision.DROP:
            self.dropped += 1
        elif decision is Decision.QUEUE:
            self.waiting += 1
        elif decision is Decision.START:
            self.running += 1
        else:  # restart: the running ones are cancelled (and do not call finished)
            self.running = 1
        return decision

    def finished(self) -> bool:
        """A run ended; True when a waiting firing should start now."""
        if self.running > 0:
            self.running -= 1
        if self.waiting > 0 and self.running == 0:
            self.waiting -= 1
            self.running = 1
            return True
        return False
