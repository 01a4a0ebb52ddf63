"""Any protobuf schema: loading, kinds, field checks, recording and reading back, end to end."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from foxglove_schemas_protobuf.Log_pb2 import Log
from schema_fixtures import (
    T0,
    foxglove_set,
    image_message,
    jpeg,
    lab_proto,
    log_message,
    log_stream,
)
from scripted_server import ScriptedServer

from engine.cli.main import main
from engine.core.condition import Condition, ConditionError
from engine.core.fieldpath import FieldPath, FieldPathError, image_bytes
from engine.core.frame import frame_class
from engine.core.schema import PURPLEDROP, KindRule, Schema, SchemaError, from_descriptor_set
from engine.recorder.detectors import ThresholdDetector
from engine.recording.reader import RecordingReader
from engine.recording.schema import recording_schema
from engine.recording.writer import RecordingWriter
from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules
from engine.runtime.engine import Engine
from engine.schema_files import SchemaSpec, compile_protos, load_schema


def cuecap(*args: str | os.PathLike[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def fox(tmp_path: Path) -> Path:
    return foxglove_set(tmp_path)


def log_schema(fox: Path) -> Schema:
    return load_schema(SchemaSpec(message="foxglove.Log", descriptor_set=str(fox), kind="level"))


# -- loading and kinds -----------------------------------------------------------


def test_a_message_without_oneof_has_its_own_name_as_its_one_kind(fox: Path) -> None:
    schema = load_schema(SchemaSpec(message="foxglove.CompressedImage", descriptor_set=str(fox)))
    assert schema.rule is KindRule.MESSAGE
    assert schema.kind_names == {"CompressedImage"}
    assert schema.image == "CompressedImage.data"  # found: a bytes field called data
    frame = frame_class(schema)(image_message(3, b"\xff\xd8jpeg"), 1.0, 0, "cam")
    assert frame.kind == "CompressedImage"
    assert frame.timestamp == T0 + 3
    assert frame.message.format == "jpeg"
    assert image_bytes(frame) == b"\xff\xd8jpeg"


def test_an_enum_field_names_the_kind(fox: Path) -> None:
    schema = log_schema(fox)
    assert schema.rule is KindRule.FIELD
    assert schema.kind_names == {"UNKNOWN", "DEBUG", "INFO", "WARNING", "ERROR", "FATAL"}
    frame = frame_class(schema)(log_message(1, Log.WARNING, "disk"), 1.0, 0, "s")
    assert frame.kind == "WARNING"
    assert FieldPath("WARNING.message", schema).read(frame) == "disk"
    assert frame.timestamp == pytest.approx(T0 + 1.25)


def test_a_kind_field_that_is_not_an_enum_is_refused(fox: Path) -> None:
    with pytest.raises(SchemaError, match="message is not an enum"):
        load_schema(SchemaSpec(message="foxglove.Log", descriptor_set=str(fox), kind="message"))


def test_an_unknown_message_lists_the_ones_there_are(fox: Path) -> None:
    with pytest.raises(SchemaError, match=r"no message 'foxglove\.Lgo'.*foxglove\.Log"):
        load_schema(SchemaSpec(message="foxglove.Lgo", descriptor_set=str(fox)))


def test_a_descriptor_set_without_its_imports_says_to_include_them(tmp_path: Path) -> None:
    from schema_fixtures import descriptor_set

    full = descriptor_set(Log.DESCRIPTOR.file)
    from google.protobuf import descriptor_pb2

    files = descriptor_pb2.FileDescriptorSet.FromString(full)
    del files.file[0]  # google/protobuf/timestamp.proto
    with pytest.raises(SchemaError, match="--include_imports"):
        from_descriptor_set(files.SerializeToString(), "foxglove.Log")


def test_bytes_that_are_no_descriptor_set_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\x00\x01not protobuf at all")
    with pytest.raises(SchemaError, match=r"bad\.pb"):
        load_schema(SchemaSpec(message="x.Y", descriptor_set=str(bad)))


def test_proto_files_compile_when_they_load(tmp_path: Path) -> None:
    schema = load_schema(SchemaSpec(message="lab.Event", proto=(str(lab_proto(tmp_path)),)))
    assert schema.rule is KindRule.ONEOF
    assert schema.kind_names == {"reading", "alarm"}
    assert schema.timestamped == {"reading", "alarm"}
    event = schema.message_class()
    event.reading.celsius = 37.5  # type: ignore[attr-defined]
    frame = frame_class(schema)(event.SerializeToString(), 0.0, 0)
    assert frame.kind == "reading"
    assert FieldPath("reading.celsius", schema).read(frame) == 37.5


def test_a_proto_that_does_not_compile_says_so(tmp_path: Path) -> None:
    proto = tmp_path / "broken.proto"
    proto.write_text('syntax = "proto3";\nmessage X { int32 = 1; }\n', encoding="utf-8")
    with pytest.raises(SchemaError, match="protoc could not compile"):
        compile_protos([proto])


def test_without_grpcio_tools_the_message_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "grpc_tools", None)  # import grpc_tools now fails
    with pytest.raises(SchemaError, match=r"pip install grpcio-tools.*--descriptor_set_out"):
        compile_protos([lab_proto(tmp_path)])


def test_purpledrop_s_descriptor_set_gives_back_the_built_in_schema() -> None:
    again = from_descriptor_set(PURPLEDROP.descriptor_set(), PURPLEDROP.name)
    assert again is PURPLEDROP
    restored = Schema.from_dict(PURPLEDROP.to_dict())
    assert restored is PURPLEDROP


# -- names checked against the schema ------------------------------------------------


def test_field_paths_and_conditions_are_checked_against_the_schema(fox: Path) -> None:
    schema = log_schema(fox)
    with pytest.raises(
        FieldPathError,
        match=r"ERROR has no field 'mesage'; its fields are: timestamp, level, message",
    ) as err:
        FieldPath("ERROR.mesage", schema)
    assert err.value.column == 7
    with pytest.raises(FieldPathError, match="'active_capacitance' is not a message type"):
        FieldPath("active_capacitance.calibrated", schema)
    with pytest.raises(ConditionError, match="has no field 'lnie'") as cerr:
        Condition("ERROR.lnie > 3", schema=schema)
    assert cerr.value.column == 7
    condition = Condition("ERROR.message.contains('pressure')", schema=schema)
    assert condition.kinds == {"ERROR"}
    frames = [frame_class(schema)(raw, float(i), i, "s") for i, raw in enumerate(log_stream(20))]
    assert [f.seq for f in frames if condition.evaluate(f)] == [9, 19]
    line = ThresholdDetector(FieldPath("WARNING.line", schema), above=10)
    assert [f.seq for f in frames if line.hit(f)] == [14]  # crossing once, then armed again


def rules(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_a_rule_file_checks_recorders_against_their_source_s_schema(
    tmp_path: Path, fox: Path
) -> None:
    path = rules(
        tmp_path,
        f"""\
        sources:
          pump:
            type: websocket
            url: ws://127.0.0.1:9
            schema: {{descriptor_set: {fox}, message: foxglove.Log, kind: level}}
        recorders:
          alarms:
            source: pump
            activity:
              - {{type: message, types: [EROR]}}
              - {{type: where, where: "WARNING.mesage.contains('disk')"}}
        rules:
          told:
            when: {{type: message, source: pump, where: "FATAL.lien > 2"}}
            do: {{type: log, message: "fatal"}}
        """,
    )
    with pytest.raises(RuleFileError) as err:
        load_rules([path], env={})
    text = "\n".join(str(e) for e in err.value.errors)
    assert "rules.yaml:10:" in text and "'EROR' is not a message type of foxglove.Log" in text
    assert "rules.yaml:11:" in text and "no field 'mesage'" in text
    assert "rules.yaml:14:55:" in text and "no field 'lien'" in text, text


def test_a_schema_that_does_not_load_is_an_error_at_its_position(tmp_path: Path) -> None:
    path = rules(
        tmp_path,
        f"""\
        sources:
          pump:
            type: websocket
            url: ws://127.0.0.1:9
            schema: {{descriptor_set: {tmp_path / "missing.pb"}, message: foxglove.Log}}
        """,
    )
    with pytest.raises(RuleFileError, match=r"rules.yaml:5:.*missing.pb: cannot read"):
        load_rules([path], env={})


# -- recording and reading back ------------------------------------------------------


def test_the_schema_travels_in_the_manifest(tmp_path: Path, fox: Path) -> None:
    schema = log_schema(fox)
    out = tmp_path / "pump.bin"
    with RecordingWriter(out, schema=schema) as writer:
        for i, raw in enumerate(log_stream(10)):
            writer.write(raw, T0 + i)
    manifest = json.loads(Path(f"{out}.json").read_text())
    assert manifest["schema"]["message"] == "foxglove.Log"
    assert manifest["counts"] == {"INFO": 8, "WARNING": 1, "ERROR": 1}
    found = recording_schema(out)
    assert found.same_as(schema) and found.rule is KindRule.FIELD
    kinds = [f.kind for f in RecordingReader(out)]
    assert kinds.count("ERROR") == 1 and kinds[4] == "WARNING"


def test_purpledrop_recordings_are_unchanged_by_schemas(tmp_path: Path) -> None:
    from scripted_server import sample_events

    out = tmp_path / "pd.bin"
    events = sample_events(5)
    with RecordingWriter(out) as writer:
        for i, raw in enumerate(events):
            writer.write(raw, T0 + i)
    assert "schema" not in json.loads(Path(f"{out}.json").read_text())
    expected = b"".join(len(e).to_bytes(4, "little") + e for e in events)
    assert out.read_bytes() == expected  # pdrecord's layout, byte for byte
    assert recording_schema(out) is PURPLEDROP


def foxglove_rules(tmp_path: Path, fox: Path, uri_logs: str, uri_cam: str) -> Path:
    return rules(
        tmp_path,
        f"""\
        settings:
          recordings: {tmp_path / "recordings"}
          shots: {{folder: {tmp_path / "shots"}}}
        sources:
          pump:
            type: websocket
            url: "{uri_logs}"
            schema: {{descriptor_set: {fox}, message: foxglove.Log, kind: level}}
          cam:
            type: websocket
            url: "{uri_cam}"
            schema: {{descriptor_set: {fox}, message: foxglove.CompressedImage}}
        cameras:
          front: {{type: stream, source: cam}}
        recorders:
          alarms:
            source: pump
            activity:
              - {{type: message, types: [ERROR]}}
              - {{type: where, where: "WARNING.message.contains('disk at 99')"}}
            pre_roll: 0.05
            post_roll: 0.1
        rules:
          shot-on-alarm:
            when: {{type: event, event: recording.started, recorder: alarms}}
            do: {{type: shot, cameras: front}}
        """,
    )


async def test_a_third_party_stream_is_recorded_by_its_fields_and_dumps_without_flags(
    tmp_path: Path, fox: Path
) -> None:
    logs = ScriptedServer(log_stream(40), then="repeat", interval=0.002)
    cam = ScriptedServer([image_message(i, jpeg(shade=i)) for i in range(5)], then="repeat",
                         interval=0.01)  # fmt: skip
    async with logs, cam:
        ruleset = load_rules([foxglove_rules(tmp_path, fox, logs.uri, cam.uri)], env={})
        summary = await Engine(ruleset).run(duration=1.0)
    assert summary.frames["pump"] > 40 and summary.frames["cam"] > 5
    assert summary.segments, "the ERROR messages start recordings"
    assert len(summary.shots_ok) >= 1 and summary.shots_failed == []
    first = Path(summary.segments[0].path)
    code, out, err = cuecap("log", "dump", first, "--type", "ERROR")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and all(r["type"] == "ERROR" for r in rows)
    assert rows[0]["ERROR"]["message"].startswith("pressure high")
    assert rows[0]["timestamp"] == pytest.approx(T0 + int(rows[0]["ERROR"]["line"]) + 0.25)
    code, out, _ = cuecap("log", "info", first)
    assert code == 0 and "schema      foxglove.Log" in out and "ERROR" in out
    shot = Path(summary.shots_ok[0])  # the newest CompressedImage.data of the cam stream
    assert shot.read_bytes() in {jpeg(shade=i) for i in range(5)}


def test_log_tools_read_a_third_party_recording(tmp_path: Path, fox: Path) -> None:
    schema = load_schema(SchemaSpec(message="foxglove.CompressedImage", descriptor_set=str(fox)))
    out = tmp_path / "cam.bin"
    images = [jpeg(shade=10 * i) for i in range(4)]
    with RecordingWriter(out, schema=schema) as writer:
        for i, data in enumerate(images):
            writer.write(image_message(i, data), T0 + i * 0.5)
    code, text, err = cuecap("log", "info", out)
    assert code == 0, err
    assert "images      32x24" in text and "CompressedImage" in text
    code, text, err = cuecap("log", "dump", out)
    assert code == 0, err
    row = json.loads(text.splitlines()[0])
    assert row["type"] == "CompressedImage"
    assert row["CompressedImage"]["data"] == {"size": len(images[0])}
    assert row["CompressedImage"]["frame_id"] == "cam"
    code, _, err = cuecap("log", "frames", out, "-o", tmp_path / "frames")
    assert code == 0, err
    written = sorted((tmp_path / "frames").iterdir())
    assert [p.read_bytes() for p in written] == images
    code, text, err = cuecap("log", "export", out, "--type", "CompressedImage", "-o", "-")
    assert code == 0, err
    header = text.splitlines()[0].split(",")
    assert header == ["time", "seq", "timestamp", "data_size"]  # the numbers of the message
    assert text.splitlines()[1].split(",")[3] == str(len(images[0]))
    code, _, err = cuecap("log", "dump", out, "--type", "image")
    assert code == 2 and "known types: CompressedImage" in err
    code, _, err = cuecap("log", "video", out, "-o", tmp_path / "cam.mp4")
    assert code == 0, err
    assert "4 frames, 32x24" in err


def pump_recording(tmp_path: Path, fox: Path, n: int = 60) -> Path:
    out = tmp_path / "pump.bin"
    with RecordingWriter(out, schema=log_schema(fox), recorder="pump") as writer:
        for i, raw in enumerate(log_stream(n)):
            writer.write(raw, T0 + i * 0.5)
    return out


def test_cut_keeps_the_schema_and_merge_refuses_two_schemas(tmp_path: Path, fox: Path) -> None:
    from scripted_server import sample_events

    original = pump_recording(tmp_path, fox)
    code, _, err = cuecap(
        "log", "cut", original, "--from", "5", "--to", "10", "-o", tmp_path / "c.bin"
    )
    assert code == 0, err
    assert recording_schema(tmp_path / "c.bin").same_as(log_schema(fox))
    kinds = [f.kind for f in RecordingReader(tmp_path / "c.bin")]
    assert len(kinds) == 10 and "WARNING" in kinds
    pd = tmp_path / "pd.bin"
    with RecordingWriter(pd) as writer:
        for i, raw in enumerate(sample_events(5)):
            writer.write(raw, T0 + 100 + i)
    code, _, err = cuecap("log", "merge", original, pd, "-o", tmp_path / "m.bin")
    assert code == 2 and "different schemas do not merge" in err


async def test_a_replay_of_a_third_party_recording_dispatches_on_its_fields(
    tmp_path: Path, fox: Path
) -> None:
    from engine.core.clock import ManualClock

    original = pump_recording(tmp_path, fox)
    path = rules(
        tmp_path,
        f"""\
        settings:
          recordings: {tmp_path / "recordings"}
        sources:
          pump: {{type: replay, path: {original}, speed: null}}
        recorders:
          errors:
            activity: [{{type: where, where: "ERROR.message.startsWith('pressure')"}}]
            pre_roll: 0.1
            post_roll: 0.2
        rules:
          warned:
            when: {{type: message, source: pump, where: "WARNING.message.startsWith('disk')"}}
            do: {{type: log, message: "{{event}} {{seq}}"}}
        """,
    )
    summary = await Engine(load_rules([path], env={}), clock=ManualClock(T0)).run(duration=60)
    errors = [f for f in RecordingReader(original) if f.kind == "ERROR"]
    assert len(summary.segments) == len(errors) == 6  # one short recording per ERROR
    warnings = [f.seq for f in RecordingReader(original) if f.kind == "WARNING"]
    fired = [f for f in summary.firings if f.rule == "warned"]
    assert [f.facts["seq"] for f in fired] == warnings and len(warnings) == 6
    for segment, error in zip(summary.segments, errors, strict=True):
        frames = list(RecordingReader(segment.path))
        assert error.raw in [f.raw for f in frames]
        assert recording_schema(segment.path).name == "foxglove.Log"


def test_cuecap_record_takes_a_schema_and_writes_mcap(tmp_path: Path, fox: Path) -> None:
    script = log_stream(30)
    for name in ("pump.bin", "pump.mcap"):
        out = tmp_path / name
        with ScriptedServer(script).threaded() as server:
            result = CliRunner().invoke(
                main,
                ["-q", "record", server.uri, str(out), "--count", "30", "--schema", str(fox),
                 "--message", "foxglove.Log", "--kind", "level"],
            )  # fmt: skip
        assert result.exit_code == 0, result.output
        log = __import__("engine.logtools.inputs", fromlist=["LogInput"]).LogInput(out)
        frames = list(log.frames())
        assert [f.raw for f in frames] == script
        assert [f.kind for f in frames].count("ERROR") == 3
        manifest = log.manifest
        assert manifest is not None and manifest["counts"] == {"INFO": 24, "WARNING": 3, "ERROR": 3}
        assert "ERROR" in result.stdout
    result = CliRunner().invoke(main, ["record", "ws://127.0.0.1:9", str(tmp_path / "x.bin"),
                                       "--schema", str(fox)])  # fmt: skip
    assert result.exit_code == 2 and "--schema and --message go together" in result.output
