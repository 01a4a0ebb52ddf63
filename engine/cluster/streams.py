"""The site's streams of sources: what ``publish_to:`` and ``type: nats`` become on an engine.

``SiteStreams`` is the cluster adapter's source maker (``Engine`` asks it for
every source it builds): a source with ``publish_to:`` becomes a
``LedSource`` (read on the engine holding its lease, published from there),
a ``type: nats`` source a ``NatsSource`` (read from the stream); every other
source is left to the engine, read by every engine that loads it, as before.
Each stream is declared by the first engine that needs it, with the limits of
``settings.cluster.streams`` (age, bytes; the oldest go first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nats.js.api import DiscardPolicy, KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.kv import KeyValue

from engine.cluster.fanout import LedSource, Publisher
from engine.cluster.feed import NatsSource
from engine.cluster.lease import Lease
from engine.cluster.link import Link
from engine.core.clock import Clock
from engine.core.schema import PURPLEDROP, Schema
from engine.sources.base import Source

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.rules.loader import RuleSet


class SiteStreams:
    """``await streams.start()`` once the link is open; then ``make_source`` per source."""

    def __init__(self, link: Link, clock: Clock) -> None:
        self.link = link
        self.clock = clock
        self.rules: RuleSet | None = None  # the engine's (the adapter sets them on reload)
        self.leases: KeyValue | None = None
        self.sources: dict[str, LedSource | NatsSource] = {}
        self._declared: set[str] = set()

    async def start(self, rules: RuleSet) -> None:
        self.rules = rules
        # Always, even without publish_to: sources yet: a reload may bring the first one.
        self.leases = await self.link.js.create_key_value(
            KeyValueConfig(bucket=self.link.names.lease_bucket, history=1, storage=StorageType.FILE)
        )

    async def declare(self, stream: str) -> None:
        """The stream of ``publish_to: stream``, with the site's limits (once per engine)."""
        if stream in self._declared:
            return
        names, config = self.link.names, self.link.config
        limits = config.streams
        await self.link._stream(  # the link's add-or-update
            StreamConfig(
                name=names.feed_stream(stream),
                subjects=[names.feed_subject(stream)],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                discard=DiscardPolicy.OLD,
                max_age=limits.max_age,
                max_bytes=limits.max_bytes,
                duplicate_window=min(config.duplicate_window, limits.max_age),
            )
        )
        self._declared.add(stream)

    def make_source(self, name: str, config: Any, build: Callable[[], Source]) -> Source | None:
        link, cluster = self.link, self.link.config
        if getattr(config, "type", None) == "nats":
            made: LedSource | NatsSource = NatsSource(
                name, link, config.stream, clock=self.clock, max_lag=config.max_lag,
                batch=config.batch, schema=self._schema_of(config.stream),
                declare=self.declare,
            )  # fmt: skip
        else:
            stream = _stream_of(config)
            if stream is None or self.leases is None:
                return None
            lease = Lease(link, self.leases, name, ttl=cluster.lease)
            publisher = Publisher(link, link.names.feed_subject(stream), cluster.streams.queue,
                                  declare=lambda: self.declare(stream))  # fmt: skip
            made = LedSource(name, build, link=link, lease=lease, publisher=publisher,
                             clock=self.clock)  # fmt: skip
        self.sources[name] = made
        return made

    def leads(self) -> tuple[str, ...]:
        """The ``publish_to:`` sources this engine reads now (it holds their lease)."""
        return tuple(
            sorted(
                name
                for name, source in self.sources.items()
                if isinstance(source, LedSource) and source.lease.holding
            )
        )

    def _schema_of(self, stream: str) -> Schema:
        """The schema of the source publishing ``stream``: its frames decode the same here."""
        rules = self.rules
        for config in rules.sources.values() if rules is not None else ():
            schema = getattr(config, "schema_", None)
            if _stream_of(config) == stream and schema is not None:
                loaded: Schema = schema.loaded
                return loaded
        return PURPLEDROP


def _stream_of(config: Any) -> str | None:
    stream = getattr(config, "publish_to", None)
    return stream if isinstance(stream, str) else None
