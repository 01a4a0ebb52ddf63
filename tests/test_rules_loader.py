"""Rule files: positions of every error, all errors at once, merging, secrets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules
from engine.rules.model import EventTrigger, MessageTrigger, ScheduleTrigger, ShotAction
from engine.rules.yamlpos import compose

GOOD = """\
settings:
  timezone: Europe/Berlin
  recordings: data/recordings
sources:
  sim: {type: simulator, seed: 3}
cameras:
  bench: {type: stream, source: sim}
recorders:
  moves:
    source: sim
    activity:
      - {type: message, types: [electrode_state]}
    pre_roll: 2s
rules:
  timelapse:
    when: {type: schedule, every: 10s, between: "08:00-18:00", days: mon-fri}
    do: {type: shot, cameras: bench}
  on-start:
    when: {type: event, event: recording.started, recorder: moves}
    do:
      - {type: shot, cameras: [bench], offset: -1s}
      - {type: log, message: "{rule}: {recorder} started at {time:%H:%M:%S}"}
  capacitance:
    when: {type: message, where: "active_capacitance.calibrated > 3.5"}
    do: {type: record, recorder: moves}
    mode: queued
    cooldown: 5s
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors_of(paths: list[Path], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(RuleFileError) as info:
        load_rules(paths, env=env or {})
    return [str(e) for e in info.value.errors]


def test_a_good_file_loads_into_typed_models(tmp_path: Path) -> None:
    rules = load_rules([write(tmp_path, "a.yaml", GOOD)], env={})
    assert set(rules.rules) == {"timelapse", "on-start", "capacitance"}
    assert rules.settings.recordings == "data/recordings"
    timelapse = rules.rules["timelapse"]
    assert isinstance(timelapse.when[0], ScheduleTrigger)
    assert timelapse.when[0].every == 10.0
    assert timelapse.when[0].between == [8 * 3600, 18 * 3600]
    assert timelapse.when[0].days == [0, 1, 2, 3, 4]
    shot = rules.rules["on-start"].do[0]
    assert isinstance(shot, ShotAction) and shot.offset == -1.0 and shot.cameras == ["bench"]
    assert isinstance(rules.rules["on-start"].when[0], EventTrigger)
    message = rules.rules["capacitance"].when[0]
    assert isinstance(message, MessageTrigger)
    assert message.kinds == frozenset({"active_capacitance"})
    assert rules.rules["capacitance"].cooldown == 5.0
    assert ("timelapse", 0) in rules.schedules
    assert rules.recorder_source("moves") == "sim"
    assert rules.origins[("rules", "timelapse")].location.line == 15


def test_a_folder_loads_its_yaml_files_in_name_order(tmp_path: Path) -> None:
    write(
        tmp_path,
        "b.yaml",
        "rules:\n  two: {when: {type: schedule, every: 1s}, do: {type: log, message: b}}\n",
    )
    write(
        tmp_path,
        "a.yml",
        "rules:\n  one: {when: {type: schedule, every: 1s}, do: {type: log, message: a}}\n",
    )
    write(tmp_path, "notes.txt", "not: [rules")
    rules = load_rules([tmp_path], env={})
    assert list(rules.rules) == ["one", "two"]
    assert [p.name for p in rules.files] == ["a.yml", "b.yaml"]


def test_every_error_of_a_file_is_reported_at_once_with_its_position(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.yaml",
        """\
        sources:
          sim: {type: simulator}
          ws: {type: websockt, url: x}
        recorders:
          r1:
            source: sim
            pre_rol: 2s
        rules:
          x:
            when: {type: schedule, every: 10s}
            whn: 3
            max: many
            do: {type: log, message: hi}
          y:
            when: {type: schedule, cron: "*/5 * * *"}
            do: {type: log, message: "{rule.__class__}"}
          z:
            when: {type: message, where: "active_capacitance.calibratd > 1"}
            do: {type: log, message: hi}
        """,
    )
    errors = errors_of([path])
    f = str(path)
    # the recorder's keys are the recorder part's; only the start and the hint are ours
    recorder_error = errors.pop(1)
    assert recorder_error.startswith(f"{f}:7:5: unknown key 'pre_rol' (expected one of: activity, ")
    assert recorder_error.endswith("; did you mean 'pre_roll'?)")
    assert errors == [
        f"{f}:3:14: unknown type 'websockt' (expected one of: websocket, replay, simulator, nats)",
        f"{f}:11:5: unknown key 'whn' (expected one of: cooldown, description, do, enabled, max, "
        "mode, when; did you mean 'when'?)",
        f"{f}:12:10: max: expected a valid integer, unable to parse string as an integer, got 'many'",
        f"{f}:15:34: cron: bad cron expression '*/5 * * *': expected 5 fields (minute hour day "
        "month weekday, e.g. '*/5 * * * *') or 6 with seconds first",
        f"{f}:16:31: message: template '{{rule.__class__}}' at column 1: {{rule.__class__}}: "
        "attribute and index lookups are not allowed",
        # the column of the misspelled field inside the quoted CEL expression
        f"{f}:18:54: where: condition 'active_capacitance.calibratd > 1' at column 20: "
        "active_capacitance has no field 'calibratd'; its fields are: timestamp, baseline, "
        "measurement, calibrated",
    ]


def test_unknown_names_are_rejected_where_they_are_used(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "refs.yaml",
        """\
        sources:
          sim: {type: simulator}
        cameras:
          cam: {type: stream, source: simm}
        recorders:
          rec: {source: nowhere}
        rules:
          r:
            when: {type: event, event: recording.started, recorder: recc}
            do:
              - {type: shot, cameras: [cam, camm]}
              - {type: record, recorder: ghost, action: stop}
          m:
            when: {type: message, source: other, types: electrode_state}
            do: {type: log, message: hi}
        """,
    )
    errors = errors_of([path])
    f = str(path)
    assert errors == [
        f"{f}:4:31: unknown source 'simm' (known sources: sim)",
        f"{f}:6:17: unknown source 'nowhere' (known sources: sim)",
        f"{f}:9:61: unknown recorder 'recc' (known recorders: rec)",
        f"{f}:11:37: unknown camera 'camm' (known cameras: cam)",
        f"{f}:12:34: unknown recorder 'ghost' (known recorders: rec)",
        f"{f}:14:35: unknown source 'other' (known sources: sim)",
    ]


def test_duplicate_keys_and_names_across_files_are_errors_with_both_places(tmp_path: Path) -> None:
    a = write(
        tmp_path,
        "a.yaml",
        "settings: {timezone: UTC}\nrules:\n  r: {when: {type: schedule, every: 1s}, do: {type: log, message: a}}\n",
    )
    b = write(
        tmp_path,
        "b.yaml",
        """\
        settings:
          timezone: Europe/Berlin
        rules:
          r: {when: {type: schedule, every: 1s}, do: {type: log, message: b}}
          s:
            when: {type: schedule, every: 1s}
            do: {type: log, message: b}
            when: {type: schedule, every: 2s}
        """,
    )
    errors = errors_of([a, b])
    assert errors == [
        f"{b}:2:3: setting 'timezone' is already set at {a}:1:12; set it in one file",
        f"{b}:4:3: rule 'r' is already declared at {a}:3:3; names must be unique across rule files",
        f"{b}:8:5: duplicate key 'when' (first at line 6, column 5; each key may appear once)",
    ]


def test_yaml_syntax_errors_point_at_the_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "rules:\n  r: {when: [unclosed\n")
    (error,) = errors_of([path])
    assert error.startswith(f"{path}:3:1: YAML syntax error:")


def test_yaml_1_1_surprises_are_plain_strings() -> None:
    doc = compose("a: on\nb: 18:00\nc: no\nd: 010\ne: 2024-05-01\nf: true\ng: 1.5\nh: ~\n", "f", {})
    assert doc.errors == []
    assert doc.data == {
        "a": "on",
        "b": "18:00",
        "c": "no",
        "d": 10,
        "e": "2024-05-01",
        "f": True,
        "g": 1.5,
        "h": None,
    }


def test_anchors_and_merge_keys_work_and_keep_positions() -> None:
    text = "base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n"
    doc = compose(text, "f", {})
    assert doc.data["use"] == {"y": 3, "x": 1}
    assert doc.positions.location(("use", "x")).line == 1
    assert doc.positions.location(("use", "y")).line == 4


def test_environment_references_are_resolved_and_never_echoed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "env.yaml",
        """\
        sources:
          lab: {type: websocket, url: "ws://${PD_HOST}:7001"}
          other: {type: websocket, url: "${BAD_URL}"}
        rules:
          r:
            when: {type: schedule, every: 1s}
            description: "costs $${PRICE}"
            do: {type: run, argv: [echo, "${MISSING}", "${OPTIONAL:-fallback}"]}
        """,
    )
    errors = errors_of([path], env={"PD_HOST": "purpledrop", "BAD_URL": "http://hunter2-secret"})
    assert errors == [
        f"{path}:3:33: url: '***' is not a websocket URL; write e.g. ws://purpledrop:7001",
        f"{path}:8:35: environment variable MISSING is not set (set it, or give a default: "
        "${MISSING:-value})",
    ]
    assert "hunter2" not in "\n".join(errors)
    env = {"PD_HOST": "purpledrop", "BAD_URL": "ws://x", "MISSING": "m"}
    rules = load_rules([path], env=env)
    assert rules.sources["lab"].url == "ws://purpledrop:7001"
    assert rules.rules["r"].do[0].argv == ["echo", "m", "fallback"]
    assert rules.rules["r"].description == "costs ${PRICE}"


def test_schedule_trigger_checks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        """\
        rules:
          a:
            when: {type: schedule, cron: "*/5 * * * *", every: 3s}
            do: {type: log, message: x}
          b:
            when: {type: schedule, at: ["25:00"]}
            do: {type: log, message: x}
          c:
            when: {type: schedule, every: 10s, jitter: 10s}
            do: {type: log, message: x}
          d:
            when: {type: schedule, every: 10s, timezone: Mars/Olympus}
            do: {type: log, message: x}
          e:
            when: {type: schedule, every: 10s, days: [mon, funday]}
            do: {type: log, message: x}
        """,
    )
    errors = errors_of([path])
    f = str(path)
    assert errors == [
        f"{f}:3:11: when: a schedule needs exactly one of cron, every or at (got cron, every)",
        f"{f}:6:32: at: '25:00' is not a time of day (00:00 to 23:59:59, or 24:00)",
        f"{f}:9:11: when: jitter must be shorter than the interval (every)",
        f"{f}:12:50: timezone: unknown time zone 'Mars/Olympus'; use an IANA name like "
        "'Europe/Berlin' or 'UTC'",
        f"{f}:15:46: days: 'funday' is not a day; use mon, tue, wed, thu, fri, "
        "sat, sun, ranges like mon-fri, or weekdays/weekends",
    ]


def test_a_file_that_is_not_a_mapping_or_has_unknown_sections(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "- just\n- a list\n")
    b = write(tmp_path, "b.yaml", "rulez: {}\nrules: [1]\n")
    errors = errors_of([a, b])
    assert errors == [
        f"{a}:1:1: a rule file is a mapping with sections: settings, sources, cameras, recorders, "
        "rules, targets",
        f"{b}:1:1: unknown section 'rulez' (expected one of: settings, sources, cameras, recorders, "
        "rules, targets, $schema)",
        f"{b}:2:8: rules: expected a mapping of names to definitions",
    ]


def test_missing_files_and_empty_folders(tmp_path: Path) -> None:
    assert errors_of([tmp_path / "nope.yaml"]) == [f"{tmp_path / 'nope.yaml'}: no such file"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert errors_of([empty]) == [f"{empty}: no rule files (*.yaml)"]


def test_an_empty_file_is_an_empty_rule_set(tmp_path: Path) -> None:
    rules = load_rules([write(tmp_path, "empty.yaml", "# nothing yet\n")], env={})
    assert rules.rules == {} and rules.sources == {}
    assert rules.settings.timezone == "local"


def test_values_from_the_environment_are_shown_by_name(tmp_path: Path) -> None:
    from engine.rules.describe import explain

    path = write(
        tmp_path,
        "env.yaml",
        """\
        sources:
          lab: {type: websocket, url: "ws://${PD_HOST}:7001/?token=${PD_TOKEN}"}
        rules:
          r:
            when: {type: schedule, every: 1h}
            do: {type: run, argv: [curl, -H, "X-Key: ${API_KEY}", "https://example.org"]}
        """,
    )
    env = {"PD_HOST": "lab-pd", "PD_TOKEN": "s3cr3t-token", "API_KEY": "k3y-very-secret"}
    rules = load_rules([path], env=env)
    text = explain(rules, 0.0, 1)
    assert "ws://${PD_HOST}:7001/?token=${PD_TOKEN}" in text
    assert "X-Key: ${API_KEY}" in text
    assert not any(value in text for value in env.values())


def test_templates_of_actions_are_checked_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.yaml",
        """\
        sources:
          sim: {type: simulator}
        cameras:
          bench: {type: stream, source: sim}
        rules:
          r:
            when: {type: schedule, every: 1h}
            do:
              - {type: shot, cameras: bench, file_name: "{camera}-{nope}.jpg"}
              - {type: run, argv: [echo, "{time:%H}", "{rule.__dict__}"]}
        """,
    )
    errors = errors_of([path])
    assert len(errors) == 2
    assert errors[0].startswith(f"{path}:9:59: file_name: template '{{camera}}-{{nope}}.jpg'")
    assert "unknown field {nope}" in errors[0]
    assert errors[1].startswith(f"{path}:10:48: argv: template '{{rule.__dict__}}'")
    assert "attribute and index lookups are not allowed" in errors[1]


def test_windows_folders_in_the_settings_are_errors_where_they_are_written(
    tmp_path: Path,
) -> None:
    """On Linux ``D:\\rec`` would be one folder of that name in the current folder."""
    path = write(
        tmp_path,
        "a.yaml",
        "settings:\n  recordings: 'D:\\rec'\n  shots: {folder: 'shots\\day'}\n",
    )
    assert errors_of([path]) == [
        f"{path}:2:15: recordings: r'D:\\rec' is a Windows path (drive D:), and this system "
        "is not Windows: it would make one folder named r'D:\\rec'; give a folder of this "
        "machine, e.g. '/srv/recordings' or '~/recordings' (a Windows share is reached where "
        "it is mounted, e.g. '/mnt/recordings')",
        f"{path}:3:19: shots.folder: r'shots\\day' is a Windows path ('\\' separates folders "
        "only on Windows), and this system is not Windows: it would make one folder named "
        "r'shots\\day'; write it with '/': 'shots/day'",
    ]
    fine = write(tmp_path, "b.yaml", "settings:\n  recordings: /srv/rec\n  shots: {folder: s/d}\n")
    assert load_rules([fine], env={}).settings.recordings == "/srv/rec"
