"""Which engine of a site reads a device: one lease per published source, in a KV bucket.

Every engine loads the same rule files, so every engine could connect to the
device; only the holder of the source's lease does. The lease is one key in
the site's lease bucket, written with a per-message TTL (``Nats-TTL``, NATS
Server 2.11): the server itself removes it ``lease`` seconds after its last
write, so a holder that dies loses it without anybody deciding so. The
holder rewrites it every third of the TTL with compare-and-set on the key's
revision; an engine that does not hold it tries to create it at the same
pace, which only succeeds once the key is gone (lapsed, or released by a
holder that stopped cleanly). The server orders these writes: at most one
engine holds the lease at any revision. The revision a holder took the key
with is its epoch: it rises site-wide with every change of hands, and the
consumers of the stream use it to tell an older holder's late messages from
the current one's.

Why a lease rather than, say, a work-queue consumer: reading a device is not
a task that ends (the work queue's unit) but a role held for as long as the
engine lives, and what the role needs is exactly what a lease gives, one
holder, handed over within one TTL of its holder's death, with no clock but
the server's. When the server is away nobody can take the lease, so the
holder goes on reading (and recording locally); when the server is back,
the engine that held the lease gets one TTL to renew or take it again before
the others try, so a site-wide outage does not move the source.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from engine.cluster.feedcore import MAX_HEADER
from engine.cluster.link import Link
from engine.cluster.names import token
from engine.cluster.payload import loads

log = logging.getLogger("engine.cluster")

_EXPECTED_LAST = "Nats-Expected-Last-Subject-Sequence"
_TTL = "Nats-TTL"
STOP_WAIT = 2.5  # seconds a write under way may still take when the lease stops (its timeout)


class Lease:
    """One source's lease: ``await lease.start()``; ``holding``, ``epoch``, ``on_change``."""

    def __init__(
        self,
        link: Link,
        kv: KeyValue,
        source: str,
        *,
        ttl: float,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.link = link
        self.kv = kv
        self.source = source
        self.key = token(source)
        self.ttl = ttl
        self.on_change = on_change
        self.holding = False
        self.epoch = 0  # the revision this engine took the lease with
        self.holder = ""  # the engine holding it, as last seen
        self.takes = 0
        self._revision = 0  # the key's latest revision, written by this engine
        self._quiet_until = 0.0  # loop time before which this engine does not try to take it
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()  # set by stop(): no further round
        self._subject = f"$KV.{kv._name}.{self.key}"  # the bucket's own subject prefix
        link.on_reconnect.append(self._reconnected)

    @property
    def period(self) -> float:
        return self.ttl / 3

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"lease {self.source}"
        )

    def _reconnected(self) -> None:
        # The server is back: the engine that held the lease goes first.
        if not self.holding:
            self._quiet_until = asyncio.get_running_loop().time() + self.ttl

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server away: the holder goes on holding
                log.debug("lease %s: %s", self.source, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.period)

    async def step(self) -> None:
        """Renew the lease, or try to take it; ``on_change`` when holding or epoch changed."""
        before = (self.holding, self.epoch)
        if self.holding:
            if not await self._write(self._revision):
                # Lapsed while the server was away (or taken): take it again if it is free.
                self.holding = False
                if await self._write(0) or await self._write_over_marker():
                    self._took()
                else:
                    log.warning("lease %s: lost to engine %s", self.source, self.holder or "?")
        elif asyncio.get_running_loop().time() >= self._quiet_until and (
            await self._write(0) or await self._write_over_marker()
        ):
            self._took()
        if (self.holding, self.epoch) != before:
            self.on_change()

    def _took(self) -> None:
        self.holding = True
        self.epoch = self._revision
        self.holder = self.link.engine_name
        self.takes += 1
        log.info("lease %s: engine %s reads the source (epoch %d)", self.source, self.holder,
                 self.epoch)  # fmt: skip

    async def _write(self, last: int) -> bool:
        """Write the key if its revision is still ``last`` (0: if there is none)."""
        value = json.dumps({"engine": self.link.engine_name}).encode()
        headers = {_EXPECTED_LAST: str(last), _TTL: f"{max(1, round(self.ttl))}s"}
        try:
            ack = await self.link.js.publish(self._subject, value, headers=headers, timeout=2.0)
        except nats.js.errors.APIError as exc:
            if exc.err_code in (10071, 10164):  # wrong last sequence: somebody else wrote it
                await self._read_holder()
                return False
            raise
        self._revision = ack.seq
        return True

    async def _write_over_marker(self) -> bool:
        """The key is a delete marker (released cleanly): take it over the marker."""
        try:
            entry = await self.kv.get(self.key)
        except nats.js.errors.KeyNotFoundError as gone:
            marker = gone.entry
            if gone.op is None or marker is None or not marker.revision:
                return False  # lapsed in between: next round
            return await self._write(marker.revision)
        self.holder = _engine_of(entry.value)
        return False

    async def _read_holder(self) -> None:
        with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, ValueError):
            entry = await self.kv.get(self.key)
            self.holder = _engine_of(entry.value)

    async def stop(self) -> None:
        """Stop renewing; a lease held is released so another engine takes over at once."""
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is not None:
            # A round under way is let finish, not cancelled: a write the server has taken
            # would otherwise leave the lease held by nobody who knows it, for a whole ttl.
            if self.link.connected.is_set():
                with contextlib.suppress(TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), STOP_WAIT)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.holding and self.link.connected.is_set():
            with contextlib.suppress(Exception):
                await self.kv.delete(self.key, last=self._revision)
        self.holding = False
        with contextlib.suppress(ValueError):
            self.link.on_reconnect.remove(self._reconnected)


def _engine_of(value: bytes | None) -> str:
    try:
        # What another writer put there goes into our log lines: cut as a header is.
        return str(loads(value).get("engine", ""))[:MAX_HEADER]
    except (ValueError, AttributeError):
        return ""
