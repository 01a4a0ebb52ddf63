"""A reload that changes ``settings.mqtt`` or ``targets`` rebuilds them while the engine runs.

Real parts: two Mosquitto brokers, webhook servers on loopback, the rule-file
watcher. The rule file is edited as a user would (the broker's port, the
target's URL); the watcher reloads; what was queued for the old one is not
lost, and what comes after goes to the new one.
"""

from __future__ import annotations

import asyncio
import logging
import textwrap
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from engine.events import Event, ReloadApplied, SendErrored, SendSucceeded
from engine.mqtt.client import MqttAdapter
from engine.notify.message import Notification
from engine.notify.notifier import Notifier
from engine.rules.loader import load_rules
from engine.runtime.adapters import rule_adapters
from engine.runtime.engine import Engine
from tests.http_standin import StandIn
from tests.mosquitto import Broker, start_broker


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def mqtt_rules(path: Path, broker: Broker, extra: str = "") -> None:
    path.write_text(textwrap.dedent(f"""\
        settings:
          mqtt: {{url: {broker.url}, instance: lab, events: false,
                  reconnect_initial: 0.05, reconnect_max: 0.2}}
        """) + textwrap.dedent(extra), encoding="utf-8")  # fmt: skip


async def collect(broker: Broker, into: list[tuple[str, bytes]], ready: asyncio.Event) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe("#", qos=1)
        ready.set()
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            into.append((message.topic.value, message.payload))


async def stop_listening(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def reloads(seen: list[Event]) -> list[ReloadApplied]:
    return [e for e in seen if isinstance(e, ReloadApplied)]


async def test_a_new_broker_port_reconnects_there_and_hands_over_what_was_queued(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    first = start_broker(tmp_path / "a")
    second = start_broker(tmp_path / "b")
    path = tmp_path / "rules.yaml"
    mqtt_rules(path, first)
    rules = load_rules([path], env={})
    engine = Engine(rules, adapters=rule_adapters(rules), watch=[path], reload_debounce=0.05)
    seen: list[Event] = []
    engine.subscribe(seen.append)
    at_second: list[tuple[str, bytes]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(collect(second, at_second, ready))
    run = asyncio.create_task(engine.run())
    try:
        old = engine.adapters[0]
        assert isinstance(old, MqttAdapter)
        await asyncio.wait_for(old.connected.wait(), 10)
        await asyncio.wait_for(ready.wait(), 10)
        first.stop()  # the old broker goes away: what is published now waits in the buffer
        await until(lambda: not old.connected.is_set())
        for n in (1, 2, 3):
            old.publish("lab/out", f"queued {n}".encode())
        assert len(old._buffer) == 3
        mqtt_rules(path, second)  # the user moves the engine to the other broker
        await until(lambda: reloads(seen))
        assert reloads(seen)[0].changes == {"settings": ("mqtt",)}
        [new] = [a for a in engine.adapters if isinstance(a, MqttAdapter)]
        assert new is not old and new.where == f"127.0.0.1:{second.port}"
        assert engine.actions.mqtt is new and old._task is None  # the old one is closed
        new.publish("lab/out", b"after")
        await until(lambda: len([m for m in at_second if m[0] == "lab/out"]) == 4)
    finally:
        engine.request_stop("test done")
        await run
        await stop_listening(listener)
        first.stop()
        second.stop()
    assert [p for t, p in at_second if t == "lab/out"] == [
        b"queued 1",
        b"queued 2",
        b"queued 3",
        b"after",
    ]  # in order, none lost, none twice
    assert ("cuecap/lab/availability", b"online") in at_second  # the new link announced itself
    assert any(
        f"settings.mqtt changed: events now go to 127.0.0.1:{second.port} (was 127.0.0.1:"
        f"{first.port}); 3 queued messages handed over" in r.getMessage()
        for r in caplog.records
    )


PING = """\
    rules:
      ping:
        when: {type: mqtt, topic: lab/in}
        do: {type: publish, topic: lab/out, payload: "pong {payload}"}
    """


async def test_the_old_broker_hears_offline_and_the_new_one_fires_the_rules(
    tmp_path: Path,
) -> None:
    first = start_broker(tmp_path / "a")
    second = start_broker(tmp_path / "b")
    path = tmp_path / "rules.yaml"
    mqtt_rules(path, first, PING)
    rules = load_rules([path], env={})
    engine = Engine(rules, adapters=rule_adapters(rules), watch=[path], reload_debounce=0.05)
    seen: list[Event] = []
    engine.subscribe(seen.append)
    at_first: list[tuple[str, bytes]] = []
    at_second: list[tuple[str, bytes]] = []
    ready = [asyncio.Event(), asyncio.Event()]
    listeners = [
        asyncio.create_task(collect(first, at_first, ready[0])),
        asyncio.create_task(collect(second, at_second, ready[1])),
    ]
    run = asyncio.create_task(engine.run())
    try:
        old = engine.adapters[0]
        assert isinstance(old, MqttAdapter)
        await asyncio.wait_for(old.connected.wait(), 10)
        await asyncio.gather(*(asyncio.wait_for(r.wait(), 10) for r in ready))
        old.publish("lab/out", b"before")
        await until(lambda: ("lab/out", b"before") in at_first)
        mqtt_rules(path, second, PING)
        await until(lambda: reloads(seen))
        new = engine.actions.mqtt
        assert isinstance(new, MqttAdapter) and new is not old
        new.publish("lab/out", b"after", qos=1)
        await until(lambda: ("lab/out", b"after") in at_second)
        await until(lambda: ("cuecap/lab/availability", b"offline") in at_first)
        for broker, payload in ((first, b"to the old"), (second, b"to the new")):
            async with aiomqtt.Client(broker.host, broker.port) as client:
                await client.publish("lab/in", payload, qos=1)
        await until(lambda: ("lab/out", b"pong to the new") in at_second)
        assert old._task is None and old._closing  # the old link hears nothing any more
    finally:
        engine.request_stop("test done")
        await run
        await stop_listening(*listeners)
        first.stop()
        second.stop()
    assert [p for t, p in at_first if t == "lab/out"] == [b"before"]  # nothing after the switch
    assert [p for t, p in at_second if t == "lab/out"] == [b"after", b"pong to the new"]


def target_rules(path: Path, url: str) -> None:
    path.write_text(textwrap.dedent(f"""\
        targets:
          hook: {{type: webhook, url: "{url}", retries: 100,
                  backoff_initial: 0.05, backoff_max: 0.05}}
        """), encoding="utf-8")  # fmt: skip


def note(n: int) -> Notification:
    return Notification(rule="r", text=f"note {n}", values={}, time=float(n))


async def test_a_new_target_url_takes_the_queued_sends_and_the_one_being_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with StandIn(statuses=[503]) as down, StandIn() as moved:
        path = tmp_path / "rules.yaml"
        target_rules(path, down.url + "/in")
        rules = load_rules([path], env={})
        engine = Engine(rules, adapters=rule_adapters(rules), watch=[path], reload_debounce=0.05)
        seen: list[Event] = []
        engine.subscribe(seen.append)
        run = asyncio.create_task(engine.run())
        try:
            await until(lambda: engine.actions.sender is not None)
            sender = engine.actions.sender
            assert sender is not None
            for n in (1, 2, 3):
                assert sender.submit("hook", note(n))
            await until(lambda: len(down.requests) >= 2)  # note 1 is being retried
            target_rules(path, moved.url + "/in")  # the user fixes the URL
            await until(lambda: reloads(seen))
            assert reloads(seen)[0].changes == {"targets": ("hook",)}
            assert sender.submit("hook", note(4))
            await until(lambda: len([e for e in seen if isinstance(e, SendSucceeded)]) == 4)
        finally:
            engine.request_stop("test done")
            await run
    assert [r.json()["message"] for r in moved.requests] == ["note 1", "note 2", "note 3", "note 4"]
    assert {r.json()["message"] for r in down.requests} == {"note 1"}  # the others never went
    assert not [e for e in seen if isinstance(e, SendErrored)]
    assert [a for a in engine.adapters if isinstance(a, Notifier)] == [sender]  # in place
    assert any(
        "targets changed (now: hook): the next sends go with the new settings; 2 queued kept"
        in r.getMessage()
        for r in caplog.records
    )


async def test_the_first_targets_start_a_notifier_and_http_waits_for_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with StandIn() as hook:
        path = tmp_path / "rules.yaml"
        path.write_text("rules: {}\n", encoding="utf-8")
        rules = load_rules([path], env={})
        engine = Engine(rules, adapters=rule_adapters(rules), watch=[path], reload_debounce=0.05)
        seen: list[Event] = []
        engine.subscribe(seen.append)
        run = asyncio.create_task(engine.run())
        try:
            await until(lambda: engine.running)
            assert engine.actions.sender is None and not engine.adapters
            target_rules(path, hook.url + "/in")
            path.write_text(
                path.read_text() + "settings:\n  http: {listen: '127.0.0.1:7999'}\n", "utf-8"
            )
            await until(lambda: reloads(seen))
            assert reloads(seen)[-1].changes == {
                "targets": ("hook",),
                "at_next_start": ("settings.http",),
            }
            sender = engine.actions.sender
            assert isinstance(sender, Notifier) and engine.adapters == [sender]
            assert sender.submit("hook", note(1))
            await until(lambda: any(isinstance(e, SendSucceeded) for e in seen))
        finally:
            engine.request_stop("test done")
            await run
    assert [r.json()["message"] for r in hook.requests] == ["note 1"]
    assert any(
        "settings.http changed: that applies when cuecap run starts again (the HTTP server's "
        "socket is bound, with --http, --no-http and --http-token, before the engine starts)"
        in r.getMessage()
        for r in caplog.records
    )


async def test_settings_mqtt_added_then_removed_connects_then_says_offline(
    tmp_path: Path,
) -> None:
    broker = start_broker(tmp_path / "a")
    path = tmp_path / "rules.yaml"
    path.write_text("rules: {}\n", encoding="utf-8")
    rules = load_rules([path], env={})
    engine = Engine(rules, adapters=rule_adapters(rules), watch=[path], reload_debounce=0.05)
    seen: list[Event] = []
    engine.subscribe(seen.append)
    heard: list[tuple[str, bytes]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(collect(broker, heard, ready))
    run = asyncio.create_task(engine.run())
    try:
        await asyncio.wait_for(ready.wait(), 10)
        await until(lambda: engine.running)
        mqtt_rules(path, broker)
        await until(lambda: len(reloads(seen)) == 1)
        [client] = engine.adapters
        assert isinstance(client, MqttAdapter) and engine.actions.mqtt is client
        await until(lambda: ("cuecap/lab/availability", b"online") in heard)
        path.write_text("rules: {}\n", encoding="utf-8")
        await until(lambda: len(reloads(seen)) == 2)
        assert reloads(seen)[1].changes == {"settings": ("mqtt",)}
        assert engine.adapters == [] and engine.actions.mqtt is None
        await until(lambda: ("cuecap/lab/availability", b"offline") in heard)
    finally:
        engine.request_stop("test done")
        await run
        await stop_listening(listener)
        broker.stop()
