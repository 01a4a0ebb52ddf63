"""Whether a schedule firing handed out by the site's work queue runs: the pure decision.

The work queue gives each firing to one engine, and the consumer's
max-ack-pending bounds how many of a rule's firings run at once site-wide
(1 for single, queued and restart; ``max`` for parallel). That slot is the
site-wide lease: JetStream holds it until the engine acks, and frees it by
itself when the engine falls silent for ``ack_wait`` (its time to live, which
a running engine renews with in-progress acks). What a slot cannot say is
whether a firing *waited* for it, which is what the modes are about; that is
decided here, when the firing is handed out, from its times and counts:

- a redelivery (the engine holding it died) always runs: the first delivery
  already passed these checks, and nothing else ran that instant;
- a copy of an instant already accepted is a duplicate: the duplicate window
  drops copies while the server remembers them, this catches the rest (a
  server restarted with its store, an engine whose copy came late). The
  rule's recently accepted instants are kept in a KV bucket, so every engine,
  and one started later, knows them;
- cooldown: a firing within ``cooldown`` of an accepted one is ignored;
- single, parallel, restart: a firing that sat in the queue longer than its
  ``grace`` while a run of the rule was going waited for that run, so it is
  dropped, as a local single rule drops a firing while it runs. The wait is
  counted from when the server stored the firing, not from its instant: a
  fire published late because the server was away (engines queue it) still
  runs when it returns, once. And only finished runs count as going (their
  start and end are recorded with the accepted instants): a slot held by an
  engine that died is no run, so the firing behind it runs after the
  redelivered one;
- queued: waits for its turn; when more than ``max`` wait behind it, it is
  dropped (the oldest goes, where a local queue refuses the newest).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

RECENT = 64  # accepted instants remembered per rule: older copies count as duplicates


class Verdict(enum.Enum):
    RUN = "run"
    DUPLICATE = "duplicate"  # that instant ran already
    COOLED = "cooled"  # inside the rule's cooldown
    LATE = "late"  # waited for a running one past its grace (single, parallel, restart)
    QUEUE_FULL = "queue full"  # queued: more than max waiting


class Mode(enum.Enum):
    SINGLE = "single"
    QUEUED = "queued"
    PARALLEL = "parallel"
    RESTART = "restart"


@dataclass(frozen=True, slots=True)
class RulePolicy:
    """What the decision needs of a rule."""

    mode: Mode
    limit: int  # queued: most waiting; parallel: most at once
    cooldown: float
    grace: float

    @property
    def slots(self) -> int:
        """Runs at once site-wide: the consumer's max-ack-pending."""
        return self.limit if self.mode is Mode.PARALLEL else 1


@dataclass(frozen=True, slots=True)
class Delivery:
    """A firing as the work queue hands it out."""

    instant: float
    delivered: int  # 1 the first time; more after an engine died holding it
    waiting: int  # firings of the rule behind this one in the queue
    stored: float  # when the server stored it (epoch seconds)
    waited: float  # seconds from then to when it was handed out


def decide(
    policy: RulePolicy,
    delivery: Delivery,
    accepted: Sequence[float],
    runs: Sequence[tuple[float, float]] = (),
) -> Verdict:
    """``accepted``: the rule's latest accepted instants, oldest first; ``runs``: the
    (start, end) of its latest finished runs. Both are bounded lists."""
    if delivery.delivered > 1:
        return Verdict.RUN
    instant = delivery.instant
    if instant in accepted or (len(accepted) >= RECENT and instant < accepted[0]):
        return Verdict.DUPLICATE
    if policy.cooldown > 0 and any(abs(instant - a) < policy.cooldown for a in accepted):
        return Verdict.COOLED
    if policy.mode is Mode.QUEUED:
        return Verdict.QUEUE_FULL if delivery.waiting > policy.limit else Verdict.RUN
    stored = delivery.stored
    if delivery.waited > policy.grace and any(start <= stored <= end for start, end in runs):
        return Verdict.LATE
    return Verdict.RUN
