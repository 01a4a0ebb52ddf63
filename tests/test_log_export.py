"""``log export``: CSV time series whose rows match ``log dump``."""

from __future__ import annotations

import csv
import io
import json
import math
import struct
from pathlib import Path

import pytest
from conftest import CliRun
from google.protobuf.json_format import MessageToDict
from hypothesis import given
from hypothesis import strategies as st
from logfixtures import T0, scan, session, sim_session, write_recording

from engine.logtools.errors import LogToolError
from engine.logtools.export import export_csv, shortest_float32
from engine.logtools.inputs import LogInput
from engine.proto.purpledrop_pb2 import ActiveCapacitance


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_recording(tmp_path_factory.mktemp("export") / "sim.bin", sim_session(4.0))


def _dump_value(fields: dict[str, object], column: str) -> object:
    """The value of a CSV column, looked up the other way: by walking the dump's JSON."""
    node: object = fields
    parts = column.split("_")
    i = 0
    while i < len(parts):
        assert isinstance(node, dict | list), column
        if isinstance(node, list):
            node = node[int(parts[i])]
            i += 1
            continue
        for j in range(len(parts), i, -1):  # longest field name first: drop_present, v_target_out
            key = "_".join(parts[i:j])
            if key in node:
                node = node[key]
                i = j
                break
        else:
            if parts[i:] == ["size"] and isinstance(node, dict):
                return node["size"]
            raise AssertionError(f"{column}: no {parts[i:]} in the dump")
    return node


@pytest.mark.parametrize(
    "kind",
    ["active_capacitance", "group_capacitance", "scan_capacitance", "temperature_control",
     "hv_regulator", "electrode_state", "image", "image_transform", "device_info"],
)  # fmt: skip
def test_csv_rows_match_dump(cuecap: CliRun, rec: Path, kind: str, tmp_path: Path) -> None:
    out = tmp_path / f"{kind}.csv"
    code, _, err = cuecap("log", "export", rec, "--type", kind, "-o", out)
    assert code == 0, err
    rows = list(csv.DictReader(out.open()))
    code, dumped, _ = cuecap("log", "dump", rec, "--type", kind)
    dump = [json.loads(line) for line in dumped.splitlines()]
    assert len(rows) == len(dump) > 0
    numeric = [c for c in rows[0] if c not in ("time", "seq", "timestamp")]
    assert numeric, "every type has at least one numeric column"
    for row, d in zip(rows, dump, strict=True):
        assert float(row["time"]) == d["time"]
        assert int(row["seq"]) == d["seq"]
        if "timestamp" in row:
            assert (float(row["timestamp"]) if row["timestamp"] else None) == d["timestamp"]
        for column in numeric:
            if row[column] == "":
                with pytest.raises((IndexError, AssertionError)):
                    _dump_value(d[kind], column)
                continue
            expected = _dump_value(d[kind], column)
            if isinstance(expected, bool):
                expected = int(expected)
            assert float(row[column]) == expected, (column, row["seq"])


def test_columns_flatten_repeated_and_nested_fields(rec: Path) -> None:
    out = io.StringIO()
    result = export_csv(LogInput(rec), "scan_capacitance", out)
    header = result.columns
    assert header[:3] == ["time", "seq", "timestamp"]
    assert header[3:6] == [
        "measurements_0_capacitance",
        "measurements_0_drop_present",
        "measurements_0_raw",
    ]
    assert "measurements_127_raw" in header
    out = io.StringIO()
    header = export_csv(LogInput(rec), "temperature_control", out).columns
    assert header == [
        "time",
        "seq",
        "timestamp",
        "temperatures_0",
        "temperatures_1",
        "duty_cycles_0",
        "duty_cycles_1",
    ]
    image_header = export_csv(LogInput(rec), "image", io.StringIO()).columns
    assert image_header == ["time", "seq", "timestamp", "image_data_size"]


def test_shorter_repeated_fields_leave_cells_empty(tmp_path: Path) -> None:
    path = write_recording(
        tmp_path / "r.bin", [(T0, scan(T0, [1.0, 2.0, 3.0])), (T0 + 1, scan(T0 + 1, [4.0]))]
    )
    out = io.StringIO()
    export_csv(LogInput(path), "scan_capacitance", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["measurements_2_capacitance"] == "3.0"
    assert rows[1]["measurements_0_capacitance"] == "4.0"
    assert rows[1]["measurements_2_capacitance"] == ""


def test_time_range_and_stdout(cuecap: CliRun, rec: Path) -> None:
    code, out, _ = cuecap(
        "log", "export", rec, "-t", "hv_regulator", "-o", "-", "--from", "1", "--to", "3"
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert len(rows) == 2


def test_a_type_the_recording_lacks_is_an_error(cuecap: CliRun, tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.bin", session(2.0, images=False))
    with pytest.raises(LogToolError, match="no image messages"):
        export_csv(LogInput(path), "image", io.StringIO())
    code, _, _err = cuecap("log", "export", path, "-t", "image", "-o", tmp_path / "x.csv")
    assert code == 2
    assert not (tmp_path / "x.csv").exists()


@given(st.floats(width=32, allow_nan=False))
def test_shortest_float32_is_what_protobuf_json_shows(value: float) -> None:
    short = shortest_float32(value)
    assert struct.unpack("<f", struct.pack("<f", short))[0] == value
    assert len(repr(short)) <= len(repr(value))
    shown = MessageToDict(ActiveCapacitance(baseline=value))["baseline"] if value else 0.0
    assert short == (float(shown) if isinstance(shown, str) else shown)


def test_shortest_float32_keeps_nan() -> None:
    assert math.isnan(shortest_float32(math.nan))
