"""Streams fanned out: one engine reads a device (its lease), others read it from NATS.

Each test starts nats-server with JetStream on 127.0.0.1 (a free port, a
temporary store); engines run in this loop with their own connections, or as
real ``cuecap run`` processes where one has to be SIGKILLed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from engine.cluster.devserver import NatsServer
from engine.cluster.fanout import LedSource
from engine.cluster.feed import NatsSource
from engine.cluster.site import ClusterAdapter
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
    adapters = [ClusterAdapter(rules.settings.cluster, name=f"e{i}") for i in range(2)]  # type: ignore[arg-type]
    site = [
        Engine(rules, recordings=tmp_path / f"rec{i}", adapters=[adapter])
        for i, adapter in enumerate(adapters)
    ]
    leads: list[tuple[tuple[str, ...], ...]] = []  # what each engine's site record says it leads

    async def sample() -> None:
        while True:
            leads.append(tuple(adapter.leads() for adapter in adapters))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    await asyncio.gather(*(engine.run(3.5) for engine in site))
    sampler.cancel()
    leader, other = leader_of(site, "sim")
    mine = "e0" if leader is site[0] else "e1"
    assert all(sum(bool(x) for x in sample) <= 1 for sample in leads)  # never two readers
    expected = (("sim",), ()) if mine == "e0" else ((), ("sim",))
    assert expected in leads  # the site record names the engine reading the device
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


async def test_losing_the_server_the_reader_records_on_and_late_frames_are_a_gap(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    everything = "activity: [{type: rate, per_second: 1}], pre_roll: 0, post_roll: 30"
    rules = site_rules(
        tmp_path,
        nats_server,
        "sources:\n"
        "  sim: {type: simulator, seed: 5, fps: 10, image_size: [32, 32], idle: [0.5, 1],"
        " first_burst_delay: 0.2, publish_to: sim}\n"
        "  late: {type: nats, stream: sim, max_lag: 0.5s}\n"
        "  patient: {type: nats, stream: sim, max_lag: 30s}\n"
        f"recorders:\n  all: {{source: sim, {everything}}}\n"
        f"  got: {{source: patient, {everything}}}\n",
    )
    site = [
        Engine(
            rules,
            recordings=tmp_path / f"rec{i}",
            adapters=[ClusterAdapter(rules.settings.cluster, name=f"e{i}")],  # type: ignore[arg-type]
        )
        for i in range(2)
    ]
    runs = asyncio.gather(*(engine.run(6.0) for engine in site))
    await asyncio.sleep(1.5)
    nats_server.stop()
    stopped = time.time()
    reader = next(e.sources["sim"] for e in site if e.sources["sim"].stats.frames)
    assert isinstance(reader, LedSource)
    frames_before = reader.stats.frames
    await asyncio.sleep(2.0)
    assert reader.stats.frames > frames_before + 100, "the reader stopped reading"
    assert len(reader.publisher) > 100  # what it read waits to be published
    nats_server.start()
    restarted = time.time()
    await runs
    leader, other = leader_of(site, "sim")
    assert reader is leader.known_sources()["sim"]
    assert reader.publisher.stats.dropped == 0 and reader.publisher.stats.too_big == 0
    assert other.known_sources()["sim"].stats.frames == 0  # the lease stayed where it was
    local = recorded(leader, "all")
    remote = recorded(other, "got")
    # The patient consumer got everything, late: the same frames with the same times.
    start = remote[0][1]
    end = min(remote[-1][1], local[-1][1])
    assert remote == [(raw, t) for raw, t in local if start <= t <= end]
    assert any(stopped < t < restarted for _, t in remote)
    assert end > restarted + 1
    for engine in site:
        patient, late = (engine.known_sources()[n] for n in ("patient", "late"))
        assert patient.stats.gaps == []
        # The impatient one says it lost the outage: one gap across it, frames on both sides.
        (gap,) = late.stats.gaps
        assert gap.start < stopped + 0.2 and gap.end > restarted - 0.5  # max_lag
        assert "late" in gap.reason
        assert late.stats.frames > 0


async def test_a_reader_cut_off_finds_its_lease_taken_stops_and_reads_again_later(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    rules = site_rules(
        tmp_path,
        nats_server,
        "sources:\n"
        "  sim: {type: simulator, seed: 2, fps: 20, image_size: [32, 32], idle: [0.5, 1],"
        " first_burst_delay: 0.2, publish_to: sim}\n"
        "  remote: {type: nats, stream: sim}\n",
    )
    site = [
        Engine(rules, recordings=tmp_path / f"rec{i}",
               adapters=[ClusterAdapter(rules.settings.cluster, name=f"e{i}")])  # type: ignore[arg-type]
        for i in range(2)
    ]  # fmt: skip
    runs = [asyncio.ensure_future(engine.run(20.0)) for engine in site]
    sources: list[LedSource] = []
    try:
        await _until(lambda: all("sim" in e.sources for e in site), 10, "engines did not start")
        sources = [e.sources["sim"] for e in site]  # type: ignore[misc]
        await _until(lambda: any(s.stats.frames > 20 for s in sources), 10, "nobody read it")
        first, second = sorted(sources, key=lambda s: -s.stats.frames)
        # Cut the reader off from its lease (as a partition would): it lapses, the other
        # engine takes it and reads; the first one does not know yet and reads on.
        task = first.lease._task
        assert task is not None
        task.cancel()
        await _until(lambda: second.stats.frames > 20, 10, "the lease was not taken over")
        assert first.connected
        first.lease.start()  # back: it finds the lease taken and stops reading
        await _until(lambda: not first.connected, 10, "the cut-off reader went on reading")
        left = time.time()
        frames = first.stats.frames
        await asyncio.sleep(0.5)
        assert first.stats.frames == frames
        stopping = site[sources.index(second)]
        stopping.request_stop("test")  # a clean stop hands the lease back at once
        await runs[sources.index(second)]
        await _until(lambda: first.stats.frames > frames + 20, 10, "it did not read again")
    finally:
        for engine in site:
            engine.request_stop("test")
        await asyncio.gather(*runs)
    # Locally, the stretch read by the other engine is one gap, as a reconnect would be.
    (gap,) = first.stats.gaps
    assert gap.start <= left and gap.end > left + 0.5
    assert gap.reason == "read by another engine of the site"
    # The stream: the cut-off reader's late frames were dropped (an older epoch), never twice.
    engine = site[sources.index(first)]
    remote = engine.known_sources()["remote"]
    assert isinstance(remote, NatsSource)
    assert remote.reader.stats.stale > 0
    assert len(remote.stats.gaps) == 2  # the other engine took over; this one again
    assert remote.stats.frames > 60


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


async def _collect(feed: NatsSource, into: list[Frame | Gap]) -> None:
    async for item in feed:
        into.append(item)


def _engine(rules_file: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "--no-watch", str(rules_file)],
        cwd=rules_file.parent,
        stdin=subprocess.DEVNULL,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_a_killed_or_stopped_reader_hands_the_device_over_consumers_see_a_gap(
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
        assert rules.settings.cluster is not None
        # The consumer: a nats source in this process, on its own connection to the site.
        listener = ClusterAdapter(rules.settings.cluster, name="listener")
        await listener.link.open()
        await listener.streams.start(rules)
        feed = listener.streams.make_source(
            "feed", load_rules([_nats_rules(tmp_path, rules_file)], env={}).sources["feed"],
            lambda: None,  # type: ignore[arg-type, return-value]
        )  # fmt: skip
        assert isinstance(feed, NatsSource)
        items: list[Frame | Gap] = []
        reading = asyncio.ensure_future(_collect(feed, items))
        started: list[str] = []

        async def on_started(msg: Any) -> None:
            started.append(msg.headers["Cuecap-Engine"])

        assert listener.link.nc is not None
        await listener.link.nc.subscribe("cuecap.lab.events.engine.started", cb=on_started)
        engines = {}
        for i in range(3):
            process = _engine(rules_file, tmp_path / f"engine-{i}.log")
            engines[process.pid] = process

        async def reader() -> subprocess.Popen[bytes]:
            """The engine holding the device's lease, as the lease says."""
            assert listener.streams.leases is not None
            entry = await listener.streams.leases.get("dev")
            name = json.loads(entry.value or b"{}")["engine"]
            return engines[int(name.rsplit("-", 1)[1])]

        try:
            await _until(lambda: len(started) == 3, 30, "the engines did not start")
            await _until(lambda: len(items) > 40, 10, "no frames came through the stream")
            assert device.connections == 1  # the others stay away from the device
            first = await reader()
            first.send_signal(signal.SIGKILL)
            first.wait()
            killed = time.time()
            await _until(lambda: device.connections == 2, 10, "nobody took the device over")
            taken = time.time()
            await _until(lambda: any(isinstance(i, Gap) for i in items) and
                         isinstance(items[-1], Frame), 10, "no frames after the gap")  # fmt: skip
            count = len(items)
            await _until(lambda: len(items) > count + 20, 10, "frames stopped after the gap")
            # A clean stop hands the device over at once: the lease is released, not lapsed.
            second = await reader()
            assert second is not first
            second.send_signal(signal.SIGTERM)
            assert second.wait(20) == 0
            stopped = time.time()
            await _until(lambda: device.connections == 3, 10, "nobody took the device over")
            count = len(items)
            await _until(lambda: len(items) > count + 20, 10, "frames stopped after the stop")
            third = await reader()
            third.send_signal(signal.SIGTERM)
            assert third.wait(20) == 0
        finally:
            for process in engines.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
            await feed.aclose()
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            await listener.link.close()
    gaps = [i for i in items if isinstance(i, Gap)]
    frames = [i for i in items if isinstance(i, Frame)]
    assert len(gaps) == 2, gaps
    killed_gap, handed_gap = gaps
    stretches = [
        [f for f in frames if f.time <= killed_gap.start],
        [f for f in frames if killed_gap.end <= f.time <= handed_gap.start],
        [f for f in frames if f.time >= handed_gap.end],
    ]
    assert sum(map(len, stretches)) == len(frames)  # no frame inside a gap
    numbers = [number(f) for f in frames]
    assert numbers == sorted(set(numbers)), "a frame came twice or out of order"
    # Without a hole but the ones the gaps say: frames follow one another between them.
    for stretch in stretches:
        assert len(stretch) > 20
        assert [number(f) for f in stretch] == list(range(number(stretch[0]),
                                                          number(stretch[-1]) + 1))  # fmt: skip
    # The first gap runs from the killed engine's last frame to the new reader's connection.
    assert killed_gap.start == stretches[0][-1].time <= killed
    assert killed < killed_gap.end <= taken + 0.5 and killed_gap.end <= stretches[1][0].time
    # The second from the clean stop (after its last frame) to the next reader's connection.
    assert stretches[1][-1].time <= handed_gap.start <= stopped < handed_gap.end
    assert all("reads the source now" in gap.reason for gap in gaps)
    assert [f.seq for f in frames] == list(range(len(frames)))  # numbered as a local source does


def _nats_rules(tmp_path: Path, rules_file: Path) -> Path:
    path = tmp_path / "feed" / "feed.yaml"
    path.parent.mkdir()
    path.write_text(rules_file.read_text() + "  feed: {type: nats, stream: dev}\n")
    return path


async def test_hostile_messages_in_a_stream_are_counted_and_the_good_ones_still_come(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Anyone on the server can publish into a source's stream: what is not ours is refused."""
    rules = site_rules(tmp_path, nats_server, "sources:\n  dev: {type: simulator, publish_to: dev}\n"
                       "  feed: {type: nats, stream: dev}\n")  # fmt: skip
    assert rules.settings.cluster is not None
    adapter = ClusterAdapter(rules.settings.cluster, name="reader")
    await adapter.link.open()
    try:
        await adapter.streams.start(rules)
        feed = adapter.streams.make_source("feed", rules.sources["feed"], lambda: None)  # type: ignore[arg-type, return-value]
        assert isinstance(feed, NatsSource)
        items: list[Frame | Gap] = []
        reading = asyncio.ensure_future(_collect(feed, items))
        await _until(lambda: feed.connected, 5.0, "the source never subscribed")
        nc, subject = adapter.link.nc, adapter.link.names.feed_subject("dev")
        assert nc is not None
        now = time.time()

        def ours(kind: str, seq: int, **extra: str) -> dict[str, str]:
            return {"Cuecap-Item": kind, "Cuecap-Engine": "e9", "Cuecap-Epoch": "1",
                    "Cuecap-Seq": str(seq), "Cuecap-Time": repr(now), **extra}  # fmt: skip

        hostile = [
            None,
            {"Cuecap-Item": "frame"},
            ours("frame", 1, **{"Cuecap-Time": "nan"}),
            ours("frame", 1, **{"Cuecap-Time": "inf"}),
            ours("frame", -5),
            ours("frame", 1, **{"Cuecap-Seq": "9" * 4000}),
            ours("gap", 1, **{"Cuecap-Reason": "r" * 100_000, "Cuecap-Gap-Start": "0"}),
        ]
        await nc.publish(subject, b"", headers=ours("start", 0))
        for headers in hostile:
            await nc.publish(subject, b"\x00" * 1000, headers=headers)
        await nc.publish(subject, PurpleDropEvent().SerializeToString(), headers=ours("frame", 1))
        await nc.flush()
        await _until(lambda: any(isinstance(i, Frame) for i in items), 5.0, "no frame came")
        await feed.aclose()
        await reading
        (frame,) = items  # the garbage made no gap, no frame, and did not end the source
        assert isinstance(frame, Frame) and frame.time == now
        assert feed.stats.invalid == len(hostile)
        assert feed.reader.stats.lost == 0 and feed.reader.last_time == now
    finally:
        await adapter.link.close()


async def test_an_engine_stopping_while_it_takes_the_lease_still_releases_it(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Stopped mid-write, the lease it just took is released, not left to lapse a ttl later."""
    import nats.js.errors

    from engine.cluster.lease import Lease

    rules = site_rules(
        tmp_path, nats_server, "sources:\n  dev: {type: simulator, publish_to: dev}\n"
    )
    assert rules.settings.cluster is not None
    adapter = ClusterAdapter(rules.settings.cluster, name="taker")
    await adapter.link.open()
    try:
        await adapter.streams.start(rules)
        kv = adapter.streams.leases
        assert kv is not None
        lease = Lease(adapter.link, kv, "dev", ttl=60.0)
        lease.start()
        await asyncio.sleep(0)  # its first write is on the wire, its answer not read yet
        await lease.stop()
        assert not lease.holding
        try:
            entry = await kv.get("dev")
        except nats.js.errors.KeyNotFoundError:
            entry = None  # released: the next engine takes it at once
        assert entry is None, f"the lease is still held by {entry.value!r}"
    finally:
        await adapter.link.close()
