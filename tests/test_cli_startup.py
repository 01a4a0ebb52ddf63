"""What ``cuecap run`` says at start: sources, recorders, cameras, rules, folders, how to stop."""

from __future__ import annotations

import shutil
import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from conftest import run_cli as cli
from test_cli_run import REPO

from engine.cli.startup import RunOptions, startup_lines
from engine.rules.loader import load_rules

RULES = """\
settings:
  timezone: Europe/Berlin
  recordings: data/rec
sources:
  lab: {type: websocket, url: "ws://pd.example:7001/?token=${TOKEN}"}
cameras:
  gate: {type: http, url: "http://10.0.0.7/snap.jpg"}
recorders:
  moves:
    source: lab
    activity: [{type: message, types: [electrode_state]}]
rules:
  morning:
    when: {type: schedule, at: "09:00", days: mon-fri}
    do: {type: shot, cameras: gate}
  on-start:
    enabled: false
    when: {type: event, event: recording.started}
    do: {type: log, message: started}
"""


def test_the_lines_name_everything_loaded_with_next_fire_time_and_zone(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(RULES, encoding="utf-8")
    rules = load_rules([path], env={"TOKEN": "s3cret-token"})
    # Saturday 2026-03-07 12:00 in Berlin: the next weekday 09:00 is Monday's
    now = datetime(2026, 3, 7, 12, 0, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    lines = startup_lines(rules, now, RunOptions(duration=90, watch=("rules",)), Path("/srv"))
    assert lines == [
        f"cuecap run: {path} (time zone: Europe/Berlin)",
        "  source lab: websocket ws://pd.example:7001/?token=${TOKEN}",
        "  recorder moves: source lab, activity: message; pre-roll 2s, post-roll 5s; "
        "files in data/rec/moves/",
        "  camera gate: http http://10.0.0.7/snap.jpg",
        "  rule morning: when at 09:00 on mon-fri (next Mon 2026-03-09 09:00:00 CET) "
        "-> shot from gate",
        "  rule on-start (disabled): when event recording.started -> log info: started",
        "recordings go to /srv/data/rec/, shots to /srv/shots/",
        "stops after 1m30s; changes to rules apply while running; "
        "stop with Ctrl-C or SIGTERM (recordings are closed, a summary is printed)",
    ]
    assert not any("s3cret" in line for line in lines)


def test_options_override_the_folders_and_say_virtual_time(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(RULES, encoding="utf-8")
    rules = load_rules([path], env={"TOKEN": "x"})
    options = RunOptions(recordings="/data/r", shots="s", fast=True)
    lines = startup_lines(rules, 0.0, options, Path("/srv"))
    assert "recordings go to /data/r/, shots to /srv/s/" in lines
    assert "files in /data/r/moves/" in lines[2]
    assert lines[-1].startswith("virtual time, as fast as possible; stop with Ctrl-C")


def test_cuecap_run_prints_them_on_stderr_and_the_summary_on_stdout(tmp_path: Path) -> None:
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    code, out, err = cli("run", "--for", "3", "--fast", "--no-http", cwd=tmp_path)
    assert code == 0, err
    assert err.startswith("cuecap run: rules/cuecap.yaml (time zone: local, ")
    assert "  rule timelapse: when every 5s (next " in err
    assert f"recordings go to {tmp_path}/recordings/, shots to {tmp_path}/shots/" in err
    assert "cuecap run:" not in out and out.startswith("ran 3.0 s")


def test_quiet_says_nothing_at_start(tmp_path: Path) -> None:
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    code, _, err = cli("-q", "run", "--for", "1", "--fast", "--no-http", cwd=tmp_path)
    assert code == 0 and "cuecap run:" not in err, err


def test_an_empty_rule_set_says_there_is_nothing_to_do(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text(textwrap.dedent("settings: {}\n"), encoding="utf-8")
    rules = load_rules([tmp_path / "empty.yaml"], env={})
    assert "  nothing to do: no recorders and no rules" in startup_lines(
        rules, 0.0, RunOptions(), tmp_path
    )


def test_the_broker_and_the_targets_are_named(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(textwrap.dedent("""\
        settings:
          mqtt: {url: "mqtts://broker.lab:8883", instance: lab, password_env: MQTT_PASSWORD}
        targets:
          ops: {type: email, host: smtp.lab, sender: a@lab, to: ops@lab, security: ssl}
        rules:
          bell:
            when: {type: mqtt, topic: home/bell}
            do: {type: send, to: ops}
        """), encoding="utf-8")  # fmt: skip
    rules = load_rules([path], env={"MQTT_PASSWORD": "pw-secret"})
    lines = startup_lines(rules, 0.0, RunOptions(), tmp_path)
    assert "  mqtt: broker.lab:8883, TLS, topics under cuecap/lab/" in lines
    assert "  target ops: email via smtp.lab:465 (ssl) to ops@lab; queue 100, 3 retries" in lines
    assert "  rule bell: when mqtt home/bell -> send to ops" in lines
    assert not any("pw-secret" in line for line in lines)
