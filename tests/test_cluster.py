"""Engines of one site on a real nats-server, in one process: fires once, shots bounded, events.

Each test starts nats-server with JetStream on 127.0.0.1 (a free port, a
temporary store) and runs two engines in one loop, each with its own
connection, as two machines would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import nats
import pytest

from engine.cluster.devserver import NatsServer
from engine.cluster.errors import ClusterError
from engine.cluster.site import ClusterAdapter
from engine.rules.loader import RuleSet, load_rules
from engine.runtime.engine import Engine
from engine.shots.testing import HttpCameraServer
from tests.natsserver import nats_server

__all__ = ["nats_server"]


def site_rules(
    tmp_path: Path,
    server: NatsServer,
    body: str,
    *,
    cluster: str = "",
    env: dict[str, str] | None = None,
) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "settings:\n"
        "  timezone: UTC\n"
        f"  recordings: {tmp_path / 'recordings'}\n"
        f"  shots: {{folder: {tmp_path / 'shots'}, file_name: '{{task}}.jpg', backoff: 0.05,"
        " jitter: 0}\n"
        "  stop_timeout: 1\n"
        f"  cluster: {{nats: {server.url}, name: lab, ack_wait: 2s{cluster}}}\n" + body
    )
    return load_rules([path], env=env or {})


async def run_site(rules: RuleSet, seconds: float, engines: int = 2) -> list[Engine]:
    site = [
        Engine(rules, adapters=[ClusterAdapter(rules.settings.cluster, name=f"e{i}")])  # type: ignore[arg-type]
        for i in range(engines)
    ]
    await asyncio.gather(*(engine.run(seconds) for engine in site))
    return site


async def listen(server: NatsServer, subject: str) -> tuple[Any, list[Any]]:
    nc = await nats.connect(server.url)
    got: list[Any] = []

    async def on(msg: Any) -> None:
        got.append(msg)

    await nc.subscribe(subject, cb=on)
    return nc, got


def fires(site: list[Engine], rule: str) -> Counter[float]:
    return Counter(f.time for engine in site for f in engine.stats.firings if f.rule == rule)


async def test_every_fire_runs_once_on_the_site_and_events_say_which_engine(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    rules = site_rules(
        tmp_path,
        nats_server,
        "rules:\n  tick:\n    when: {type: schedule, every: 0.2s}\n    do: {type: log, message: t}\n",
    )
    nc, events = await listen(nats_server, "cuecap.lab.events.>")
    try:
        site = await run_site(rules, 2.5)
        await nc.flush()
    finally:
        await nc.close()
    counts = fires(site, "tick")
    assert len(counts) >= 10, counts
    assert set(counts.values()) == {1}, "an instant ran twice"
    instants = sorted(counts)
    assert all(abs(b - a - 0.2) < 1e-6 for a, b in itertools.pairwise(instants)), (
        "an instant was missed"
    )
    fired = [m for m in events if m.subject == "cuecap.lab.events.rule.fired"]
    assert sorted(json.loads(m.data)["time"] for m in fired) == instants
    assert {m.headers["Cuecap-Engine"] for m in events} == {"e0", "e1"}  # both report
    started = [m for m in events if m.subject == "cuecap.lab.events.engine.started"]
    assert len(started) == 2 and json.loads(started[0].data)["v"] == 1


async def test_shots_are_bounded_site_wide_and_retried_through_the_queue(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    with HttpCameraServer(delay=0.25, flaky_failures=2) as camera:
        rules = site_rules(
            tmp_path,
            nats_server,
            f"cameras:\n  cam: {{type: http, url: '{camera.url('/flaky')}', max_in_flight: 1,"
            " tries: 3}\n"
            "rules:\n"
            "  a:\n    when: {type: schedule, every: 0.5s}\n    do: {type: shot, cameras: cam}\n"
            "  b:\n    mode: queued\n    when: {type: schedule, every: 0.5s}\n"
            "    do: {type: shot, cameras: cam}\n",
        )
        nc, events = await listen(nats_server, "cuecap.lab.events.shot.*")
        try:
            site = await run_site(rules, 3.0)
            await nc.flush()
            waiting = (await nc.jetstream().stream_info("CUECAP_LAB_SHOTS")).state.messages
        finally:
            await nc.close()
        # Two rules each 0.5 s on two engines would have up to four tries at once.
        assert camera.max_in_flight == 1
        assert len(camera.requests) >= 6
    finals = [json.loads(m.data) for m in events]
    saved = sorted(Path(tmp_path, "shots").glob("*.jpg"))
    ok = [e for e in finals if e["kind"] == "shot.success"]
    assert len(ok) == len(saved) >= 4
    assert len({e["task"] for e in finals}) == len(finals), "a shot has two final statuses"
    assert max(e["tries"] for e in ok) >= 2  # the 503s were retried (nak with delay)
    # every fire asked one shot, and every shot asked ended once or waits for the next engine
    asked = sum(sum(fires(site, r).values()) for r in ("a", "b"))
    assert asked == len(finals) + waiting
    summaries: Counter[str] = Counter()
    for engine in site:
        summaries.update(engine.stats.shot_counts)
    assert summaries["ok"] == len(ok)


async def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    from engine.cluster.devserver import free_port

    server = NatsServer(tmp_path / "nats", port=free_port())  # never started
    rules = site_rules(
        tmp_path,
        server,
        "rules:\n  tick:\n    when: {type: schedule, every: 1s}\n    do: {type: log, message: t}\n",
        cluster=", connect_timeout: 1",
    )
    engine = Engine(rules, adapters=[ClusterAdapter(rules.settings.cluster)])  # type: ignore[arg-type]
    with pytest.raises(ClusterError, match=f"cannot connect to nats://127.0.0.1:{server.port}"):
        await engine.run(1)


async def test_losing_the_server_keeps_recording_and_fires_each_instant_once_after(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    rules = site_rules(
        tmp_path,
        nats_server,
        "sources:\n"
        "  sim: {type: simulator, seed: 3, fps: 5, image_size: [32, 32], idle: [0.5, 1],"
        " first_burst_delay: 0.2}\n"
        "recorders:\n"
        "  moves: {activity: [{type: message, types: [electrode_state]}], pre_roll: 0.5,"
        " post_roll: 0.5}\n"
        "rules:\n"
        "  tick:\n    mode: queued\n    when: {type: schedule, every: 0.5s}\n"
        "    do: {type: log, message: t}\n",
    )
    adapter = ClusterAdapter(rules.settings.cluster, name="e0")  # type: ignore[arg-type]
    engine = Engine(rules, adapters=[adapter])
    run = asyncio.ensure_future(engine.run(6.0))
    await asyncio.sleep(1.5)
    nats_server.stop()
    frames_before = sum(engine.stats.frames.values())
    await asyncio.sleep(2.0)  # the server is away: 4 fires come due
    frames_during = sum(engine.stats.frames.values()) - frames_before
    assert not adapter.link.connected.is_set()
    waiting = len(adapter.link.outbox)
    nats_server.start()
    summary = await run
    assert frames_during > 0, "the engine stopped reading its source while the server was away"
    assert summary.segment_count >= 1  # and kept recording
    assert waiting >= 4  # fires (and events) waited in the bounded outbox
    counts = fires([engine], "tick")
    assert set(counts.values()) == {1}, "an instant ran twice after the server came back"
    instants = sorted(counts)
    # the fires due while the server was away ran when it came back: none is missing
    assert all(round(b - a, 6) == 0.5 for a, b in itertools.pairwise(instants)), instants
    assert len(instants) >= 9
    assert adapter.link.disconnects == 1
    assert adapter.link.outbox.dropped == 0 and adapter.link.outbox.expired == 0


def test_an_engine_without_cluster_settings_needs_no_nats(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  tick:\n    when: {type: schedule, every: 0.1s}\n    do: {type: log, message: t}\n"
    )
    code = (
        "import asyncio, sys\n"
        "from engine.rules.loader import load_rules\n"
        "from engine.runtime.engine import Engine\n"
        f"summary = asyncio.run(Engine(load_rules([{str(path)!r}], env={{}})).run(0.5))\n"
        "assert summary.firing_counts['tick'] >= 3, summary.firing_counts\n"
        "loaded = sorted(m for m in sys.modules if m == 'nats' or m.startswith(('nats.', "
        "'engine.cluster.')) and m != 'engine.cluster.config')\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("mode", "all_run"), [("restart", True), ("single", False)])
async def test_modes_hold_across_engines(
    tmp_path: Path, nats_server: NatsServer, mode: str, all_run: bool
) -> None:
    """Each run takes 3 s, fires come every 0.5 s: restart cancels the running one wherever
    it runs, so every fire starts; single drops those that came while one was going."""
    rules = site_rules(
        tmp_path,
        nats_server,
        "rules:\n"
        f"  slow:\n    mode: {mode}\n    when: {{type: schedule, every: 0.5s, grace: 0.3s}}\n"
        "    do: {type: run, argv: [sleep, '3']}\n",
    )
    site = await run_site(rules, 3.2)
    counts = fires(site, "slow")
    assert set(counts.values()) == {1}
    if all_run:
        assert len(counts) >= 4
    else:
        assert 1 <= len(counts) <= 2, counts


async def test_a_reload_brings_new_rules_and_cameras_onto_the_site(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    from engine.cluster.shots import ClusterShots

    with HttpCameraServer() as camera:
        body = (
            f"cameras:\n  cam: {{type: http, url: '{camera.url()}', max_in_flight: 1}}\n"
            "rules:\n  a:\n    when: {type: schedule, every: 0.5s}\n"
            "    do: {type: log, message: a}\n"
        )
        rules = site_rules(tmp_path, nats_server, body)
        adapter = ClusterAdapter(rules.settings.cluster, name="e0")  # type: ignore[arg-type]
        engine = Engine(rules, adapters=[adapter])
        run = asyncio.ensure_future(engine.run(4.5))
        await asyncio.sleep(1.2)
        before = adapter.shots
        changed = body.replace("max_in_flight: 1", "max_in_flight: 2") + (
            "  b:\n    mode: queued\n    when: {type: schedule, every: 0.5s}\n"
            "    do: {type: shot, cameras: cam}\n"
        )
        engine._reloaded(await engine.apply(site_rules(tmp_path, nats_server, changed)))
        await run
    assert isinstance(adapter.shots, ClusterShots) and adapter.shots is not before
    assert adapter.shots.limit("cam") == 2
    b = [f for f in engine.stats.firings if f.rule == "b"]
    assert len(b) >= 3, "the new rule's fires did not come through the site's queue"
    assert adapter.shots.stats.requested == len(b)  # its shots went through the site too
    assert set(fires([engine], "a").values()) == {1}


async def test_a_cameras_min_interval_holds_across_engines(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    with HttpCameraServer() as camera:
        rules = site_rules(
            tmp_path,
            nats_server,
            f"cameras:\n  cam: {{type: http, url: '{camera.url()}', min_interval: 1s,"
            " throttle: delay}\n"
            "rules:\n"
            "  a:\n    mode: parallel\n    when: {type: schedule, every: 0.25s}\n"
            "    do: {type: shot, cameras: cam}\n",
        )
        site = await run_site(rules, 3.0)
        served = len(camera.requests)
    asked = sum(fires(site, "a").values())
    # 12 asked in 3 s by two engines; one per second site-wide was served
    assert asked >= 8
    assert 2 <= served <= 4, served


async def test_a_cooldown_holds_across_engines(tmp_path: Path, nats_server: NatsServer) -> None:
    rules = site_rules(
        tmp_path,
        nats_server,
        "rules:\n  t:\n    cooldown: 1s\n    when: {type: schedule, every: 0.25s}\n"
        "    do: {type: log, message: t}\n",
    )
    site = await run_site(rules, 3.0)
    instants = sorted(fires(site, "t"))
    assert 2 <= len(instants) <= 4, instants  # of ~12 due, one per second ran
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(instants))
    skipped = sum(e.adapters[0].firings.stats.skipped["cooled"] for e in site)  # type: ignore[attr-defined]
    assert skipped >= 6


async def test_credentials_come_from_the_variables_the_settings_name(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats", args=("--user", "engine", "--pass", "s3cret-pw"))
    server.start()
    try:
        rules = site_rules(
            tmp_path,
            server,
            "rules:\n  t:\n    when: {type: schedule, every: 0.2s}\n    do: {type: log, message: t}\n",
            cluster=", user_env: NATS_USER, password_env: NATS_PASSWORD, connect_timeout: 1",
            env=(good := {"NATS_USER": "engine", "NATS_PASSWORD": "s3cret-pw"}),
        )
        cluster = rules.settings.cluster
        assert cluster is not None
        engine = Engine(rules, adapters=[ClusterAdapter(cluster, env=good)])
        summary = await engine.run(1.0)
        assert summary.firing_counts["t"] >= 3  # joined the site and ran its fires
        bad = {**good, "NATS_PASSWORD": "wrong"}
        refused = Engine(rules, adapters=[ClusterAdapter(cluster, env=bad)])
        with pytest.raises(ClusterError, match="cannot connect"):
            await refused.run(1.0)
    finally:
        server.stop()


async def test_tls_to_the_server_with_the_ca_the_settings_name(tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_file))
    server = NatsServer(
        tmp_path / "nats", args=("--tls", "--tlscert", str(chain), "--tlskey", str(key))
    )
    server.start()
    try:
        body = "rules:\n  t:\n    when: {type: schedule, every: 0.2s}\n    do: {type: log, message: t}\n"
        rules = site_rules(tmp_path, server, body, cluster=f", tls: {{ca: {ca_file}}}")
        cluster = rules.settings.cluster
        assert cluster is not None
        summary = await Engine(rules, adapters=[ClusterAdapter(cluster)]).run(1.0)
        assert summary.firing_counts["t"] >= 3
        untrusted = site_rules(tmp_path, server, body, cluster=", connect_timeout: 0.5")
        assert untrusted.settings.cluster is not None
        engine = Engine(untrusted, adapters=[ClusterAdapter(untrusted.settings.cluster)])
        with pytest.raises(ClusterError, match="cannot connect"):
            await engine.run(1.0)  # the server's certificate is not trusted without the CA
    finally:
        server.stop()
