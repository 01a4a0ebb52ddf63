"""Who is on the site: each engine's record of itself, and the site as the status page shows it.

Every engine of a site keeps an ``EngineRecord`` in the site's engines
bucket (``engine.cluster.presence`` writes and reads it); ``site_status``
puts the live records, the site's recent fires and the warnings together
into one ``SiteStatus``, which ``GET /api/site``, the page's "Site" section,
``/metrics`` and ``cuecap site`` all read.

Pure: records are built from values handed in (the engine's status, the
link's counters, the time), encoded and decoded here with a stated bound.
The record keeps its own small types rather than the engine's status
dataclasses because the cluster package may not import the runtime (the
runtime builds the cluster's adapter: the layers would form a cycle);
what they hold is copied from ``Engine.status()``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import TypeAdapter, ValidationError

from engine.cluster.errors import ClusterError
from engine.cluster.payload import PayloadError, loads
from engine.errors import UnknownName
from engine.events import RuleFired

RECORD_VERSION = 1
MAX_RECORD = 32 * 1024  # bytes of one record's JSON: the bucket holds a site's worth of them
MAX_ITEMS = 64  # rules, fires, cameras, sources, recorders listed per engine
MAX_TEXT = 200  # characters of one name or text in a record
MAX_ENGINES = 256  # records read from the bucket; more are left out (and said so)
SITE_FIRINGS = 50  # recent fires of the site kept, newest first
LATE_BEATS = 2  # heartbeats missed before "not seen for" is said


class EngineState(enum.StrEnum):
    """What an engine says it does: runs, or is stopping (its record goes when it has stopped)."""

    RUNNING = "running"
    STOPPING = "stopping"


@dataclass(frozen=True, slots=True)
class RunningFire:
    """A schedule fire of the site this engine holds and runs now."""

    rule: str
    instant: float
    delivery: int  # 1, or the how-manieth time the site handed it out (its engine died)


@dataclass(frozen=True, slots=True)
class CameraLoad:
    """Shots of one camera on this engine: being taken, and waiting for their turn here."""

    camera: str
    in_flight: int
    waiting: int


@dataclass(frozen=True, slots=True)
class SourceUse:
    """A source this engine reads (copied from its ``SourceStatus``)."""

    name: str
    type: str
    connected: bool
    frames: int
    frame_rate: float


@dataclass(frozen=True, slots=True)
class RecorderUse:
    """A recorder of this engine; ``state`` is the value of its ``RecorderState``."""

    name: str
    source: str
    state: str


@dataclass(frozen=True, slots=True)
class EngineCounts:
    fired: int  # rule firings run here
    shots_ok: int
    shots_failed: int
    errors: int


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """This engine's connection to the site's server."""

    connected: bool
    disconnects: int  # times the server went away since the start
    waiting: int  # in the outbox, not sent yet
    dropped: int  # pushed out of the full outbox, or refused by the server
    expired: int  # fires that waited past their deadline


@dataclass(frozen=True, slots=True)
class EngineRecord:
    """One engine of the site as it says it is, renewed every heartbeat."""

    name: str
    host: str
    pid: int
    version: str
    started: float
    seen: float  # when it wrote this record (its clock)
    ttl: float  # seconds after ``seen`` the server forgets the record
    state: EngineState
    rules_hash: str  # of its rule files' names and bytes: equal on engines with the same files
    rules: tuple[str, ...]  # its enabled rules
    running: tuple[RunningFire, ...]  # the site's schedule fires it runs now
    runs_in_flight: int  # every rule run going on here (fires of its own triggers too)
    cameras: tuple[CameraLoad, ...]
    sources: tuple[SourceUse, ...]
    recorders: tuple[RecorderUse, ...]
    counts: EngineCounts
    link: LinkStatus
    # Sources whose stream this engine publishes for the site (stream fan-out's leader).
    leads: tuple[str, ...] = ()
    truncated: bool = False  # lists were cut to keep the record within MAX_RECORD
    v: int = RECORD_VERSION


@dataclass(frozen=True, slots=True)
class SiteFiring:
    """A fire of the site, from the ``rule.fired`` events every engine publishes."""

    engine: str
    rule: str
    time: float
    trigger: str
    detail: str


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """The whole site now; ``site`` is None for an engine that is not part of one."""

    site: str | None
    engine: str | None  # the engine answering
    time: float
    engines: tuple[EngineRecord, ...]  # live ones, by name
    firings: tuple[SiteFiring, ...]  # newest first
    warnings: tuple[str, ...]
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _SITE.dump_python(self, mode="json")
        return out

    def engine_named(self, name: str) -> EngineRecord:
        for record in self.engines:
            if record.name == name:
                return record
        raise UnknownName(name)


@runtime_checkable
class SiteReporter(Protocol):
    """An engine adapter that knows the site (the cluster's): the page and API ask it."""

    def site_status(self) -> SiteStatus: ...


NO_SITE = "this engine is not part of a site: its rule files have no settings.cluster"

_RECORD: TypeAdapter[EngineRecord] = TypeAdapter(EngineRecord)
_SITE: TypeAdapter[SiteStatus] = TypeAdapter(SiteStatus)


def no_site(now: float) -> SiteStatus:
    return SiteStatus(None, None, now, (), (), (), NO_SITE)


def site_of(adapters: Iterable[object]) -> SiteReporter | None:
    return next((a for a in adapters if isinstance(a, SiteReporter)), None)


# -- a record, bounded ----------------------------------------------------------------


def _text(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"


def clip(record: EngineRecord) -> EngineRecord:
    """Names cut to MAX_TEXT, lists to MAX_ITEMS (``truncated`` says when)."""
    cut = False
    lists: dict[str, Any] = {}
    for name in ("rules", "running", "cameras", "sources", "recorders", "leads"):
        items: tuple[Any, ...] = getattr(record, name)
        cut |= len(items) > MAX_ITEMS
        lists[name] = tuple(_clip_item(item) for item in items[:MAX_ITEMS])
    return dataclasses.replace(
        record,
        name=_text(record.name),
        host=_text(record.host),
        version=_text(record.version),
        truncated=record.truncated or cut,
        **lists,
    )


def _clip_item(item: Any) -> Any:
    if isinstance(item, str):
        return _text(item)
    texts = {
        f.name: _text(value)
        for f in dataclasses.fields(item)
        if isinstance(value := getattr(item, f.name), str)
    }
    return dataclasses.replace(item, **texts)


def encode(record: EngineRecord) -> bytes:
    """The record's JSON, at most MAX_RECORD bytes: long lists are halved until it fits."""
    record = clip(record)
    while True:
        data = _RECORD.dump_json(record)
        if len(data) <= MAX_RECORD:
            return data
        longest = max(("rules", "running", "cameras", "sources", "recorders", "leads"),
                      key=lambda name: len(getattr(record, name)))  # fmt: skip
        items = getattr(record, longest)
        half: dict[str, Any] = {longest: items[: len(items) // 2]}
        record = dataclasses.replace(record, truncated=True, **half)


def decode(data: bytes) -> EngineRecord:
    """A record read from the bucket; ``ClusterError`` says what is wrong with it."""
    if len(data) > MAX_RECORD:
        raise ClusterError(f"an engine record of {len(data)} bytes (at most {MAX_RECORD})")
    try:
        head = loads(data, limit=MAX_RECORD, empty=b"")
    except PayloadError as exc:
        raise ClusterError(f"an engine record that cannot be read: {exc}") from None
    if not isinstance(head, dict) or head.get("v") != RECORD_VERSION:
        version = head.get("v") if isinstance(head, dict) else None
        raise ClusterError(f"an engine record of version {version!r} (this cuecap reads "
                           f"{RECORD_VERSION})")  # fmt: skip
    try:
        return _RECORD.validate_python(head)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ClusterError(f"an engine record with a bad {where!r}: {first['msg']}") from None


# -- the site -------------------------------------------------------------------------


def firing_of(engine: str, fired: RuleFired) -> SiteFiring:
    return SiteFiring(_text(engine), _text(fired.rule), fired.time, _text(fired.trigger),
                      _text(fired.detail))  # fmt: skip


def live(records: Iterable[EngineRecord], now: float) -> list[EngineRecord]:
    """The records whose engine was seen within its ttl, by name."""
    return sorted((r for r in records if now <= r.seen + r.ttl), key=lambda r: r.name)


def beat(ttl: float) -> float:
    """How often an engine renews its record: three times within its ttl."""
    return max(0.1, ttl / 3)


def warnings(records: Sequence[EngineRecord], now: float, reader: str = "") -> list[str]:
    """What a site's operator should know: engines on other rule files, silent engines.

    ``reader``: the engine asking, which says itself when it has lost the server.
    """
    out: list[str] = []
    by_hash: dict[str, list[str]] = {}
    for record in records:
        by_hash.setdefault(record.rules_hash, []).append(record.name)
    if len(by_hash) > 1:
        groups = sorted(by_hash.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        parts = "; ".join(f"{', '.join(names)} on {digest[:12]}" for digest, names in groups)
        out.append(f"the engines run different rule files ({parts}): they may decide "
                   "differently until every engine has the same files")  # fmt: skip
    versions = {r.version for r in records}
    if len(versions) > 1:
        out.append(f"the engines run different cuecap versions: {', '.join(sorted(versions))}")
    for record in records:
        silent = now - record.seen
        if silent > LATE_BEATS * beat(record.ttl):
            out.append(f"engine {record.name} not seen for {silent:.1f} s (it is taken for "
                       f"gone {record.ttl:g} s after it was last seen)")  # fmt: skip
        if not record.link.connected and record.name != reader:
            out.append(f"engine {record.name} has lost the NATS server")
    return out


def site_status(
    site: str,
    engine: str,
    now: float,
    records: Mapping[str, EngineRecord],
    firings: Iterable[SiteFiring],
    *,
    notes: Sequence[str] = (),
) -> SiteStatus:
    """The site as ``engine`` sees it at ``now``; ``notes``: warnings of the reader itself."""
    engines = live(records.values(), now)
    said = [*notes, *warnings(engines, now, engine)]
    return SiteStatus(site, engine, now, tuple(engines), tuple(firings)[:SITE_FIRINGS],
                      tuple(said))  # fmt: skip


@dataclass
class RecentFirings:
    """The site's recent fires, newest first, bounded (``SITE_FIRINGS``)."""

    items: list[SiteFiring] = field(default_factory=list)

    def add(self, firing: SiteFiring) -> None:
        self.items.insert(0, firing)
        del self.items[SITE_FIRINGS:]


def _clock(instant: float) -> str:
    """An instant as UTC time of day (engines of a site may be in other zones)."""
    return datetime.fromtimestamp(instant, UTC).strftime("%H:%M:%SZ")


def table(status: SiteStatus) -> list[str]:
    """The site as text lines: one engine a line, then the warnings (``cuecap site``)."""
    if status.site is None:
        return [status.note]
    rows = [("engine", "host", "state", "seen", "rules", "runs now", "shots", "sources")]
    for r in status.engines:
        running = ", ".join(f"{f.rule} {_clock(f.instant)}" for f in r.running) or "-"
        shots = (
            "; ".join(
                f"{c.camera} {c.in_flight} in flight"
                + (f", {c.waiting} waiting" if c.waiting else "")
                for c in r.cameras
                if c.in_flight or c.waiting
            )
            or "-"
        )
        sources = ", ".join(s.name for s in r.sources) or "-"
        rows.append((r.name, r.host, r.state.value, f"{max(0.0, status.time - r.seen):.1f} s ago",
                     r.rules_hash[:12], running, shots, sources))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"site {status.site}: {len(status.engines)} engine(s)"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]  # fmt: skip
    lines += [f"warning: {w}" for w in status.warnings]
    return lines
