"""MCAP: conversion both ways (exact), what the ``mcap`` reader sees, log tools on MCAP files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from foxglove_schemas_protobuf.Log_pb2 import Log
from google.protobuf import descriptor_pb2
from mcap.reader import make_reader
from mcap_protobuf.decoder import DecoderFactory
from schema_fixtures import T0, foxglove_set, log_stream
from scripted_server import sample_events

from engine.cli.main import main
from engine.logtools.inputs import LogInput
from engine.recording.mcap import McapRecordingReader, McapRecordingWriter, to_ns
from engine.recording.writer import RecordingWriter
from engine.schema_files import SchemaSpec, load_schema


def cuecap(*args: str | os.PathLike[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def pd_recording(path: Path, start: float = T0 + 0.123456, n: int = 400) -> list[bytes]:
    """A PurpleDrop recording with camera frames, one undecodable record and a gap."""
    events = sample_events(n, image_every=9, image_size=3000)
    events.insert(n // 2, b"\xff\xfe not an event")
    with RecordingWriter(path, recorder="moves", source="lab", start_reason="activity") as writer:
        for i, raw in enumerate(events):
            writer.write(raw, start + i * 0.01)
        writer.note_activity(start + 1.0)
    return events


def same_files(a: Path, b: Path) -> None:
    assert a.read_bytes() == b.read_bytes()
    assert Path(f"{a}.idx").read_bytes() == Path(f"{b}.idx").read_bytes()  # same receive times


@pytest.mark.parametrize("start", [T0 + 0.123456, 0.5], ids=["epoch", "relative"])
def test_a_recording_goes_to_mcap_and_back_byte_for_byte(tmp_path: Path, start: float) -> None:
    original = tmp_path / "a.bin"
    pd_recording(original, start)
    code, _, err = cuecap("log", "convert", original, tmp_path / "a.mcap")
    assert code == 0, err
    assert "401 records written" in err and "1 record(s) do not decode" in err
    code, _, err = cuecap("log", "convert", tmp_path / "a.mcap", tmp_path / "b.bin")
    assert code == 0, err
    same_files(original, tmp_path / "b.bin")
    back = json.loads(Path(f"{tmp_path / 'b.bin'}.json").read_text())
    assert back["recorder"] == "moves" and back["source"] == "lab"
    assert back["start_reason"] == "activity" and back["first_activity"] == start + 1.0


def test_the_mcap_reader_sees_channels_schemas_and_times(tmp_path: Path) -> None:
    original = tmp_path / "a.bin"
    events = pd_recording(original)
    out = tmp_path / "a.mcap"
    assert cuecap("log", "convert", original, out, "--chunk-size", "16KiB")[0] == 0
    with open(out, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None
        topics = sorted(c.topic for c in summary.channels.values())
        assert topics == [
            "/_undecodable", "/active_capacitance", "/group_capacitance", "/hv_regulator",
            "/image",
        ]  # fmt: skip
        (schema,) = summary.schemas.values()
        assert schema.name == "protobuf.PurpleDropEvent" and schema.encoding == "protobuf"
        files = descriptor_pb2.FileDescriptorSet.FromString(schema.data)
        assert [f.name for f in files.file] == ["purpledrop.proto"]
        assert len(summary.chunk_indexes) > 5  # bounded chunks
        for chunk in summary.chunk_indexes:
            assert chunk.compression == "zstd"
            assert chunk.uncompressed_size < 16 * 1024 + 4000  # one message past the bound at most
            assert chunk.message_index_offsets  # message indexes written
        assert summary.statistics.message_count == len(events)
        decoded = [
            (channel.topic, message, proto)
            for _, channel, message, proto in reader.iter_decoded_messages(
                topics=["/image", "/active_capacitance"], log_time_order=False
            )
        ]
    first_image = next(d for d in decoded if d[0] == "/image")
    _, message, proto = first_image
    assert proto.WhichOneof("msg") == "image"  # a third-party decoder reads it
    assert message.log_time == to_ns(T0 + 0.123456)
    assert message.publish_time == proto.image.timestamp.seconds * 1_000_000_000
    capacitance = next(d for d in decoded if d[0] == "/active_capacitance")
    assert (
        capacitance[1].publish_time == capacitance[2].active_capacitance.timestamp.seconds * 10**9
    )


def test_lz4_chunks(tmp_path: Path) -> None:
    original = tmp_path / "a.bin"
    pd_recording(original, n=50)
    out = tmp_path / "a.mcap"
    assert cuecap("log", "convert", original, out, "--compression", "lz4")[0] == 0
    with open(out, "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None and {c.compression for c in summary.chunk_indexes} == {"lz4"}
    assert cuecap("log", "convert", out, tmp_path / "b.bin")[0] == 0
    same_files(original, tmp_path / "b.bin")


def test_log_tools_read_mcap_and_use_its_index_for_a_time_range(tmp_path: Path) -> None:
    original = tmp_path / "a.bin"
    pd_recording(original)
    out = tmp_path / "a.mcap"
    assert cuecap("log", "convert", original, out, "--chunk-size", "8KiB")[0] == 0
    code, text, err = cuecap("log", "info", out)
    assert code == 2 and "invalid     1 records are not PurpleDrop events" in text, err
    assert "401 records" in text and "image" in text and "recorder    moves" in text
    same = cuecap("log", "info", original)[1].splitlines()[2:-1]
    assert text.splitlines()[2:-1] == same  # span, counts, manifest: as for the .bin
    code, bin_rows, _ = cuecap(
        "log", "dump", original, "--from", "1.5", "--to", "2", "--type", "image"
    )
    code2, mcap_rows, _ = cuecap(
        "log", "dump", out, "--from", "1.5", "--to", "2", "--type", "image"
    )
    assert code == code2 == 0
    assert mcap_rows == bin_rows and len(mcap_rows.splitlines()) == 6
    reader = McapRecordingReader(out)
    ranged = list(reader.frames_between(T0 + 2, T0 + 2.5))
    assert reader.records < 120  # only the chunks of that half second were read
    full = [f for f in McapRecordingReader(out) if T0 + 2 <= f.time < T0 + 2.5]
    assert [(f.seq, f.raw, f.time) for f in ranged] == [(f.seq, f.raw, f.time) for f in full]
    csv_bin = cuecap("log", "export", original, "--type", "hv_regulator", "-o", "-")[1]
    assert cuecap("log", "export", out, "--type", "hv_regulator", "-o", "-")[1] == csv_bin


def test_a_third_party_schema_converts_with_its_kinds(tmp_path: Path) -> None:
    fox = foxglove_set(tmp_path)
    schema = load_schema(SchemaSpec(message="foxglove.Log", descriptor_set=str(fox), kind="level"))
    original = tmp_path / "pump.bin"
    with RecordingWriter(original, schema=schema) as writer:
        for i, raw in enumerate(log_stream(30)):
            writer.write(raw, T0 + i * 0.1)
    out = tmp_path / "pump.mcap"
    assert cuecap("log", "convert", original, out)[0] == 0
    with open(out, "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    assert sorted(c.topic for c in summary.channels.values()) == ["/ERROR", "/INFO", "/WARNING"]
    assert [s.name for s in summary.schemas.values()] == ["foxglove.Log"]
    code, text, _ = cuecap("log", "dump", out, "--type", "ERROR")
    assert code == 0 and len(text.splitlines()) == 3  # the kind rule came along
    assert cuecap("log", "convert", out, tmp_path / "back.bin")[0] == 0
    same_files(original, tmp_path / "back.bin")


def test_an_mcap_written_elsewhere_reads_and_converts(tmp_path: Path) -> None:
    from foxglove_schemas_protobuf.LocationFix_pb2 import LocationFix
    from mcap_protobuf.writer import Writer

    out = tmp_path / "robot.mcap"
    with open(out, "wb") as f, Writer(f) as writer:
        for i in range(10):
            log = Log(level=Log.INFO if i % 2 else Log.ERROR, message=f"m{i}")  # type: ignore[arg-type]
            log.timestamp.seconds = T0 + i
            writer.write_message("/log", log, log_time=(T0 + i) * 10**9, publish_time=0)
            writer.write_message("/gps", LocationFix(latitude=i), log_time=(T0 + i) * 10**9)
    code, _, err = cuecap("log", "dump", out)
    assert code == 2 and "2 protobuf schemas" in err and "OUT.bin --schema NAME" in err
    code, _, err = cuecap("log", "convert", out, tmp_path / "log.bin", "--schema", "foxglove.Log")
    assert code == 0, err
    log_input = LogInput(tmp_path / "log.bin")
    rows = [f for f in log_input.frames()]
    assert len(rows) == 10 and rows[0].kind == "Log" and rows[0].time == T0
    assert rows[0].message.message == "m0"


def test_an_mcap_recording_cut_short_reads_what_it_holds(tmp_path: Path) -> None:
    out = tmp_path / "live.mcap"
    events = sample_events(200)
    writer = McapRecordingWriter(out, recorder="r", chunk_size=2048)
    for i, raw in enumerate(events):
        writer.write(raw, T0 + i * 0.01)
    writer.flush(T0 + 2)  # a crash now: no summary, no footer
    reader = McapRecordingReader(out)
    frames = list(reader)
    assert reader.index_problem is not None and "not closed" in reader.index_problem
    assert [f.raw for f in frames] == events
    code, text, _ = cuecap("log", "info", out)
    assert code == 0 and "200 records" in text
    writer.close()


SIM = {"seed": 3, "fps": 2, "image_size": [64, 48], "idle": [5, 8], "first_burst_delay": 1}


async def test_a_recorder_writes_mcap_the_same_records_as_pdrecord(tmp_path: Path) -> None:
    import textwrap

    from engine.core.clock import ManualClock
    from engine.rules.loader import load_rules
    from engine.runtime.engine import Engine

    activity = "[{type: message, types: [electrode_state]}]"
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        textwrap.dedent(
            f"""\
            settings:
              recordings: {tmp_path / "recordings"}
            sources:
              sim: {{type: simulator, {", ".join(f"{k}: {json.dumps(v)}" for k, v in SIM.items())}}}
            cameras:
              bench: {{type: stream, source: sim, recordings: {tmp_path / "recordings" / "viewer"}}}
            recorders:
              plain: {{activity: {activity}, pre_roll: 1s, post_roll: 2s}}
              viewer:
                activity: {activity}
                pre_roll: 1s
                post_roll: 2s
                format: mcap
                mcap_compression: lz4
                mcap_chunk_size: 64KiB
            """
        ),
        encoding="utf-8",
    )
    summary = await Engine(load_rules([rules], env={}), clock=ManualClock(T0)).run(duration=30)
    plain = sorted((tmp_path / "recordings" / "plain").glob("*.bin"))
    viewer = sorted((tmp_path / "recordings" / "viewer").glob("*.mcap"))
    assert len(plain) == len(viewer) >= 2
    assert len(summary.segments) == 2 * len(plain)
    for bin_file, mcap_file in zip(plain, viewer, strict=True):
        from engine.recording.reader import RecordingReader

        expected = [(f.raw, f.time) for f in RecordingReader(bin_file)]
        assert [(f.raw, f.time) for f in McapRecordingReader(mcap_file)] == expected
        with open(mcap_file, "rb") as f:
            mcap_summary = make_reader(f).get_summary()
        assert mcap_summary is not None and mcap_summary.statistics is not None
        assert mcap_summary.statistics.message_count == len(expected)
        assert {c.compression for c in mcap_summary.chunk_indexes} == {"lz4"}
        assert "/electrode_state" in {c.topic for c in mcap_summary.channels.values()}
        manifest = json.loads(Path(f"{mcap_file}.json").read_text())
        assert manifest["complete"] is True and manifest["records"] == len(expected)
    # A shot of a past moment finds its camera frame in the MCAP recordings.
    from engine.shots.frame_cache import find_in_recordings

    image_time = next(f.time for f in McapRecordingReader(viewer[0]) if f.kind == "image")
    found = find_in_recordings(tmp_path / "recordings" / "viewer", "sim", image_time, 0.01)
    assert found is not None and found.time == image_time


def test_repair_says_what_to_do_with_an_mcap_file(tmp_path: Path) -> None:
    original = tmp_path / "a.bin"
    pd_recording(original, n=20)
    assert cuecap("log", "convert", original, tmp_path / "a.mcap")[0] == 0
    code, _, err = cuecap("log", "repair", tmp_path / "a.mcap")
    assert code == 2 and "is MCAP" in err and "log convert" in err


async def test_a_replay_of_the_mcap_of_a_run_reports_the_same_firings(tmp_path: Path) -> None:
    import textwrap

    from test_runtime_replay import RULES, _firings, _moves

    from engine.core.clock import ManualClock
    from engine.rules.loader import load_rules
    from engine.runtime.engine import Engine
    from engine.runtime.replay import replay

    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(RULES.format(root=tmp_path)), encoding="utf-8")
    rules = load_rules([path], env={})
    live = await Engine(rules, clock=ManualClock(T0)).run(duration=30)
    (everything,) = [s for s in live.segments if s.recorder == "everything"]
    mcap_file = tmp_path / "everything.mcap"
    assert cuecap("log", "convert", everything.path, mcap_file)[0] == 0
    replayed = await replay(mcap_file, rules)
    assert _firings(replayed) and _firings(replayed) == _firings(live)
    assert _moves(replayed) == _moves(live)


def test_an_mcap_cut_inside_a_chunk_keeps_the_chunks_before(tmp_path: Path) -> None:
    out = tmp_path / "cut.mcap"
    events = sample_events(400)
    with McapRecordingWriter(out, chunk_size=2048, flush_interval=1e9) as writer:
        for i, raw in enumerate(events):
            writer.write(raw, T0 + i * 0.01)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])  # a disk that filled up mid-chunk
    reader = McapRecordingReader(out)
    frames = list(reader)
    assert 0 < len(frames) < len(events)
    assert [f.raw for f in frames] == events[: len(frames)]  # a prefix, nothing invented
    assert 0 < reader.truncated_bytes < len(data) // 2  # the cut chunk, not the whole file
    code, text, err = cuecap("log", "info", out)
    assert code == 2 and f"unreadable after record {len(frames)}" in text + err


def test_retention_deletes_old_mcap_recordings_with_their_manifest(tmp_path: Path) -> None:
    from engine.recorder.config import RecordingRetention
    from engine.recorder.retention import apply

    folder = tmp_path / "moves"
    now = T0 + 30 * 86400

    def made(name: str, days_old: float) -> Path:
        path = folder / name
        start = now - days_old * 86400
        with McapRecordingWriter(path, recorder="moves", opened_at=start) as writer:
            for i, raw in enumerate(sample_events(20)):
                writer.write(raw, start + i)
        return path

    old, new = made("old.mcap", 10), made("new.mcap", 1)
    report = apply(folder, "moves", RecordingRetention(keep_days=7), now, None)
    assert [d.entry.path.name for d in report.deleted] == ["old.mcap"]
    assert not old.exists() and not Path(f"{old}.json").exists()
    assert new.exists() and Path(f"{new}.json").exists()
