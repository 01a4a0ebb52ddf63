"""``log info`` and ``log dump`` on real recording files, and bad input for every command."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from conftest import CliRun, run_cli
from logfixtures import T0, session, write_recording

from engine.core.frame import peek_kind
from engine.logtools.errors import LogToolError
from engine.logtools.info import summarize
from engine.logtools.inputs import LogInput
from engine.recording.format import index_path, manifest_path


@pytest.fixture(scope="module")
def records() -> list[tuple[float, bytes]]:
    return session()


@pytest.fixture
def rec(tmp_path: Path, records: list[tuple[float, bytes]]) -> Path:
    return write_recording(
        tmp_path / "a.bin", records, gaps=[(T0 + 3, T0 + 3.5)], activity=[T0 + 2]
    )


def test_info_counts_span_and_manifest(rec: Path, records: list[tuple[float, bytes]]) -> None:
    facts = summarize(LogInput(rec))
    expected = Counter(peek_kind(raw) for _, raw in records)
    assert {k: v.count for k, v in facts.types.items()} == dict(expected)
    assert facts.records == len(records)
    assert facts.first_time == records[0][0]
    assert facts.last_time == records[-1][0]
    assert facts.size == rec.stat().st_size == facts.record_bytes
    assert facts.truncated_bytes == 0
    assert facts.index == "present"
    assert facts.image_size == (64, 48)
    assert facts.gaps[0]["seconds"] == 0.5
    assert facts.problems == []


def test_info_text_and_json(cuecap: CliRun, rec: Path, records: list[tuple[float, bytes]]) -> None:
    code, out, _ = cuecap("log", "info", rec, "--utc")
    assert code == 0
    assert "2024-05-01T10:00:00.002+00:00" in out
    assert "truncated   none" in out
    assert "gaps        1, 0.500 s in all" in out
    assert "stopped     test done" in out
    n_images = sum(1 for _, raw in records if peek_kind(raw) == "image")
    assert any(line.split()[:2] == ["image", str(n_images)] for line in out.splitlines())
    code, out, _ = cuecap("log", "info", rec, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["records"] == len(records)
    assert data["types"]["image"]["count"] == n_images
    assert data["duration"] == pytest.approx(records[-1][0] - records[0][0])


def test_info_reports_a_cut_short_tail_and_exits_2(
    cuecap: CliRun, rec: Path, records: list[tuple[float, bytes]]
) -> None:
    with open(rec, "ab") as f:
        f.write(b"\x00\x10\x00\x00partial")  # a 4096-byte record with 7 bytes of it
    code, out, _ = cuecap("log", "info", rec)
    assert code == 2
    assert "truncated   11 bytes (last record cut short)" in out
    assert "cuecap log repair" in out
    assert f"{len(records)} records" in out


def test_info_without_index_says_times_are_estimated(cuecap: CliRun, rec: Path) -> None:
    index_path(rec).unlink()
    manifest_path(rec).unlink()
    code, out, _err = cuecap("log", "info", rec)
    assert code == 0
    assert "no index" in out
    assert "estimated from message timestamps" in out
    assert "manifest    none" in out


def test_dump_rows_have_decoded_fields_and_image_sizes(
    cuecap: CliRun, rec: Path, records: list[tuple[float, bytes]]
) -> None:
    code, out, _ = cuecap("log", "dump", rec)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert len(rows) == len(records)
    assert [r["time"] for r in rows] == [t for t, _ in records]
    assert [r["seq"] for r in rows] == list(range(len(records)))
    image = next(r for r in rows if r["type"] == "image")
    assert set(image["image"]) == {"timestamp", "image_data"}
    assert image["image"]["image_data"]["size"] > 100
    assert image["timestamp"] == pytest.approx(image["time"] - 0.006, abs=1e-5)
    hv = next(r for r in rows if r["type"] == "hv_regulator")
    assert hv["hv_regulator"]["v_target_out"] == 1.25
    assert hv["hv_regulator"]["timestamp"]["seconds"] == int(T0)
    state = next(r for r in rows if r["type"] == "electrode_state")
    assert state["timestamp"] is None
    assert state["electrode_state"]["drive_groups"][0]["setting"] == 200


def test_dump_filters_by_type_and_time(
    cuecap: CliRun, rec: Path, records: list[tuple[float, bytes]]
) -> None:
    code, out, _ = cuecap(
        "log", "dump", rec, "--type", "hv_regulator,image", "--from", "2", "--to", "4"
    )
    rows = [json.loads(line) for line in out.splitlines()]
    expected = [
        t for t, raw in records
        if peek_kind(raw) in ("hv_regulator", "image") and records[0][0] + 2 <= t < records[0][0] + 4
    ]  # fmt: skip
    assert code == 0
    assert [r["time"] for r in rows] == expected
    code, out, _ = cuecap("log", "dump", rec, "-t", "image", "--limit", "3")
    assert len(out.splitlines()) == 3


def test_dump_shows_records_that_are_not_events_and_exits_2(cuecap: CliRun, tmp_path: Path) -> None:
    path = write_recording(
        tmp_path / "bad.bin", [(T0, session(1.0)[0][1]), (T0 + 1, b"\xff\xfe\xfd")]
    )
    code, out, err = cuecap("log", "dump", path)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 2
    assert rows[1]["type"] is None
    assert "error" in rows[1]
    assert "1 record(s) are not PurpleDrop events" in err


def test_dump_to_file_refuses_to_overwrite(cuecap: CliRun, rec: Path, tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    assert cuecap("log", "dump", rec, "-o", out)[0] == 0
    code, _, err = cuecap("log", "dump", rec, "-o", out)
    assert code == 2
    assert "already exists" in err
    assert cuecap("log", "dump", rec, "-o", out, "--force")[0] == 0


def test_unknown_type_lists_the_known_ones(cuecap: CliRun, rec: Path) -> None:
    code, _, err = cuecap("log", "dump", rec, "--type", "imgae")
    assert code == 2
    assert "unknown message type imgae" in err
    assert "active_capacitance" in err


def test_bad_time_is_a_usage_error(cuecap: CliRun, rec: Path) -> None:
    code, _, err = cuecap("log", "dump", rec, "--from", "soon")
    assert code == 2
    assert "--from" in err
    assert "ISO datetime" in err


# -- bad input, the same answer for every command ------------------------------------------

COMMANDS = [
    ["info"],
    ["dump"],
    ["export", "-t", "hv_regulator", "-o", "{out}/x.csv"],
    ["cut", "--from", "1", "-o", "{out}/cut.bin"],
    ["merge", "-o", "{out}/m.bin"],
    ["frames", "-o", "{out}/frames"],
    ["video", "-o", "{out}/v.mp4"],
    ["plot", "-o", "{out}/p.png"],
    ["repair"],
]


def _run(command: list[str], path: Path, out: Path) -> tuple[int, str, str]:
    args = [a.replace("{out}", str(out)) for a in command]
    return run_cli("log", args[0], path, *args[1:])


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_missing_file(command: list[str], tmp_path: Path) -> None:
    code, _, err = _run(command, tmp_path / "nope.bin", tmp_path)
    assert code == 2
    assert "nope.bin: no such recording" in err


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_folder(command: list[str], tmp_path: Path) -> None:
    code, _, err = _run(command, tmp_path, tmp_path)
    assert code == 2
    assert "is a folder" in err


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_random_bytes_are_not_a_recording(command: list[str], tmp_path: Path) -> None:
    path = tmp_path / "noise.bin"
    data = random.Random(5).randbytes(50_000)
    path.write_bytes(data)
    code, _, err = _run(command, path, tmp_path)
    assert code == 2
    assert "not a recording" in err
    assert path.read_bytes() == data  # repair never touches what it does not understand


def test_random_bytes_with_a_plausible_first_length(tmp_path: Path) -> None:
    path = tmp_path / "noise.bin"
    path.write_bytes(b"\x10\x00\x00\x00" + bytes(range(200, 216)) + random.Random(1).randbytes(300))
    with pytest.raises(LogToolError, match=r"not a recording.*not a PurpleDrop event"):
        LogInput(path)


def test_companion_file_gets_a_hint(cuecap: CliRun, rec: Path) -> None:
    code, _, err = cuecap("log", "info", manifest_path(rec))
    assert code == 2
    assert f"did you mean {rec}" in err


def test_file_cut_short_inside_its_first_record(cuecap: CliRun, tmp_path: Path) -> None:
    raw = session(1.0)[0][1]
    path = tmp_path / "short.bin"
    path.write_bytes(len(raw).to_bytes(4, "little") + raw[:-3])
    code, _, err = cuecap("log", "info", path)
    assert code == 2
    assert "cut short" in err


def test_empty_recording_has_no_frames_for_a_video(cuecap: CliRun, tmp_path: Path) -> None:
    path = write_recording(tmp_path / "empty.bin", [])
    code, out, _ = cuecap("log", "info", path)
    assert code == 0
    assert "0 records" in out
    code, _, err = cuecap("log", "video", path, "-o", tmp_path / "v.mp4")
    assert code == 2
    assert "no camera (image) frames" in err
    assert not (tmp_path / "v.mp4").exists()
