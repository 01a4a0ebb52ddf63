"""MQTT: topic rules, the bridge core, and the adapter against a real Mosquitto broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import trustme

from engine.core.clock import ManualClock
from engine.events import RecordingStarted, RecordingStopped, ShotSaved
from engine.mqtt.bridge import Bridge, Command, CommandKind
from engine.mqtt.client import MqttAdapter
from engine.mqtt.config import HomeAssistant, MqttSettings
from engine.mqtt.topics import filter_problem, matches, topic_problem
from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules
from engine.runtime.adapters import rule_adapters
from engine.runtime.engine import Engine
from engine.runtime.rulebook import Rulebook
from engine.shots.testing import make_jpeg
from tests.mosquitto import Broker, start_broker
from tests.test_runtime import T0, rule_file

JPEG = make_jpeg(40, 30, "teal", "mqtt")


def camera_jpeg(request: object) -> bytes:
    """The python camera of these tests."""
    return JPEG


# -- topics ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "topic_filter", "expected"),
    [
        ("frigate/events", "frigate/events", True),
        ("frigate/events", "frigate/+", True),
        ("frigate/events", "frigate/#", True),
        ("frigate", "frigate/#", True),  # '#' also matches the parent level
        ("frigate/cam/person", "frigate/+", False),
        ("frigate/cam/person", "+/+/person", True),
        ("home/a/motion", "home/+/motion", True),
        ("home/motion", "home/+/motion", False),
        ("$SYS/broker/uptime", "#", False),  # $ topics only for filters naming them
        ("$SYS/broker/uptime", "$SYS/#", True),
        ("a/b", "a/b/c", False),
    ],
)
def test_topic_matching_follows_mqtt(topic: str, topic_filter: str, expected: bool) -> None:
    assert matches(topic, topic_filter) is expected
    if not topic.startswith("$"):  # aiomqtt's matcher leaves out the $ rule (MQTT 4.7.2)
        assert aiomqtt.Topic(topic).matches(topic_filter) is expected


@pytest.mark.parametrize("bad", ["a/#/b", "a#", "a/b+", "", "+a/b"])
def test_invalid_filters_say_why(bad: str) -> None:
    assert filter_problem(bad)


def test_valid_filters_and_topics() -> None:
    assert filter_problem("a/+/b/#") is None and filter_problem("#") is None
    assert topic_problem("cuecap/lab/events") is None
    assert topic_problem("a/+") and topic_problem("a/#")


# -- the bridge core ---------------------------------------------------------------


def test_the_bridge_publishes_events_and_retains_state_and_last_shot() -> None:
    bridge = Bridge("cuecap/lab", instance="lab", recorders=["moves"], cameras=["bench"])
    first = bridge.on_connect({"moves": False})
    assert [(m.topic, m.payload, m.retain) for m in first] == [
        ("cuecap/lab/availability", b"online", True),
        ("cuecap/lab/recorders/moves/state", b"idle", True),
    ]
    started = RecordingStarted(time=T0, recorder="moves", source="sim", path="/r/a.bin",
                               reason="activity")  # fmt: skip
    out = bridge.on_event(started)
    assert out[0].topic == "cuecap/lab/events/recording.started" and not out[0].retain
    assert json.loads(out[0].payload) == started.to_json()
    assert (out[1].topic, out[1].payload, out[1].retain) == (
        "cuecap/lab/recorders/moves/state", b"recording", True)  # fmt: skip
    stopped = RecordingStopped(time=T0 + 5, recorder="moves", source="sim", path="/r/a.bin",
                               reason="idle")  # fmt: skip
    assert bridge.on_event(stopped)[1].payload == b"idle"
    shot = ShotSaved(time=T0 + 6, camera="bench", task="t1", path="/s/bench.jpg", shot_time=T0)
    _, last, image = bridge.on_event(shot)
    assert last.topic == "cuecap/lab/cameras/bench/last_shot" and last.retain
    assert json.loads(last.payload)["iso"] == "2023-11-14T22:13:20+00:00"
    assert (image.topic, image.file, image.retain) == (
        "cuecap/lab/cameras/bench/image", "/s/bench.jpg", True)  # fmt: skip
    assert bridge.will().payload == b"offline" and bridge.will().retain


def test_commands_name_known_cameras_and_recorders_only() -> None:
    bridge = Bridge("cuecap/lab", instance="lab", recorders=["moves"], cameras=["bench"])
    assert bridge.command("cuecap/lab/cameras/bench/shot", b"PRESS") == Command(
        CommandKind.SHOT, "bench")  # fmt: skip
    assert bridge.command("cuecap/lab/recorders/moves/set", b"Start\n") == Command(
        CommandKind.RECORDER, "moves", "start")  # fmt: skip
    assert bridge.command("cuecap/lab/recorders/moves/set", b"explode") is None
    assert bridge.command("cuecap/lab/cameras/nope/shot", b"") is None
    assert bridge.command("frigate/events", b"{}") is None


def test_home_assistant_discovery_announces_each_entity_and_removes_gone_ones() -> None:
    bridge = Bridge("cuecap/lab", instance="lab", discovery=HomeAssistant(),
                    recorders=["moves"], cameras=["bench"])  # fmt: skip
    configs = {m.topic: json.loads(m.payload) for m in bridge.discovery_messages()}
    assert all(m.retain for m in bridge.discovery_messages())
    sensor = configs["homeassistant/binary_sensor/cuecap_lab/moves_recording/config"]
    assert sensor["state_topic"] == "cuecap/lab/recorders/moves/state"
    assert (sensor["payload_on"], sensor["payload_off"]) == ("recording", "idle")
    assert sensor["availability_topic"] == "cuecap/lab/availability"
    assert sensor["default_entity_id"] == "binary_sensor.cuecap_lab_moves_recording"
    last = configs["homeassistant/sensor/cuecap_lab/bench_last_shot/config"]
    assert last["device_class"] == "timestamp" and last["value_template"] == "{{ value_json.iso }}"
    image = configs["homeassistant/image/cuecap_lab/bench_image/config"]
    assert image["image_topic"] == "cuecap/lab/cameras/bench/image"
    buttons = {t: c for t, c in configs.items() if "/button/" in t}
    assert {(c["command_topic"], c["payload_press"]) for c in buttons.values()} == {
        ("cuecap/lab/cameras/bench/shot", "PRESS"),
        ("cuecap/lab/recorders/moves/set", "start"),
        ("cuecap/lab/recorders/moves/set", "stop"),
    }
    # every command a button sends is one the bridge understands
    for config in buttons.values():
        assert bridge.command(config["command_topic"], config["payload_press"].encode())
    assert len({c["unique_id"] for c in configs.values()}) == len(configs) == 6
    gone = bridge.update(recorders=[], cameras=["bench"])
    removed = [m.topic for m in gone if m.payload == b""]
    assert sorted(removed) == sorted(t for t in configs if "moves" in t)


# -- the mqtt trigger (pure) -------------------------------------------------------


def trigger_rules(tmp_path: Path, body: str) -> Any:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent("""\
        settings:
          mqtt: {url: "mqtt://127.0.0.1:1"}
        """) + textwrap.dedent(body), encoding="utf-8")  # fmt: skip
    return load_rules([path], env={})


def test_an_mqtt_trigger_fires_on_its_topic_and_condition(tmp_path: Path) -> None:
    rules = trigger_rules(tmp_path, """\
        rules:
          person:
            when:
              type: mqtt
              topic: frigate/events
              where: payload.type == "new" && payload.after.label == "person"
            do: {type: log, message: "{topic}: {payload}"}
          motion:
            when: {type: mqtt, topic: "home/+/motion", where: text == "ON"}
            do: {type: log, message: "{topic}"}
        """)  # fmt: skip
    book = Rulebook(rules.rules)
    assert book.mqtt_filters == ("frigate/events", "home/+/motion")
    person = json.dumps({"type": "new", "after": {"label": "person", "camera": "door"}}).encode()
    [firing] = book.on_mqtt("frigate/events", person, T0)
    assert (firing.rule, firing.trigger, firing.event) == ("person", "mqtt", "frigate/events")
    assert firing.facts == {"topic": "frigate/events", "payload": person.decode()}
    car = json.dumps({"type": "new", "after": {"label": "car"}}).encode()
    assert book.on_mqtt("frigate/events", car, T0 + 1) == []
    assert book.on_mqtt("frigate/events", b"not json", T0 + 2) == []  # no .type: False
    assert [f.rule for f in book.on_mqtt("home/hall/motion", b"ON", T0)] == ["motion"]
    assert book.on_mqtt("home/hall/motion", b"OFF", T0) == []
    assert book.on_mqtt("home/motion", b"ON", T0) == []


def test_bad_mqtt_input_is_refused_at_load_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent("""\
        settings:
          mqtt: {url: "mqtt://127.0.0.1:1883", prefix: "cuecap/+"}
        rules:
          a:
            when: {type: mqtt, topic: "frigate/#/x"}
            do: {type: log, message: "{camera}"}
          b:
            when: {type: mqtt, topic: "x", where: "paylod.a == 1"}
            do: {type: publish, topic: "out/#"}
          c:
            when: {type: schedule, every: 1min}
            do: {type: publish, topic: "out/{rule}", payload: "{topic}"}
        """), encoding="utf-8")  # fmt: skip
    with pytest.raises(RuleFileError) as caught:
        load_rules([path], env={})
    errors = [str(e).replace(str(path), "F") for e in caught.value.errors]
    assert errors == [
        "F:2:48: prefix: a topic to publish to has no wildcards ('+', '#'): 'cuecap/+'",
        "F:5:31: topic: '#' must be a whole level and the last one (in 'frigate/#/x')",
        "F:8:44: where: condition 'paylod.a == 1' at column 1: unknown name 'paylod'; "
        "use one of: payload, text, topic",
        "F:9:32: topic: a topic to publish to has no wildcards ('+', '#'): 'out/#'",
        "F:12:55: {topic}: not provided by this trigger of the rule "
        "(available: count, epoch, event, rule, source, time, trigger)",
    ]


def test_an_mqtt_trigger_needs_a_broker_and_secrets_must_be_set(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent("""\
        rules:
          a:
            when: {type: mqtt, topic: "x"}
            do: {type: log, message: "{topic}"}
        """), encoding="utf-8")  # fmt: skip
    with pytest.raises(
        RuleFileError, match=r"rules.yaml:3:\d+: an mqtt trigger needs settings.mqtt"
    ):
        load_rules([path], env={})
    path.write_text('settings:\n  mqtt: {url: "mqtt://h", password_env: MQTT_PASSWORD}\n')
    with pytest.raises(RuleFileError, match="environment variable MQTT_PASSWORD is not set"):
        load_rules([path], env={})
    assert load_rules([path], env={"MQTT_PASSWORD": "x"}).settings.mqtt is not None


# -- against a real broker -----------------------------------------------------------


@pytest.fixture(name="broker")
def broker_fixture(tmp_path: Path) -> Iterator[Broker]:
    running = start_broker(tmp_path / "broker")
    try:
        yield running
    finally:
        running.stop()


async def collect(broker: Broker, topic_filter: str, into: list[aiomqtt.Message],
                  ready: asyncio.Event) -> None:  # fmt: skip
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(topic_filter, qos=1)
        ready.set()
        async for message in client.messages:
            into.append(message)


@pytest.fixture
async def listener(broker: Broker) -> AsyncIterator[tuple[list[aiomqtt.Message], asyncio.Event]]:
    messages: list[aiomqtt.Message] = []
    ready = asyncio.Event()
    task = asyncio.create_task(collect(broker, "#", messages, ready))
    await asyncio.wait_for(ready.wait(), 5)
    yield messages, ready
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def by_topic(messages: list[aiomqtt.Message], topic: str) -> list[bytes]:
    return [m.payload for m in messages if m.topic.value == topic]  # type: ignore[misc]


async def test_a_run_publishes_its_events_states_and_shots_to_the_broker(
    tmp_path: Path, broker: Broker, listener: tuple[list[aiomqtt.Message], asyncio.Event]
) -> None:
    messages, _ = listener
    body = """\
    rules:
      on-start:
        when: {type: event, event: recording.started, recorder: moves}
        do: {type: shot, cameras: bench}
    """
    path = rule_file(tmp_path, body)
    path.write_text(path.read_text().replace(
        "settings:\n", f"settings:\n  mqtt: {{url: {broker.url}, instance: lab}}\n"),
        encoding="utf-8")  # fmt: skip
    rules = load_rules([path], env={})
    summary = await Engine(rules, clock=ManualClock(T0), adapters=rule_adapters(rules)).run(20)
    assert summary.segments and summary.shots_ok
    await until(lambda: by_topic(messages, "cuecap/lab/availability")[-1:] == [b"offline"])
    events = [json.loads(m.payload) for m in messages  # type: ignore[arg-type]
              if m.topic.matches("cuecap/lab/events/+")]  # fmt: skip
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "engine.started" and kinds.count("engine.stopping") == 1
    assert kinds.count("recording.started") == kinds.count("recording.stopped") == len(
        summary.segments)  # fmt: skip
    assert kinds.count("shot.success") == len(summary.shots_ok)
    started = next(e for e in events if e["kind"] == "recording.started")
    assert started["recorder"] == "moves" and started["v"] == 1
    assert by_topic(messages, "cuecap/lab/availability") == [b"online", b"offline"]
    states = by_topic(messages, "cuecap/lab/recorders/moves/state")
    assert states[0] == b"idle" and states[-1] == b"idle" and b"recording" in states
    images = by_topic(messages, "cuecap/lab/cameras/bench/image")
    assert images[-1] == Path(summary.shots_ok[-1]).read_bytes()  # the JPEG, byte for byte
    # retained: a client connecting now gets the state and the last shot at once
    late: list[aiomqtt.Message] = []
    ready = asyncio.Event()
    task = asyncio.create_task(collect(broker, "cuecap/lab/#", late, ready))
    await until(lambda: len(by_topic(late, "cuecap/lab/cameras/bench/image")) == 1)
    task.cancel()
    assert by_topic(late, "cuecap/lab/availability") == [b"offline"]
    last = json.loads(by_topic(late, "cuecap/lab/cameras/bench/last_shot")[0])
    assert last["path"] == summary.shots_ok[-1]


def live_rules(tmp_path: Path, broker: Broker, rules: str, extra: str = "") -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        settings:
          timezone: UTC
          shots: {{folder: {tmp_path / "shots"}}}
          mqtt: {{url: {broker.url}, instance: lab, reconnect_initial: 0.05, reconnect_max: 0.2}}
        cameras:
          door: {{type: python, function: "tests.test_mqtt:camera_jpeg"}}
        """) + textwrap.dedent(extra) + textwrap.dedent(rules), encoding="utf-8")  # fmt: skip
    return path


async def test_a_message_on_a_watched_topic_fires_a_shot_and_publish_sends_on(
    tmp_path: Path, broker: Broker, listener: tuple[list[aiomqtt.Message], asyncio.Event]
) -> None:
    messages, _ = listener
    path = live_rules(tmp_path, broker, """\
        rules:
          person-at-door:
            when:
              type: mqtt
              topic: frigate/events
              where: payload.type == "new" && payload.after.label == "person"
            do:
              - {type: shot, cameras: door}
              - {type: publish, topic: "lab/seen/{camera}", payload: "{path}", retain: true}
        """)  # fmt: skip
    rules = load_rules([path], env={})
    engine = Engine(rules, adapters=rule_adapters(rules))
    run = asyncio.create_task(engine.run())
    await until(lambda: by_topic(messages, "cuecap/lab/availability") == [b"online"])
    async with aiomqtt.Client(broker.host, broker.port) as client:
        car = {"type": "new", "after": {"label": "car"}}
        await client.publish("frigate/events", json.dumps(car), qos=1)
        person = {"type": "new", "after": {"label": "person", "camera": "door"}}
        await client.publish("frigate/events", json.dumps(person), qos=1)
    await until(lambda: by_topic(messages, "lab/seen/door"))
    engine.request_stop("test done")
    summary = await run
    assert [f.rule for f in summary.firings] == ["person-at-door"]
    [shot] = summary.shots_ok
    assert Path(shot).read_bytes() == JPEG
    assert by_topic(messages, "lab/seen/door") == [shot.encode()]


async def test_buttons_over_mqtt_take_shots_and_drive_recorders(
    tmp_path: Path, broker: Broker, listener: tuple[list[aiomqtt.Message], asyncio.Event]
) -> None:
    messages, _ = listener
    path = live_rules(tmp_path, broker, "", extra="""\
        sources:
          sim: {type: simulator, seed: 1, fps: 5, image_size: [64, 48], idle: [100, 100]}
        recorders:
          manual: {source: sim, pre_roll: 0}
        """)  # fmt: skip
    path.write_text(path.read_text().replace(
        "instance: lab,", "instance: lab, homeassistant: true,"), encoding="utf-8")  # fmt: skip
    rules = load_rules([path], env={})
    engine = Engine(rules, adapters=rule_adapters(rules), recordings=tmp_path / "rec")
    run = asyncio.create_task(engine.run())
    await until(lambda: by_topic(messages, "cuecap/lab/recorders/manual/state") == [b"idle"])
    configs = {m.topic.value: json.loads(m.payload) for m in messages  # type: ignore[arg-type]
               if m.topic.matches("homeassistant/#") and m.payload}  # fmt: skip
    shoot = configs["homeassistant/button/cuecap_lab/door_shot/config"]
    start = configs["homeassistant/button/cuecap_lab/manual_start/config"]
    stop = configs["homeassistant/button/cuecap_lab/manual_stop/config"]
    async with aiomqtt.Client(broker.host, broker.port) as client:
        # press the buttons the way Home Assistant does: their command topic and payload
        await client.publish(shoot["command_topic"], shoot["payload_press"], qos=1)
        await client.publish(start["command_topic"], start["payload_press"], qos=1)
        await until(
            lambda: b"recording" in by_topic(messages, start["command_topic"][:-4] + "/state")
        )
        await client.publish(stop["command_topic"], stop["payload_press"], qos=1)
    await until(lambda: by_topic(messages, "cuecap/lab/recorders/manual/state")[-1] == b"idle"
                and len(by_topic(messages, "cuecap/lab/cameras/door/image")) == 1)  # fmt: skip
    engine.request_stop("test done")
    summary = await run
    assert len(summary.shots_ok) == 1 and len(summary.segments) == 1
    assert summary.segments[0].start_reason == "mqtt"
    assert by_topic(messages, "cuecap/lab/cameras/door/image") == [JPEG]


async def retained(broker: Broker, topic_filter: str, count: int) -> dict[str, bytes]:
    """The retained messages under ``topic_filter`` (a fresh client gets them at once)."""
    got: list[aiomqtt.Message] = []
    ready = asyncio.Event()
    task = asyncio.create_task(collect(broker, topic_filter, got, ready))
    try:
        await until(lambda: len(got) >= count)
    finally:
        task.cancel()
    return {m.topic.value: m.payload for m in got}  # type: ignore[misc]


async def test_the_engine_runs_on_while_the_broker_is_away_and_catches_up(tmp_path: Path) -> None:
    port_holder = start_broker(tmp_path / "b0")
    port = port_holder.port
    port_holder.stop()  # the broker is down when the engine starts
    settings = MqttSettings(url=f"mqtt://127.0.0.1:{port}", instance="lab", buffer=5, events=False,
                            reconnect_initial=0.05, reconnect_max=0.1)  # fmt: skip
    down = Broker("127.0.0.1", port, None, tmp_path)  # type: ignore[arg-type]
    rules = load_rules([live_rules(tmp_path, down, "")], env={})
    adapter = MqttAdapter(settings)
    engine = Engine(rules, adapters=[adapter])
    run = asyncio.create_task(engine.run())
    await until(lambda: engine.core.accepting)
    for i in range(12):  # more than the buffer holds: the oldest go
        adapter.publish(f"lab/count/{i:02d}", str(i).encode(), retain=True)
    assert adapter.dropped == 7 and len(adapter._buffer) == 5
    back = start_broker(tmp_path / "b1", port)
    try:
        await until(lambda: adapter.connected.is_set() and not adapter._buffer)
        kept = await retained(back, "lab/count/#", 5)
        assert kept == {f"lab/count/{i:02d}": str(i).encode() for i in range(7, 12)}
        back.stop()  # the broker goes away mid-run...
        await until(lambda: not adapter.connected.is_set())
        adapter.publish("lab/away", b"kept for later", retain=True)
        back = start_broker(tmp_path / "b2", port)  # ...and comes back
        await until(lambda: adapter.connections == 2 and not adapter._buffer)
        assert (await retained(back, "lab/away", 1)) == {"lab/away": b"kept for later"}
        assert (await retained(back, "cuecap/lab/availability", 1)) == {
            "cuecap/lab/availability": b"online"}  # fmt: skip
        engine.request_stop("test done")
        await run
        assert adapter.dropped == 7
    finally:
        back.stop()


async def test_a_crash_leaves_offline_behind_through_the_last_will(
    tmp_path: Path, broker: Broker
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(f"settings:\n  mqtt: {{url: {broker.url}, instance: lab}}\n", encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "engine", "run", str(path), "--no-http"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        state: dict[str, bytes] = {}
        async with asyncio.timeout(20):
            while state.get("cuecap/lab/availability") != b"online":
                state = await retained(broker, "cuecap/lab/availability", 1)
        process.kill()  # no clean stop: only the broker can say it
        process.wait(10)
        async with asyncio.timeout(10):
            while state.get("cuecap/lab/availability") != b"offline":
                state = await retained(broker, "cuecap/lab/availability", 1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def test_tls_and_credentials_from_the_environment(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_file))
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "lab", "broker-pw"],
                   check=True, timeout=10)  # fmt: skip
    secure = start_broker(tmp_path / "broker", passwords=passwords, tls=(chain, key))
    try:
        path = tmp_path / "rules.yaml"
        path.write_text(textwrap.dedent(f"""\
            settings:
              mqtt:
                url: mqtts://127.0.0.1:{secure.port}
                tls: {{ca: {ca_file}}}
                username_env: MQTT_USER
                password_env: MQTT_PASSWORD
                instance: lab
            """), encoding="utf-8")  # fmt: skip
        env = {"MQTT_USER": "lab", "MQTT_PASSWORD": "broker-pw"}
        rules = load_rules([path], env=env)
        [adapter] = rule_adapters(rules, env=env)
        assert isinstance(adapter, MqttAdapter)
        engine = Engine(rules, adapters=[adapter])
        run = asyncio.create_task(engine.run())
        await asyncio.wait_for(adapter.connected.wait(), 10)
        engine.request_stop("test done")
        await run
        assert adapter.published >= 3  # online, engine.started, ..., offline
        wrong = MqttAdapter(rules.settings.mqtt, env={**env, "MQTT_PASSWORD": "nope"})  # type: ignore[arg-type]
        engine = Engine(rules, adapters=[wrong])
        run = asyncio.create_task(engine.run())
        await until(lambda: wrong.last_error is not None)
        engine.request_stop("test done")
        await run
        assert not wrong.connected.is_set() and wrong.connections == 0
        assert (
            "authori" in (wrong.last_error or "").lower()
            or "password" in (wrong.last_error or "").lower()
        )
    finally:
        secure.stop()


def test_check_explains_the_broker_and_mqtt_rules(tmp_path: Path) -> None:
    from engine.rules.describe import explain

    rules = trigger_rules(tmp_path, """\
        rules:
          doorbell:
            when: {type: mqtt, topic: home/doorbell, where: text == "pressed"}
            do: {type: publish, topic: "home/doorbell/seen", payload: "{payload}", retain: true}
        """)  # fmt: skip
    text = explain(rules, T0)
    assert "mqtt: 127.0.0.1:1, topics under cuecap/" in text
    assert 'when mqtt home/doorbell where text == "pressed"' in text
    assert "do   publish home/doorbell/seen: '{payload}' (retained)" in text


async def test_a_reload_subscribes_to_new_topics_and_sends_to_new_targets(
    tmp_path: Path, broker: Broker
) -> None:
    from engine.events import ReloadApplied, SendSucceeded
    from tests.http_standin import StandIn

    rules_text = """\
        targets:
          hook: {{type: webhook, url: "{url}/{name}"}}
        rules:
          ping:
            when: {{type: mqtt, topic: "{topic}"}}
            do: {{type: send, to: hook, message: "{{topic}}: {{payload}}"}}
        """
    with StandIn() as hook:
        path = live_rules(
            tmp_path, broker, rules_text.format(url=hook.url, name="one", topic="lab/one")
        )
        rules = load_rules([path], env={})
        engine = Engine(rules, adapters=rule_adapters(rules), watch=[path], reload_debounce=0.05)
        seen: list[object] = []
        engine.subscribe(seen.append)
        run = asyncio.create_task(engine.run())
        adapter = engine.adapters[0]
        assert isinstance(adapter, MqttAdapter)
        await asyncio.wait_for(adapter.connected.wait(), 10)
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.publish("lab/one", b"1", qos=1)
            await until(lambda: len(hook.requests) == 1)
            new = rules_text.format(url=hook.url, name="two", topic="lab/two")
            path.write_text(path.read_text().split("targets:")[0] + textwrap.dedent(new))
            await until(lambda: any(isinstance(e, ReloadApplied) for e in seen))
            await until(lambda: "lab/two" in adapter._subscribed)
            await client.publish("lab/one", b"old topic", qos=1)
            await client.publish("lab/two", b"2", qos=1)
            await until(lambda: len([e for e in seen if isinstance(e, SendSucceeded)]) == 2)
        engine.request_stop("test done")
        await run
    assert [(r.path, r.json()["message"]) for r in hook.requests] == [
        ("/one", "lab/one: 1"),
        ("/two", "lab/two: 2"),  # the changed target's new URL; the old topic is no more
    ]


async def test_a_topic_no_broker_would_take_is_refused_not_queued() -> None:
    adapter = MqttAdapter(MqttSettings(url="mqtt://127.0.0.1:1"))
    for topic in ("", "lab/+/x", "lab/#", "x" * 70_000):
        adapter.publish(topic, b"payload")
    adapter.publish("lab/ok", b"payload")
    assert [m.topic for m in adapter._buffer] == ["lab/ok"] and adapter.dropped == 0
