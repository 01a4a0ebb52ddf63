"""A source's stream on the server, as both ends see it: what each message says, and holes.

The engine that reads a device publishes every item of its source into the
site's stream for it: each frame as its raw bytes, and a few markers, each
with headers saying which engine published it, in which reading term (the
epoch: the lease revision the term began with, rising site-wide), its number
in that term and its time:

- ``start``: a term began, the device connected at ``time`` (``follows``: it
  goes on from that term without a break: the same engine took its lease
  again after the server was away and never stopped reading);
- ``frame``: a frame received at ``time`` (the device engine's clock);
- ``gap``: the device was away from ``gap_start`` to ``time`` (a local
  source's ``Gap``, passed on as it is);
- ``beat``: still connected at ``time``, nothing else to say (an idle
  device); bounds where a hole begins when the engine dies;
- ``end``: the term ended cleanly at ``time`` (the engine stopped).

``FeedReader`` is the consuming side's bookkeeping: it turns what arrives
into what a local source would have yielded. Every hole becomes one
``Gap`` from the last thing known (a frame, a beat, an end) to the next:
another engine taking over, items the publisher or the stream lost (a term's
numbers jump), items that came later than ``max_lag`` (a live source's frames
are worth having only while they are fresh). Items of a term older than one
already seen come from an engine that lost its lease and did not know yet:
they are dropped and counted. Pure: no clock, no I/O.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass

from engine.core.frame import Gap
from engine.errors import CuecapError

ENGINE = "Cuecap-Engine"
EPOCH = "Cuecap-Epoch"
SEQ = "Cuecap-Seq"
TIME = "Cuecap-Time"
ITEM = "Cuecap-Item"
GAP_START = "Cuecap-Gap-Start"
REASON = "Cuecap-Reason"
FOLLOWS = "Cuecap-Follows"
MSG_ID = "Nats-Msg-Id"
# Characters of one header value: a number, a reason, an engine name (a host name of up to
# 253 characters and a process id fit). The publishing side cuts what is longer.
MAX_HEADER = 300


class FeedError(CuecapError, ValueError):
    """A message in a source's stream that does not say what it is (not published by cuecap)."""


class ItemKind(enum.Enum):
    START = "start"
    FRAME = "frame"
    GAP = "gap"
    BEAT = "beat"
    END = "end"


@dataclass(frozen=True, slots=True)
class Stamp:
    """What the headers of one published item say."""

    kind: ItemKind
    engine: str
    epoch: int
    seq: int
    time: float  # a frame's receive time; a gap's end; a marker's moment
    gap_start: float = 0.0
    reason: str = ""
    follows: tuple[int, int] | None = None  # start: (epoch, next seq) it goes on from

    def headers(self) -> dict[str, str]:
        out = {
            ITEM: self.kind.value,
            ENGINE: self.engine,
            EPOCH: str(self.epoch),
            SEQ: str(self.seq),
            TIME: repr(self.time),  # repr: the shortest text that reads back as the same float
            MSG_ID: f"{self.epoch}:{self.seq}",  # a resend after a lost ack is kept once
        }
        if self.kind is ItemKind.GAP:
            out[GAP_START] = repr(self.gap_start)
            out[REASON] = self.reason
        if self.follows is not None:
            out[FOLLOWS] = f"{self.follows[0]}:{self.follows[1]}"
        return out


MAX_NUMBER = 2**63 - 1  # an epoch (a KV revision) or a term's item number never exceeds it


def parse(headers: Mapping[str, str] | None) -> Stamp:
    """The stamp of a message; ``FeedError`` says what is missing or wrong.

    The one place a stream's headers are read: every value is checked here
    (at most ``MAX_HEADER`` characters, numbers whole and within
    ``0..MAX_NUMBER``, times finite), so the reader never keeps a NaN or
    infinite time as its last known moment, nor counts a negative or
    absurd number as billions of lost items.
    """
    if not headers:
        raise FeedError("a message without headers")
    for name, value in headers.items():
        if len(value) > MAX_HEADER:
            raise FeedError(f"a message whose header {name} is {len(value)} characters long "
                            f"(at most {MAX_HEADER})")  # fmt: skip
    try:
        kind = ItemKind(headers[ITEM])
        follows = None
        if FOLLOWS in headers:
            epoch, colon, seq = headers[FOLLOWS].partition(":")
            if not colon:
                raise FeedError(f"a message whose {FOLLOWS} {headers[FOLLOWS]!r} is not epoch:seq")
            follows = (_number(FOLLOWS, epoch), _number(FOLLOWS, seq))
        return Stamp(
            kind,
            headers.get(ENGINE, ""),
            _number(EPOCH, headers[EPOCH]),
            _number(SEQ, headers[SEQ]),
            _time(TIME, headers[TIME]),
            _time(GAP_START, headers.get(GAP_START, "0")),
            headers.get(REASON, ""),
            follows,
        )
    except FeedError:
        raise
    except (KeyError, ValueError) as exc:
        raise FeedError(f"a message whose headers are not a cuecap stream's: {exc}") from None


def _number(header: str, text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_NUMBER:
        raise FeedError(f"a message whose {header} {text!r} is not from 0 to {MAX_NUMBER}")
    return value


def _time(header: str, text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise FeedError(f"a message whose {header} {text!r} is not a finite time")
    return value


def _cut(text: str) -> str:
    """A text within ``MAX_HEADER``: what cuecap publishes, its consumers take."""
    return text if len(text) <= MAX_HEADER else text[: MAX_HEADER - 1] + "…"


class Stamper:
    """The publishing side: numbers the items of each reading term."""

    def __init__(self, engine: str) -> None:
        self.engine = _cut(engine)
        self.epoch = 0
        self.seq = 0  # the next item's number
        self.active = False

    def _stamp(self, kind: ItemKind, time: float, **extra: object) -> Stamp:
        stamp = Stamp(kind, self.engine, self.epoch, self.seq, time, **extra)  # type: ignore[arg-type]
        self.seq += 1
        return stamp

    def start(self, epoch: int, time: float, *, goes_on: bool = False) -> Stamp:
        """A term begins (``goes_on``: it continues the current one without a break)."""
        follows = (self.epoch, self.seq) if goes_on and self.active else None
        self.epoch, self.seq, self.active = epoch, 0, True
        return self._stamp(ItemKind.START, time, follows=follows)

    def frame(self, time: float) -> Stamp:
        return self._stamp(ItemKind.FRAME, time)

    def gap(self, gap: Gap) -> Stamp:
        return self._stamp(ItemKind.GAP, gap.end, gap_start=gap.start, reason=_cut(gap.reason))

    def beat(self, time: float) -> Stamp:
        return self._stamp(ItemKind.BEAT, time)

    def end(self, time: float) -> Stamp:
        self.active = False
        return self._stamp(ItemKind.END, time)


@dataclass
class ReaderStats:
    stale: int = 0  # items of a term older than one seen (an engine that lost its lease)
    late: int = 0  # items that came more than max_lag after their time
    lost: int = 0  # items missing from a term (its numbers jumped)
    duplicates: int = 0


class FeedReader:
    """The consuming side: ``gap, deliver = reader.take(stamp, now)`` per message in order.

    ``gap``, when not None, comes first; ``deliver`` says whether a frame goes out.
    """

    def __init__(self, source: str, max_lag: float) -> None:
        self.source = source
        self.max_lag = max_lag
        self.epoch: int | None = None
        self.next_seq = 0
        self.engine = ""
        self.last_time: float | None = None  # the last moment the stream is known complete
        self.stats = ReaderStats()
        # Why there is a hole the next item closes: one reason per kind ("lost", "late",
        # "engine"), so a long stretch of late and lossy items stays one short sentence.
        self._pending: dict[str, str] = {}
        self._hole_lost = 0  # items lost within the hole (its "lost" reason counts them)

    def take(self, stamp: Stamp, now: float) -> tuple[Gap | None, bool]:
        stats = self.stats
        epoch = self.epoch
        if epoch is not None and stamp.epoch < epoch:
            stats.stale += 1
            return None, False
        if epoch is not None and stamp.epoch == epoch and stamp.seq < self.next_seq:
            stats.duplicates += 1
            return None, False
        if epoch is not None:
            if stamp.epoch != epoch:
                if stamp.kind is not ItemKind.START or stamp.follows != (epoch, self.next_seq):
                    self._note_takeover(stamp)
            elif stamp.seq > self.next_seq:
                self._lost(stamp.seq - self.next_seq)
        self.epoch, self.next_seq, self.engine = stamp.epoch, stamp.seq + 1, stamp.engine
        if now - stamp.time > self.max_lag:
            stats.late += 1
            self._pending.setdefault("late", f"late: items came more than {self.max_lag:g} s after")
            return None, False
        gap = None
        last = self.last_time
        if self._pending and last is not None:
            reasons = "; ".join(self._pending.values())
            start = last
            if stamp.kind is ItemKind.GAP:
                start = min(start, stamp.gap_start)
                reasons = f"{reasons}; {stamp.reason}"
            gap = Gap(self.source, min(start, stamp.time), stamp.time, reasons)
        elif stamp.kind is ItemKind.GAP and last is not None:
            gap = Gap(self.source, stamp.gap_start, stamp.time, stamp.reason)
        self._pending.clear()
        self._hole_lost = 0
        self.last_time = stamp.time if last is None else max(last, stamp.time)
        return gap, stamp.kind is ItemKind.FRAME

    def _note_takeover(self, stamp: Stamp) -> None:
        if stamp.engine and stamp.engine != self.engine:
            self._pending["engine"] = (
                f"engine {stamp.engine} reads the source now (was {self.engine})"
            )
        else:
            self._pending["engine"] = f"engine {stamp.engine} began reading the source again"
        if stamp.kind is not ItemKind.START or stamp.seq != 0:
            self._lost(stamp.seq)

    def _lost(self, missing: int) -> None:
        self.stats.lost += missing
        if missing:
            self._hole_lost += missing
            self._pending["lost"] = f"{self._hole_lost} item(s) lost on the way"
