"""Default reconnects reach a restarted LAN server within about a second of its return."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from scripted_server import ScriptedServer, sample_events

from engine.core.clock import SYSTEM_CLOCK
from engine.core.frame import Frame, Gap
from engine.rules.loader import load_rules
from engine.runtime.sources import build_source
from engine.sources.backoff import DEFAULT_MAXIMUM, Backoff
from engine.sources.websocket import WebSocketSource


def test_the_default_delays_are_capped_near_a_second_and_keep_jitter() -> None:
    backoff = Backoff()
    assert 1.0 <= DEFAULT_MAXIMUM <= 2.0
    delays = [backoff.delay(n) for n in range(200)]
    assert max(delays) == DEFAULT_MAXIMUM
    assert sum(delays[:5]) < 3.0  # a short blip is retried quickly
    assert backoff.delay(10, 0.99) < backoff.delay(10, 0.0)  # jitter shortens


def test_rule_files_configure_the_backoff(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            sources:
              pd: {type: websocket, url: "127.0.0.1:1", reconnect_initial: 0.2s,
                   reconnect_max: 2s, reconnect_jitter: 0.5}
            """
        )
    )
    rules = load_rules([path], env={})
    source = build_source("pd", rules.sources["pd"], SYSTEM_CLOCK)
    assert isinstance(source, WebSocketSource)
    assert source.backoff == Backoff(initial=0.2, maximum=2.0, jitter=0.5)


async def test_a_restarted_server_is_reached_by_the_next_attempt() -> None:
    first, second = sample_events(5), sample_events(10)[5:]
    server = await ScriptedServer(first).start()
    port = server.port
    source = WebSocketSource(server.uri)  # the default backoff
    items: list[Frame | Gap] = []

    async def read() -> None:
        async for item in source:
            items.append(item)
            if len(items) == len(first) + 1 + len(second):
                return

    reader = asyncio.ensure_future(read())
    async with asyncio.timeout(10):
        while len(items) < len(first):
            await asyncio.sleep(0.01)
        await server.stop()
        while source.attempts < 5:  # down long enough for the delays to reach their cap
            await asyncio.sleep(0.01)
    back = source.attempts
    server2 = await ScriptedServer(second, port=port).start()
    try:
        async with asyncio.timeout(10):
            await reader
    finally:
        await source.aclose()
        await server2.stop()
    # the attempt after its return connects: at most one capped delay (about 1 s) later
    assert back <= source.attempts <= back + 1
    assert isinstance(items[len(first)], Gap)
    assert [i.raw for i in items if isinstance(i, Frame)] == first + second
