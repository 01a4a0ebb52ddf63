"""The connection to the site's NATS server: streams and buckets set up, an outbox for bad times.

Every engine declares the same streams and buckets (JetStream accepts a
declaration identical to what exists), so it does not matter which engine
starts first. nats-py reconnects by itself when the server goes away; what
the engine sends meanwhile waits in one bounded ``Outbox``, oldest dropped
first and counted, and each item may say until when it is worth sending (a
firing is only ever published within the server's duplicate window of its
instant: that is what keeps a firing that waited out an outage from running
twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue

from engine.cluster.config import ClusterConfig
from engine.cluster.errors import ClusterError
from engine.cluster.names import Names
from engine.core.secrets import read_secret

log = logging.getLogger("engine.cluster")

# The stream of shot requests keeps at most this many waiting, site-wide: a bound on
# what a camera that never answers can pile up. Requests beyond are refused.
MAX_WAITING_SHOTS = 10_000
MAX_WAITING_FIRINGS = 100_000
MAX_PAYLOAD = 64 * 1024  # a firing, a shot request or an event is small


def tls_context(config: ClusterConfig) -> ssl.SSLContext | None:
    tls = config.tls
    wants = tls is not None or any(url.startswith("tls://") for url in config.nats)
    if not wants:
        return None
    context = ssl.create_default_context(cafile=tls.ca if tls is not None else None)
    if tls is not None and tls.cert is not None:
        context.load_cert_chain(tls.cert, tls.key)
    return context


def _secret(name: str | None, env: Mapping[str, str]) -> str | None:
    return read_secret(name, env) if name is not None else None


@dataclass(slots=True)
class Outgoing:
    subject: str
    data: bytes
    headers: dict[str, str] | None = None
    jetstream: bool = False  # wait for the stream's acknowledgement (and retry until then)
    deadline: float | None = None  # by this clock time it is not worth sending any more


class Outbox:
    """What waits to be sent: bounded, the oldest dropped first, every drop counted."""

    def __init__(self, limit: int, now: Callable[[], float]) -> None:
        self.limit = limit
        self.now = now
        self._items: deque[Outgoing] = deque()
        self._ready = asyncio.Event()
        self.dropped = 0  # pushed out by newer ones while the server was away
        self.expired = 0  # waited past their deadline
        self.sent = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Outgoing) -> None:
        if len(self._items) >= self.limit:
            self._items.popleft()
            self.dropped += 1
        self._items.append(item)
        self._ready.set()

    async def next(self) -> Outgoing:
        while True:
            while self._items:
                item = self._items[0]
                if item.deadline is not None and self.now() > item.deadline:
                    self._items.popleft()
                    self.expired += 1
                    continue
                return item
            self._ready.clear()
            await self._ready.wait()

    def done(self, item: Outgoing) -> None:
        if self._items and self._items[0] is item:
            self._items.popleft()
            self.sent += 1


class Link:
    """One engine's connection: ``await link.open()``, then ``link.js``, buckets and ``send``."""

    def __init__(
        self,
        config: ClusterConfig,
        engine_name: str,
        *,
        now: Callable[[], float],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.env = os.environ if env is None else env
        self.engine_name = engine_name
        self.names = Names(config.name)
        self.now = now
        self.nc: Client | None = None
        self._js: JetStreamContext | None = None
        self.rule_state: KeyValue | None = None
        self.shot_state: KeyValue | None = None
        self.outbox = Outbox(config.outbox, now)
        self.connected = asyncio.Event()
        self.disconnects = 0
        self._sender: asyncio.Task[None] | None = None
        self._closing = False
        self.on_reconnect: list[Callable[[], None]] = []

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "open() first"
        return self._js

    async def open(self) -> None:
        """Connect and declare the site's streams and buckets; ``ClusterError`` says why not."""
        config = self.config
        servers = [url if "://" in url else f"nats://{url}" for url in config.nats]
        options: dict[str, Any] = {
            "servers": servers,
            "name": f"cuecap {config.name} {self.engine_name}",
            "user": _secret(config.user_env, self.env),
            "password": _secret(config.password_env, self.env),
            "token": _secret(config.token_env, self.env),
            "user_credentials": config.creds,
            "tls": tls_context(config),
            "connect_timeout": max(1, round(config.connect_timeout)),
            "error_cb": self._error,
        }
        try:
            # nats-py retries a first connection as long as it may reconnect (here:
            # forever; 0 and allow_reconnect=False too), so a wrong address would hang:
            # a probe with two tries per server tells first.
            # Bounded too: a TLS handshake that never completes (a certificate this engine
            # does not trust) makes nats-py wait without end.
            async with asyncio.timeout(4 * config.connect_timeout + 1):
                probe = await nats.connect(max_reconnect_attempts=1, reconnect_time_wait=0.1,
                                           **options)  # fmt: skip
            await probe.close()
            self.nc = await nats.connect(
                allow_reconnect=True,
                max_reconnect_attempts=-1,  # a site outlives server restarts
                reconnect_time_wait=0.5,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
                **options,
            )
        except (OSError, nats.errors.Error, ssl.SSLError, TimeoutError) as exc:
            raise ClusterError(
                f"cluster {config.name}: cannot connect to {', '.join(servers)}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self._js = self.nc.jetstream(timeout=max(2.0, config.connect_timeout))
        self.connected.set()
        try:
            await self._declare()
        except (nats.errors.Error, OSError) as exc:
            await self.close()
            raise ClusterError(
                f"cluster {config.name}: the server at {', '.join(servers)} refused the "
                f"streams cuecap needs (is JetStream on? nats-server --jetstream): {exc}"
            ) from exc
        self._sender = asyncio.get_running_loop().create_task(self._send_loop(), name="outbox")

    async def _declare(self) -> None:
        names, window = self.names, self.config.duplicate_window
        common = {
            "retention": RetentionPolicy.WORK_QUEUE,
            "storage": StorageType.FILE,
            "discard": DiscardPolicy.NEW,  # a full queue refuses: the publisher counts it
            "duplicate_window": window,
            "max_msg_size": MAX_PAYLOAD,
        }
        await self._stream(
            StreamConfig(
                name=names.firing_stream,
                subjects=[names.firings],
                max_msgs=MAX_WAITING_FIRINGS,
                **common,  # type: ignore[arg-type]
            )
        )
        await self._stream(
            StreamConfig(
                name=names.shot_stream,
                subjects=[names.shots],
                max_msgs=MAX_WAITING_SHOTS,
                **common,  # type: ignore[arg-type]
            )
        )
        self.rule_state = await self.js.create_key_value(
            KeyValueConfig(bucket=names.rule_bucket, history=1, storage=StorageType.FILE)
        )
        # A finished shot is remembered twice the duplicate window: longer than any copy
        # of its request can arrive.
        self.shot_state = await self.js.create_key_value(
            KeyValueConfig(
                bucket=names.shot_bucket, history=1, ttl=2 * window, storage=StorageType.FILE
            )
        )

    async def _stream(self, config: StreamConfig) -> None:
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError:
            # Declared before with other limits (an older cuecap, or changed settings).
            await self.js.update_stream(config)

    async def work_queue(
        self, stream: str, durable: str, subject: str, *, in_flight: int, max_deliver: int
    ) -> None:
        """Declare (or resize) the durable work-queue consumer ``durable`` of ``stream``.

        Fires and shots are taken the same way: explicit acks, an engine silent
        for ``ack_wait`` loses what it holds, and ``in_flight`` (the consumer's
        max-ack-pending) bounds what the whole site holds at once.
        """
        consumer = ConsumerConfig(
            name=durable,
            durable_name=durable,
            filter_subject=subject,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.config.ack_wait,
            max_ack_pending=in_flight,
            max_deliver=max_deliver,
        )
        await self.js.add_consumer(stream, consumer)

    # -- connection state --------------------------------------------------------

    async def _disconnected(self) -> None:
        if self.connected.is_set() and not self._closing:
            self.disconnects += 1
            log.warning("cluster %s: lost the NATS server; queueing", self.config.name)
        self.connected.clear()

    async def _reconnected(self) -> None:
        log.info("cluster %s: NATS server back (%d waiting to be sent)", self.config.name,
                 len(self.outbox))  # fmt: skip
        self.connected.set()
        for callback in self.on_reconnect:
            callback()

    async def _error(self, exc: Exception) -> None:
        log.debug("cluster %s: %s", self.config.name, exc)

    # -- sending -------------------------------------------------------------------

    def send(self, item: Outgoing) -> None:
        """Queue ``item``; the outbox task sends it as soon as the server takes it."""
        self.outbox.put(item)

    async def _send_loop(self) -> None:
        while True:
            item = await self.outbox.next()
            await self.connected.wait()
            try:
                await self._send(item)
            except asyncio.CancelledError:
                raise
            except (nats.js.errors.ServiceUnavailableError, nats.js.errors.ServerError) as exc:
                # JetStream still starting after a server restart: again soon.
                log.debug("cluster: sending %s failed (%s); again soon", item.subject, exc)
                await asyncio.sleep(0.2)
            except nats.js.errors.APIError as exc:
                # Refused for good (a full queue, a payload too big): counted, not retried.
                log.warning("cluster: %s refused: %s", item.subject, exc)
                self.outbox.done(item)
                self.outbox.dropped += 1
            except (nats.errors.Error, OSError) as exc:
                log.debug("cluster: sending %s failed (%s); again soon", item.subject, exc)
                await asyncio.sleep(0.2)
            else:
                self.outbox.done(item)

    async def _send(self, item: Outgoing) -> None:
        assert self.nc is not None
        if item.jetstream:
            await self.js.publish(item.subject, item.data, headers=item.headers, timeout=2.0)
        else:
            await self.nc.publish(item.subject, item.data, headers=item.headers)

    async def flush(self, timeout: float) -> None:
        """Wait (up to ``timeout`` s) until the outbox is empty; what is left is counted lost."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(self.outbox):
                    await asyncio.sleep(0.02)
        if self.nc is not None and self.nc.is_connected:
            with contextlib.suppress(Exception):
                await self.nc.flush(timeout=1)

    async def close(self) -> None:
        self._closing = True
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
            self._sender = None
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.close()
