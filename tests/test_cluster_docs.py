"""docs/cluster.md as it stands: its settings load, its server command and units run."""

from __future__ import annotations

import asyncio
import configparser
import re
import shlex
import subprocess
import sys
from pathlib import Path

import nats

from engine.cluster.devserver import find_binary, free_port
from engine.rules.loader import load_rules

DOC = (Path(__file__).resolve().parents[1] / "docs" / "cluster.md").read_text(encoding="utf-8")


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC, re.S)


def test_the_settings_load_and_name_the_variables_of_the_credentials(tmp_path: Path) -> None:
    yaml_block, _ = blocks("yaml")
    path = tmp_path / "site.yaml"
    path.write_text(yaml_block + "rules:\n  t:\n    when: {type: schedule, every: 1s}\n"
                    "    do: {type: log, message: t}\n")  # fmt: skip
    rules = load_rules([path], env={"NATS_USER": "engine", "NATS_PASSWORD": "pw-from-env"})
    cluster = rules.settings.cluster
    assert cluster is not None and cluster.name == "lab"
    assert (cluster.user_env, cluster.password_env) == ("NATS_USER", "NATS_PASSWORD")
    assert cluster.ack_wait == 30 and cluster.duplicate_window == 120
    assert cluster.tls is not None and cluster.tls.ca == "/etc/cuecap/nats-ca.pem"
    assert cluster.lease == 5 and cluster.streams.max_age == 600
    assert (cluster.streams.max_bytes, cluster.streams.queue) == (1024**3, 64 * 1024**2)


def test_the_fanned_out_sources_load_with_the_settings(tmp_path: Path) -> None:
    from engine.rules.model import NatsSourceConfig, WebSocketSourceConfig

    settings, streams = blocks("yaml")
    path = tmp_path / "site.yaml"
    path.write_text(settings + streams)
    rules = load_rules([path], env={"NATS_USER": "engine", "NATS_PASSWORD": "pw"})
    lab, remote = rules.sources["lab"], rules.sources["lab-remote"]
    assert isinstance(lab, WebSocketSourceConfig) and lab.publish_to == "lab"
    assert isinstance(remote, NatsSourceConfig) and remote.stream == "lab"
    assert remote.max_lag == 5 and rules.recorders["moves"].source == "lab-remote"


def _local(command: str, store: Path, port: int) -> list[str]:
    """The documented command on this machine: the dev binary, a temp store, loopback."""
    argv = shlex.split(command)
    text = " ".join(argv[1:])
    text = text.replace("/var/lib/nats", str(store)).replace("0.0.0.0", "127.0.0.1")
    text = text.replace("4222", str(port))
    return [find_binary(), *shlex.split(text)]


def test_the_server_command_and_units_run_a_site(tmp_path: Path) -> None:
    (command,) = blocks("sh")
    nats_unit, engine_unit = (configparser.ConfigParser(interpolation=None) for _ in range(2))
    nats_text, engine_text = blocks("ini")
    nats_unit.read_string(nats_text)
    engine_unit.read_string(engine_text)
    # The unit starts the server the way the command does.
    assert shlex.split(nats_unit["Service"]["ExecStart"])[1:] == shlex.split(command)[1:]
    port = free_port()
    server = subprocess.Popen(_local(command.strip(), tmp_path / "store", port))
    try:
        asyncio.run(_jetstream_answers(port))
        rules = tmp_path / "rules"
        rules.mkdir()
        (rules / "site.yaml").write_text(
            f"settings:\n  cluster: {{nats: 'nats://127.0.0.1:{port}', name: lab}}\n"
            "rules:\n  t:\n    when: {type: schedule, every: 0.5s}\n"
            "    do: {type: log, message: t}\n"
        )
        argv = shlex.split(engine_unit["Service"]["ExecStart"])
        assert Path(argv[0]).name == "cuecap" and argv[-1] == "/etc/cuecap/rules"
        local = [sys.executable, "-m", "engine", *argv[1:-1], str(rules), "--for", "1.5"]
        done = subprocess.run(local, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "rule firings: " in done.stdout and "t: " in done.stdout
    finally:
        server.terminate()
        server.wait(10)


async def _jetstream_answers(port: int) -> None:
    for _ in range(100):
        try:
            nc = await nats.connect(f"nats://127.0.0.1:{port}", max_reconnect_attempts=1)
            break
        except Exception:
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("the documented nats-server command did not listen")
    try:
        info = await nc.jetstream().account_info()
        assert info.limits is not None  # JetStream is on
    finally:
        await nc.close()
