"""Each engine's record in the site's engines bucket, and this engine's view of all of them.

Every engine keeps an ``EngineRecord`` (``engine.cluster.roster``) under its
name in the KV bucket ``cuecap_<site>_engines``, written with a per-message
TTL of the site's ``ack_wait`` (the time after which the site takes a silent
engine for dead) and renewed three times within it. An engine that stops
cleanly purges its record, so it leaves the site at once; one that dies
stops renewing and the server forgets its record when the TTL runs out.

The view follows the bucket's subjects (every write and purge arrives as it
happens) and reads the whole bucket again every heartbeat, which heals what
a reconnect missed; records past their TTL are left out by every reader's
own clock too. The site's recent fires come from the ``rule.fired`` events
every engine publishes, with the engine's name in their header.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import logging
import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from engine.cluster.config import ClusterConfig
from engine.cluster.errors import ClusterError
from engine.cluster.link import Link
from engine.cluster.names import ENGINE_HEADER, Names, token
from engine.cluster.payload import loads
from engine.cluster.roster import (
    MAX_ENGINES,
    MAX_RECORD,
    CameraLoad,
    EngineCounts,
    EngineRecord,
    EngineState,
    LinkStatus,
    RecentFirings,
    RecorderUse,
    RunningFire,
    SiteStatus,
    SourceUse,
    beat,
    decode,
    encode,
    firing_of,
    site_status,
)
from engine.events import Event, EventFormatError, RuleFired

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

log = logging.getLogger("engine.cluster")

FULL_READ_BEATS = 3  # heartbeats between full reads of the bucket (what a reconnect missed)
RENEW_LIMIT = 5.0  # seconds one renewal (a write and a full read) may take
LEAVE_WAIT = 2.0  # seconds a renewal under way may still take when the engine leaves
_OPERATION = "KV-Operation"  # nats-py's header for deletes and purges on a KV subject


@functools.cache
def cuecap_version() -> str:
    """Read once: the package's metadata is a file."""
    try:
        return version("cuecap")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def rules_digest(files: Sequence[Path]) -> str:
    """A digest of the rule files' names and bytes: engines on the same files agree on it.

    Names, not paths: the same files kept in another folder on another
    machine are the same rules.
    """
    digest = hashlib.blake2b(digest_size=16)
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            data = f"unreadable: {exc.errno}".encode()
        digest.update(path.name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def ttl_of(ack_wait: float) -> int:
    """The record's TTL in whole seconds (what the server's TTL header takes), at least 1."""
    return max(1, math.ceil(ack_wait))


def bucket_config(names: Names) -> KeyValueConfig:
    return KeyValueConfig(
        bucket=names.engine_bucket,
        history=1,
        storage=StorageType.FILE,
        max_value_size=MAX_RECORD,
    )


class Presence:
    """``await presence.start()`` once the link is open; ``leave()`` before it closes."""

    def __init__(
        self,
        link: Link,
        build: Callable[[EngineState], EngineRecord],
        *,
        now: Callable[[], float],
    ) -> None:
        self.link = link
        self.build = build
        self.now = now
        self.names = link.names
        self.ttl = ttl_of(link.config.ack_wait)
        self.key = token(link.engine_name)
        self.state = EngineState.RUNNING
        self.records: dict[str, EngineRecord] = {}
        self.unreadable: dict[str, str] = {}  # key -> why, for the warnings
        self.recent = RecentFirings()
        self.writes = 0
        self.clash = ""  # another engine writing under this engine's name: where it runs
        self._kv: KeyValue | None = None
        self._prefix = f"$KV.{self.names.engine_bucket}."
        self._subs: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        # Updates heard while a full read is under way (None: a purge): they are newer than
        # what the read may return (a record rewritten mid-listing can be missed by it).
        self._heard: dict[str, EngineRecord | None] | None = None

    async def start(self) -> None:
        """Join: the bucket declared, the others followed, this engine's record written.

        ``ClusterError`` when the server refuses (a server before 2.11 has no
        per-message TTL).
        """
        nc = self.link.nc
        assert nc is not None, "the link is not open"
        try:
            self._kv = await self.link.js.create_key_value(bucket_config(self.names))
            self._subs = [
                await nc.subscribe(f"{self._prefix}>", cb=self._changed),
                await nc.subscribe(self.names.event_subject("rule.fired"), cb=self._fired),
            ]
            await self.write()
            await self.read_all()
        except (nats.errors.Error, OSError) as exc:
            raise ClusterError(
                f"cluster {self.names.site}: the server refused the site's engines bucket "
                f"{self.names.engine_bucket} (NATS Server 2.11 or newer with JetStream?): {exc}"
            ) from exc
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="presence")
        self.link.on_reconnect.append(self._reconnected)

    def _reconnected(self) -> None:
        """The server is back: say this engine is here now, not at the next beat."""
        task = asyncio.get_running_loop().create_task(self._renew())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # -- this engine's record ------------------------------------------------------------

    async def write(self) -> None:
        """Renew this engine's record (skipped while the server is away: it expires)."""
        if not self.link.connected.is_set():
            return
        record = self.build(self.state)
        theirs = self.records.get(self.key)
        if theirs is not None and (theirs.host, theirs.pid) != (record.host, record.pid):
            self.clash = f"{theirs.host}, pid {theirs.pid}"
        elif theirs is not None:
            self.clash = ""
        data = encode(record)
        await self.link.js.publish(self._prefix + self.key, data, timeout=2.0, msg_ttl=self.ttl)
        self.records[self.key] = record
        self.writes += 1

    def stopping(self) -> None:
        """The engine began to stop: say so now (the record goes when it has stopped)."""
        self.state = EngineState.STOPPING
        task = asyncio.get_running_loop().create_task(self._renew(read=False))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _renew(self, *, read: bool = True) -> None:
        """Write this engine's record and read the others'; a failure waits for the next beat."""
        try:
            async with asyncio.timeout(RENEW_LIMIT):
                await self.write()
                if read:
                    await self.read_all()
        except (nats.errors.Error, OSError) as exc:  # the server away (TimeoutError is an OSError)
            log.debug("cluster: the site's engine records were not renewed (%s)", exc)
        except Exception:  # never the end of the heartbeat: the engine would leave the site
            log.exception("cluster: renewing the engine record failed")

    async def _loop(self) -> None:
        """Write every beat; read the whole bucket once a TTL (updates arrive as they happen)."""
        every = beat(self.ttl)
        for count in itertools.count(1):
            await asyncio.sleep(every)
            await self._renew(read=count % FULL_READ_BEATS == 0)

    async def leave(self) -> None:
        """Stop renewing and purge this engine's record: it leaves the site at once."""
        with contextlib.suppress(ValueError):
            self.link.on_reconnect.remove(self._reconnected)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pending:  # a renewal under way: it gets a moment, not the stop's whole time
            _, late = await asyncio.wait(self._pending, timeout=LEAVE_WAIT)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._pending, return_exceptions=True)
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs = []
        if self._kv is not None and self.link.connected.is_set():
            try:
                # The purge's own marker expires too: engine names change with each start
                # (host and process id), so markers kept for good would pile up.
                await self._kv.purge(self.key, msg_ttl=self.ttl)
            except (nats.errors.Error, OSError) as exc:
                log.warning("cluster: could not take engine %s off the site (%s); it goes "
                            "after %d s", self.link.engine_name, exc, self.ttl)  # fmt: skip

    # -- the others ---------------------------------------------------------------------

    async def read_all(self) -> None:
        """Read every record of the bucket again: what a missed update left stale is healed."""
        if self._kv is None or not self.link.connected.is_set():
            return
        heard: dict[str, EngineRecord | None] = {}
        self._heard = heard
        try:
            records, self.unreadable = await read_bucket(self.link.js, self._kv,
                                                         self.names.engine_bucket)  # fmt: skip
        finally:
            self._heard = None
        for key, record in heard.items():
            if record is None:
                records.pop(key, None)
            else:
                records[key] = record
        self.records = records

    async def _changed(self, msg: Msg) -> None:
        key = msg.subject.removeprefix(self._prefix)
        if key not in self.records and len(self.records) + len(self.unreadable) >= MAX_ENGINES:
            return  # the bound holds however many names write; a full read shows the count
        record: EngineRecord | None = None
        if (msg.headers or {}).get(_OPERATION) in ("DEL", "PURGE"):
            self.records.pop(key, None)
            self.unreadable.pop(key, None)
        else:
            try:
                record = self.records[key] = decode(msg.data)
                self.unreadable.pop(key, None)
            except ClusterError as exc:
                self.unreadable[key] = str(exc)
                return
        if self._heard is not None:
            self._heard[key] = record

    async def _fired(self, msg: Msg) -> None:
        engine = (msg.headers or {}).get(ENGINE_HEADER, "")
        try:
            event = Event.from_json(loads(msg.data))
        except (ValueError, EventFormatError):
            return
        if isinstance(event, RuleFired):
            self.recent.add(firing_of(engine, event))

    def site_status(self) -> SiteStatus:
        """The site now, with this engine's own record as it is this moment."""
        records = dict(self.records)
        records[self.key] = self.build(self.state)
        notes = [f"a record in the site's engines bucket cannot be read ({key}): {why}"
                 for key, why in sorted(self.unreadable.items())]  # fmt: skip
        if self.clash:
            notes.insert(0, f"another engine ({self.clash}) uses this engine's name "
                         f"{self.link.engine_name}: give each engine its own (cluster: engine:)")  # fmt: skip
        if not self.link.connected.is_set():
            notes.insert(0, "this engine has lost the NATS server: the others are shown as "
                         "they were last seen, until their records expire")  # fmt: skip
        return site_status(self.names.site, self.link.engine_name, self.now(), records,
                           self.recent.items, notes=notes)  # fmt: skip


async def read_bucket(
    js: JetStreamContext, kv: KeyValue, bucket: str
) -> tuple[dict[str, EngineRecord], dict[str, str]]:
    """Every record of an engines bucket (at most MAX_ENGINES), and why others were unreadable.

    The keys come from the stream's subjects (one request, bounded by the client's
    timeout), not from nats-py's key listing, whose watcher waits without end for
    a reply a reconnect may have lost.
    """
    prefix = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"{prefix}>")
    keys = [subject.removeprefix(prefix) for subject in (info.state.subjects or {})]
    records: dict[str, EngineRecord] = {}
    unreadable: dict[str, str] = {}
    if len(keys) > MAX_ENGINES:
        unreadable["…"] = f"{len(keys)} engines; the first {MAX_ENGINES} are shown"
    for key in sorted(keys)[:MAX_ENGINES]:
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            continue  # gone between the listing and the read
        try:
            records[key] = decode(entry.value or b"")
        except ClusterError as exc:
            unreadable[key] = str(exc)
    return records, unreadable


# -- what an engine says about itself ---------------------------------------------------


@functools.cache
def _host() -> str:
    return socket.gethostname()


def build_record(
    engine: Engine,
    link: Link,
    *,
    state: EngineState,
    started: float,
    rules_hash: str,
    running: Sequence[RunningFire],
    load: dict[str, tuple[int, int]],
    leads: Sequence[str] = (),
) -> EngineRecord:
    """This engine's record now, from its status (the page's snapshot) and its link's counters.

    ``load``: per camera (waiting, in flight) of the shots taken here.
    """
    status = engine.status()
    stats = engine.stats
    outbox = link.outbox
    return EngineRecord(
        name=link.engine_name,
        host=_host(),
        pid=os.getpid(),
        version=cuecap_version(),
        started=started,
        seen=link.now(),
        ttl=float(ttl_of(link.config.ack_wait)),
        state=state,
        rules_hash=rules_hash,
        rules=tuple(r.name for r in status.rules if r.enabled),
        running=tuple(running),
        runs_in_flight=engine.runner.in_flight + len(running),
        cameras=tuple(
            CameraLoad(name, load.get(name, (0, 0))[1], load.get(name, (0, 0))[0])
            for name in engine.rules.cameras
        ),
        sources=tuple(
            SourceUse(s.name, s.type, s.connected, s.frames, s.frame_rate) for s in status.sources
        ),
        recorders=tuple(RecorderUse(r.name, r.source, r.state.value) for r in status.recorders),
        counts=EngineCounts(
            fired=sum(stats.firing_counts.values()),
            shots_ok=stats.shot_counts["ok"],
            shots_failed=stats.shot_counts["failed"],
            errors=status.error_count,
        ),
        link=LinkStatus(
            connected=link.connected.is_set(),
            disconnects=link.disconnects,
            waiting=len(outbox),
            dropped=outbox.dropped,
            expired=outbox.expired,
        ),
        leads=tuple(leads),
    )


# -- reading a site from outside (``cuecap site``) ---------------------------------------


class _Reader(Link):
    """A connection that only reads: it declares none of the site's streams or buckets."""

    async def _declare(self) -> None:
        return None


async def read_site(
    config: ClusterConfig, *, now: Callable[[], float], env: Mapping[str, str] | None = None
) -> SiteStatus:
    """The site's live engines as its engines bucket holds them; changes nothing on the server.

    ``ClusterError`` when the server cannot be reached. The site's recent fires
    are events, which the server does not keep: a reader from outside has none.
    """
    reader = _Reader(config, f"site-reader-{os.getpid()}", now=now, env=env)
    await reader.open()
    try:
        try:
            kv = await reader.js.key_value(reader.names.engine_bucket)
        except nats.js.errors.BucketNotFoundError:
            records: dict[str, EngineRecord] = {}
            unreadable = {"-": f"no engine of site {config.name} has run on this server yet"}
        else:
            records, unreadable = await read_bucket(reader.js, kv, reader.names.engine_bucket)
    except (nats.errors.Error, OSError) as exc:
        raise ClusterError(f"cluster {config.name}: cannot read the site's engines: {exc}") from exc
    finally:
        await reader.close()
    notes = [why if key == "-" else f"a record cannot be read ({key}): {why}"
             for key, why in sorted(unreadable.items())]  # fmt: skip
    return site_status(config.name, "", now(), records, (), notes=notes)
