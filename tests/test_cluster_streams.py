"""Streams fanned out: one engine reads a device (its lease), others read it from NATS.

Each test starts nats-server with JetStream on 127.0.0.1 (a free port, a
temporary store); engines run in this loop with their own connections, or as
real ``cuecap run`` processes where one has to be SIGKILLed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nats
from websockets.asyncio.server import ServerConnection, serve

from engine.cluster.devserver import NatsServer
from engine.cluster.fanout import LedSource
from engine.cluster.feed import NatsSource
from engine.cluster.site import ClusterAdapter
from engine.core.clock import SYSTEM_CLOCK
from engine.core.frame import Frame, Gap
from engine.proto.purpledrop_pb2 import PurpleDropEvent
from engine.recording.open import open_reader
from engine.rules.loader import RuleSet, load_rules
from engine.runtime.engine import Engine
from tests.natsserver import nats_server

__all__ = ["nats_server"]


def site_rules(tmp_path: Path, server: NatsServer, body: str, *, cluster: str = "") -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "settings:\n"
        "  timezone: UTC\n"
        "  stop_timeout: 1\n"
        f"  cluster: {{nats: {server.url}, name: lab, lease: 1s{cluster}}}\n" + body
    )
    return load_rules([path], env={})


def recorded(engine: Engine, recorder: str) -> list[tuple[bytes, float]]:
    out = []
    for manifest in engine.recorders[recorder].segments:
        out += [(frame.raw, frame.time) for frame in open_reader(manifest.path)]
    return out


def leader_of(site: list[Engine], source: str) -> tuple[Engine, Engine]:
    led = [e for e in site if isinstance(e.known_sources().get(source), LedSource)]
    leading = [e for e in led if e.known_sources()[source].stats.frames]
    assert len(leading) == 1, "exactly one engine read the device"
    other = next(e for e in site if e is not leading[0])
    return leading[0], other


async def test_another_engine_records_the_same_frames_times_and_pre_roll(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    recorder = (
        "{activity: [{type: message, types: [electrode_state]}], pre_roll: 0.5, post_roll: 0.3}"
    )
    rules = site_rules(
        tmp_path,
        nats_server,
        "sources:\n"
        "  sim: {type: simulator, seed: 3, fps: 10, image_size: [32, 32], idle: [0.6, 0.8],"
        " first_burst_delay: 0.8, moves_per_burst: [1, 1],"
        " max_bursts: 2, publish_to: lab-sim}\n"
        "  remote: {type: nats, stream: lab-sim}\n"
        f"recorders:\n  here: {{source: sim, {recorder[1:]}\n"
        f"  there: {{source: remote, {recorder[1:]}\n",
    )
    site = [
        Engine(
            rules,
            recordings=tmp_path / f"rec{i}",
            adapters=[ClusterAdapter(rules.settings.cluster, name=f"e{i}")],  # type: ignore[arg-type]
        )
        for i in range(2)
    ]
    await asyncio.gather(*(engine.run(3.5) for engine in site))
    leader, other = leader_of(site, "sim")
    assert other.known_sources()["sim"].stats.frames == 0  # it never connected to the device
    local = recorded(leader, "here")
    assert len(leader.recorders["here"].segments) == 2  # two bursts, two segments
    remote = recorded(other, "there")
    assert len(local) > 50
    # The same frames, with the receive times the reading engine gave them: pre-roll and all.
    assert remote == local
    assert recorded(other, "here") == []
    # The leader read its own stream too, as any engine would.
    assert recorded(leader, "there") == local
    first_burst = min(t for raw, t in local if PurpleDropEvent.FromString(raw).HasField(
        "electrode_state"))  # fmt: skip
    assert min(t for _, t in remote) <= first_burst - 0.45  # the pre-roll came along
    feed = other.known_sources()["remote"]
    assert isinstance(feed, NatsSource) and feed.stats.gaps == []


# -- a device on a real websocket, engines as processes -------------------------------------


class Device:
    """A websocket device: frame n (an hv_regulator with voltage n) every ``every`` s to all."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.sent = 0
        self.clients: set[ServerConnection] = set()
        self.connections = 0
        self.port = 0
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Device:
        self._server = await serve(self._handler, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self._server.close()
        await self._server.wait_closed()

    async def _handler(self, ws: ServerConnection) -> None:
        self.clients.add(ws)
        self.connections += 1
        try:
            await ws.wait_closed()
        finally:
            self.clients.discard(ws)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            event = PurpleDropEvent()
            event.hv_regulator.voltage = float(self.sent)
            raw = event.SerializeToString()
            self.sent += 1
            for ws in list(self.clients):
                with contextlib.suppress(Exception):
                    await ws.send(raw)


def number(frame: Frame) -> int:
    return int(PurpleDropEvent.FromString(frame.raw).hv_regulator.voltage)


async def test_a_killed_reader_hands_the_device_over_and_consumers_see_one_gap(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with Device() as device:
        rules_file = tmp_path / "site.yaml"
        rules_file.write_text(
            "settings:\n  stop_timeout: 1\n"
            f"  cluster: {{nats: {nats_server.url}, name: lab, lease: 1s}}\n"
            "sources:\n"
            f"  dev: {{type: websocket, url: 'ws://127.0.0.1:{device.port}', publish_to: dev}}\n"
        )
        rules = load_rules([rules_file], env={})
        cluster = rules.settings.cluster
        assert cluster is not None
        # The consumer: a nats source of this process, on its own connection.
        listener = ClusterAdapter(cluster, name="listener")
        await listener.link.open()
        await listener.streams.start(rules)
        feed = listener.streams.make_source(
            "feed", rules.sources.get("dev").model_copy(), lambda: None  # type: ignore[arg-type, union-attr, return-value]
        )
        assert feed is None  # a publish_to source without lease bucket... see below
        await listener.link.close()
