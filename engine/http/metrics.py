"""Prometheus metrics of one engine, read at scrape time from its status.

Counters and gauges are not kept beside the engine's own numbers: a scrape
builds them from ``Engine.status()`` (one snapshot, the same the page shows),
so the frame path pays nothing for metrics. Only what has no counter of its
own is observed as it happens, from the events: how long a shot took from
request to saved image, how late a schedule fired, and how late the event
loop wakes up (measured by the HTTP server's lag probe).

Each engine has its own ``CollectorRegistry``: two engines in one process
(tests, an embedding program) never share or collide on metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from engine.cluster.roster import site_of
from engine.events import Event, RuleFired, ShotErrored, ShotQueued, ShotSaved
from engine.runtime.status import RecorderState

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
PENDING_SHOTS = 10_000  # request times kept for the latency histogram (the queue is smaller)
_CAPTURE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class _StatusCollector:
    """Counters and gauges from one status snapshot per scrape."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        status = self._engine.status()
        history = self._engine.history

        def counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
            return CounterMetricFamily(f"cuecap_{name}", doc, labels=labels)

        def gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"cuecap_{name}", doc, labels=labels)

        frames = counter("source_frames", "Messages received.", ["source"])
        size = counter("source_bytes", "Bytes of messages received.", ["source"])
        invalid = counter("source_invalid_frames", "Messages that were not valid.", ["source"])
        reconnects = counter(
            "source_reconnects", "Connections made again after a loss.", ["source"]
        )
        gaps = counter("source_gaps", "Times the source was away.", ["source"])
        connected = gauge("source_connected", "1 while the source is connected.", ["source"])
        for s in status.sources:
            frames.add_metric([s.name], s.frames)
            size.add_metric([s.name], s.bytes)
            invalid.add_metric([s.name], s.invalid)
            reconnects.add_metric([s.name], s.reconnects)
            gaps.add_metric([s.name], s.gaps)
            connected.add_metric([s.name], 1.0 if s.connected else 0.0)
        yield from (frames, size, invalid, reconnects, gaps, connected)

        state = gauge(
            "recorder_state", "1 for the state the recorder is in.", ["recorder", "state"]
        )
        segments = counter("recorder_segments", "Segment files opened.", ["recorder"])
        written = counter("recorder_bytes_written", "Bytes written to segments.", ["recorder"])
        errors = counter("recorder_errors", "Write errors.", ["recorder"])
        for r in status.recorders:
            for each in RecorderState:
                state.add_metric([r.name, each.value], 1.0 if r.state is each else 0.0)
            segments.add_metric([r.name], r.segment_count)
            open_bytes = r.current.bytes if r.current is not None else 0
            written.add_metric([r.name], history.written.get(r.name, 0) + open_bytes)
            errors.add_metric([r.name], r.errors)
        yield from (state, segments, written, errors)

        shots = counter("shots", "Shots by final status.", ["camera", "status"])
        retries = counter("shot_retries", "Tries after the first.", ["camera"])
        waiting = gauge("shot_queue_depth", "Shots waiting for their turn.", ["camera"])
        in_flight = gauge("shots_in_flight", "Shots being taken now.", ["camera"])
        for c in status.cameras:
            shots.add_metric([c.name, "ok"], c.ok)
            shots.add_metric([c.name, "failed"], c.failed)
            retries.add_metric([c.name], c.retries)
            waiting.add_metric([c.name], c.waiting)
            in_flight.add_metric([c.name], c.in_flight)
        yield from (shots, retries, waiting, in_flight)

        firings = counter("rule_firings", "Times the rule fired.", ["rule"])
        for rule in status.rules:
            firings.add_metric([rule.name], rule.firings)
        yield firings
        errors_total = counter("errors", "Errors of the run (recorders, cameras, sources).", [])
        errors_total.add_metric([], status.error_count)
        yield errors_total
        running = gauge("running", "1 while the engine runs.", [])
        running.add_metric([], 1.0 if status.running else 0.0)
        yield running
        reporter = site_of(self._engine.adapters)
        if reporter is not None:
            site = reporter.site_status()
            engines = gauge("site_engines", "Engines of the site seen alive.", [])
            engines.add_metric([], len(site.engines))
            rule_sets = gauge(
                "site_rule_file_sets", "Different rule files among them (1 when all agree).", []
            )
            rule_sets.add_metric([], len({e.rules_hash for e in site.engines}))
            warnings = gauge("site_warnings", "Warnings about the site.", [])
            warnings.add_metric([], len(site.warnings))
            yield from (engines, rule_sets, warnings)


class Metrics:
    """The registry of one engine and the histograms fed by its events."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_StatusCollector(engine))
        self.capture = Histogram(
            "cuecap_shot_capture_seconds",
            "Seconds from a shot's request to its saved image.",
            ["camera"],
            buckets=_CAPTURE_BUCKETS,
            registry=self.registry,
        )
        self.lateness = Histogram(
            "cuecap_schedule_lateness_seconds",
            "Seconds a schedule fired after its planned instant.",
            ["rule"],
            buckets=_LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "cuecap_event_loop_lag_seconds",
            "How late the event loop woke up for a timer.",
            buckets=_LAG_BUCKETS,
            registry=self.registry,
        )
        self._asked: dict[str, float] = {}
        self._unsubscribe = engine.subscribe(self.on_event)

    def on_event(self, event: Event) -> None:
        if isinstance(event, ShotQueued):
            if len(self._asked) < PENDING_SHOTS:
                self._asked[event.task] = event.time
        elif isinstance(event, ShotSaved):
            asked = self._asked.pop(event.task, None)
            if asked is not None:
                self.capture.labels(event.camera).observe(max(0.0, event.time - asked))
        elif isinstance(event, ShotErrored):
            self._asked.pop(event.task, None)
        elif isinstance(event, RuleFired) and event.trigger == "schedule":
            late = self._engine.clock.time() - event.time
            self.lateness.labels(event.rule).observe(max(0.0, late))

    def render(self) -> bytes:
        """The text exposition format, for ``GET /metrics``."""
        return generate_latest(self.registry)

    def close(self) -> None:
        self._unsubscribe()
