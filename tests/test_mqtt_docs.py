"""Every example in docs/mqtt.md works: the YAML loads, the commands shown run as shown."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from engine.events import ShotSaved
from engine.rules.loader import load_rules
from engine.runtime.adapters import rule_adapters
from engine.runtime.engine import Engine
from engine.shots.testing import HttpCameraServer, make_jpeg
from tests.mosquitto import Broker, start_broker
from tests.test_mqtt import collect

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "mqtt.md"
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
YAML = [text for lang, text in BLOCKS if lang == "yaml"]
SHELL = [text for lang, text in BLOCKS if lang == "sh"]
TEXT = [text for lang, text in BLOCKS if lang == "text"]
PYTHON = [text for lang, text in BLOCKS if lang == "python"]
LAB = """\
sources:
  sim: {type: simulator, seed: 1, fps: 5, image_size: [64, 48], idle: [100, 100]}
cameras:
  bench: {type: stream, source: sim}
recorders:
  moves: {source: sim, pre_roll: 0}
"""
SECRETS = {"MQTT_USER": "lab", "MQTT_PASSWORD": "pw-for-tests"}


def block(marker: str) -> str:
    [found] = [text for text in YAML if marker in text]
    return found


@pytest.fixture(name="broker")
def broker_fixture(tmp_path: Path) -> Iterator[Broker]:
    running = start_broker(tmp_path / "broker")
    try:
        yield running
    finally:
        running.stop()


def command(line: str, broker: Broker) -> list[str]:
    """A documented command with the broker's port, run by this interpreter's cuecap."""
    line = line.replace("1883", str(broker.port)).replace("homeassistant.local", "127.0.0.1")
    for name, value in SECRETS.items():
        line = line.replace(f'"${name}"', value)
    argv = shlex.split(line)
    if argv[0] == "cuecap":
        argv = [sys.executable, "-m", "engine", *argv[1:]]
    return argv


@pytest.mark.parametrize("index", range(len(YAML)))
def test_each_example_loads(index: int, tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(YAML[index], encoding="utf-8")
    rules = load_rules([path], env=SECRETS)
    assert rules.settings.mqtt is not None


def test_the_shipped_rules_publish_what_the_docs_show(tmp_path: Path, broker: Broker) -> None:
    mqtt_yaml = tmp_path / "mqtt.yaml"
    mqtt_yaml.write_text(block("# mqtt.yaml").replace("1883", str(broker.port)), encoding="utf-8")
    sub_line, run_line = SHELL[0].strip().splitlines()
    # A retained marker says when mosquitto_sub is subscribed.
    subprocess.run(command("mosquitto_pub -h 127.0.0.1 -p 1883 -t cuecap/lab/x -m ready -r",
                           broker), check=True, timeout=10)  # fmt: skip
    sub = subprocess.Popen(command(sub_line, broker), stdout=subprocess.PIPE)
    try:
        assert sub.stdout is not None
        assert sub.stdout.readline().strip() == b"cuecap/lab/x ready"
        run_line = run_line.replace("/tmp/", f"{tmp_path}/")
        run_argv = command(run_line.replace(" mqtt.yaml", f" {mqtt_yaml}"), broker)
        done = subprocess.run(run_argv, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        lines: list[str] = []
        while not lines or lines[-1] != "cuecap/lab/availability offline":
            # the image topic carries JPEG bytes: not text, and never a line shown
            lines.append(sub.stdout.readline().decode(errors="replace").strip())
    finally:
        sub.kill()
        sub.wait(5)
    shown = [line.split(" ", 1) for line in TEXT[0].strip().splitlines()]
    got = [line.split(" ", 1) for line in lines if " " in line]
    position = 0
    for topic, payload in shown:  # every line shown appears, in the order shown
        pattern = re.escape(payload).replace(r"\.\.\.", ".*")
        while not (got[position][0] == topic and re.fullmatch(pattern, got[position][1])):
            position += 1
            assert position < len(got), f"{topic} {payload} not published (in order)"
    events = [json.loads(p) for t, p in got if t.startswith("cuecap/lab/events/")]
    assert {"recording.started", "recording.stopped", "shot.success"} <= {e["kind"] for e in events}


def recipe_rules(tmp_path: Path, marker: str, broker: Broker, camera: HttpCameraServer) -> Path:
    """A documented rule set, its camera the stand-in HTTP camera, its broker the test's."""
    text = block(marker).replace("1883", str(broker.port))
    text = re.sub(r"http://192\.168\.1\.\d+/snapshot\.jpg", camera.url(), text)
    text = text.replace("settings:\n", f"settings:\n  shots: {{folder: {tmp_path}/shots}}\n")
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("marker", "rule", "published"),
    [("frigate/events", "person-at-the-door", "cuecap/lab/frigate/person"),
     ("home/doorbell", "doorbell", "home/doorbell/shot")],
)  # fmt: skip
async def test_a_recipe_shoots_on_the_message_shown(
    tmp_path: Path, broker: Broker, marker: str, rule: str, published: str
) -> None:
    with HttpCameraServer(jpeg=make_jpeg(64, 48, "navy", "door")) as camera:
        rules = load_rules([recipe_rules(tmp_path, marker, broker, camera)], env={})
        engine = Engine(rules, adapters=rule_adapters(rules))
        shots: list[ShotSaved] = []
        engine.subscribe(lambda e: shots.append(e) if isinstance(e, ShotSaved) else None)
        run = asyncio.create_task(engine.run())
        await asyncio.wait_for(_connected(engine), 10)
        [pub_line] = [s for s in SHELL if f"-t {marker} " in s]
        other = pub_line.replace('"person"', '"car"').replace("pressed", "released")
        got: list[aiomqtt.Message] = []
        ready = asyncio.Event()
        listener = asyncio.create_task(collect(broker, published, got, ready))
        await asyncio.wait_for(ready.wait(), 5)
        for line in (other.strip(), pub_line.strip()):
            done = await asyncio.to_thread(subprocess.run, command(line, broker), timeout=10)
            assert done.returncode == 0
        async with asyncio.timeout(10):
            while not shots:
                await asyncio.sleep(0.01)
        async with asyncio.timeout(10):
            while not got:
                await asyncio.sleep(0.01)
        listener.cancel()
        engine.request_stop("test done")
        summary = await run
    assert [f.rule for f in summary.firings] == [rule]  # not on the other message
    assert Path(shots[0].path or "").read_bytes() == camera.jpeg
    assert got[0].payload == (shots[0].path or "").encode()  # the publish action's message


async def _connected(engine: Engine) -> None:
    adapter = engine.adapters[0]
    await adapter.connected.wait()  # type: ignore[attr-defined]


async def test_the_home_assistant_buttons_shown_start_a_recorder_and_take_a_shot(
    tmp_path: Path,
) -> None:
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), *SECRETS.values()],
                   check=True, timeout=10)  # fmt: skip
    broker = start_broker(tmp_path / "broker", passwords=passwords)
    try:
        settings = tmp_path / "ha.yaml"
        ha = block("homeassistant: true\n").replace("homeassistant.local:1883",
                                                    f"127.0.0.1:{broker.port}")  # fmt: skip
        settings.write_text(ha, encoding="utf-8")
        folders = tmp_path / "out"
        # The shipped rules' names (moves, bench), with no activity of their own: what
        # records is what the button asks, however slowly this machine starts.
        lab = tmp_path / "lab.yaml"
        lab.write_text(LAB, encoding="utf-8")
        rules = load_rules([lab, settings], env=SECRETS)
        engine = Engine(rules, adapters=rule_adapters(rules, env=SECRETS),
                        recordings=folders / "rec", shots_folder=folders / "shots")  # fmt: skip
        seen: list[str] = []  # "kind reason-or-asking-rule"
        engine.subscribe(
            lambda e: seen.append(f"{e.kind.value} {e.data.get('reason') or e.data.get('rule')}")
        )
        run = asyncio.create_task(engine.run())
        await asyncio.wait_for(_connected(engine), 10)
        [buttons] = [s for s in SHELL if "recorders/moves/set" in s]
        for line in buttons.strip().splitlines():
            done = await asyncio.to_thread(subprocess.run, command(line, broker), timeout=10)
            assert done.returncode == 0
        async with asyncio.timeout(10):
            while not {"recording.started mqtt", "shot.success mqtt"} <= set(seen):
                await asyncio.sleep(0.01)
        engine.request_stop("test done")
        summary = await run
    finally:
        broker.stop()
    assert [s.start_reason for s in summary.segments] == ["mqtt"]
    assert seen.count("shot.success mqtt") == 1


def test_the_python_example_builds_the_adapters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [code] = PYTHON
    monkeypatch.chdir(REPO)
    (tmp_path / "mqtt.yaml").write_text(block("# mqtt.yaml"), encoding="utf-8")
    code = code.replace('"mqtt.yaml"', repr(str(tmp_path / "mqtt.yaml")))
    scope: dict[str, object] = {}
    exec(compile(code, str(DOC), "exec"), scope)
    engine = scope["engine"]
    assert [type(a).__name__ for a in engine.adapters] == ["MqttAdapter"]  # type: ignore[attr-defined]
