from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from engine.core.frame import Gap
from engine.proto.purpledrop_pb2 import PurpleDropEvent
from engine.recording.format import RecordingError, index_path, manifest_path
from engine.recording.reader import RecordingReader, read_frames
from engine.recording.writer import RecordingWriter


def event(kind: str, seconds: int | None = None, **fields: float) -> bytes:
    e = PurpleDropEvent()
    msg = getattr(e, kind)
    msg.SetInParent()
    for name, value in fields.items():
        setattr(msg, name, value)
    if seconds is not None:
        msg.timestamp.seconds = seconds
    return e.SerializeToString()


def write(path: Path, items: list[tuple[bytes, float]], **kwargs: object) -> RecordingWriter:
    writer = RecordingWriter(path, recorder="r", source="s", **kwargs)  # type: ignore[arg-type]
    for raw, t in items:
        writer.write(raw, t)
    writer.close("done")
    return writer


def test_records_are_pdrecord_compatible(tmp_path: Path) -> None:
    raws = [event("active_capacitance", 1, calibrated=2.0), event("device_info")]
    path = tmp_path / "x.bin"
    write(path, [(raws[0], 100.0), (raws[1], 100.5)])
    data = path.read_bytes()
    # What PurpleDrop's reader does: <I length, then the raw bytes, nothing else.
    pos, out = 0, []
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    assert out == raws


def test_round_trip_with_times_manifest_and_gaps(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    writer = RecordingWriter(
        path, recorder="rec", source="sim", opened_at=99.0, start_reason="activity"
    )
    items = [
        (event("active_capacitance", 1, calibrated=float(i)), 100.0 + i * 0.02) for i in range(50)
    ]
    for raw, t in items:
        writer.write(raw, t)
    writer.note_gap(Gap("sim", 101.0, 103.0, "connection closed"))
    writer.note_activity(100.2)
    writer.note_activity(100.4)
    manifest = writer.close("post-roll ended", closed_at=104.0)
    frames = read_frames(path)
    assert [(f.raw, f.time, f.seq) for f in frames] == [(r, t, i) for i, (r, t) in enumerate(items)]
    stored = json.loads(manifest_path(path).read_text())
    assert stored["records"] == 50 == manifest.records
    assert stored["counts"] == {"active_capacitance": 50}
    assert stored["complete"] is True
    assert stored["start_reason"] == "activity" and stored["stop_reason"] == "post-roll ended"
    assert (stored["first_activity"], stored["last_activity"]) == (100.2, 100.4)
    assert stored["gaps"][0]["seconds"] == 2.0
    assert stored["bytes"] == path.stat().st_size


def test_truncated_last_record_is_reported_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    items = [(event("hv_regulator", i, voltage=1.0), float(i)) for i in range(1, 6)]
    write(path, items)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 3)
    reader = RecordingReader(path)
    frames = list(reader)
    assert len(frames) == 4
    assert reader.truncated_bytes == len(items[-1][0]) + 4 - 3


def test_missing_index_falls_back_to_message_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    items = [
        (event("device_info"), 1.0),
        (event("hv_regulator", 50, voltage=1.0), 50.5),
        (event("electrode_state"), 51.0),
        (event("hv_regulator", 52, voltage=1.0), 52.5),
    ]
    write(path, items)
    index_path(path).unlink()
    reader = RecordingReader(path)
    times = [f.time for f in reader]
    # device_info has no timestamp: it takes the first one found; electrode_state carries 50 forward
    assert times == [50.0, 50.0, 50.0, 52.0]
    assert reader.estimated_times == 4
    assert reader.index_problem == "no index"


def test_index_shorter_than_records_estimates_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    items = [(event("hv_regulator", 10 + i, voltage=1.0), 10.25 + i) for i in range(4)]
    write(path, items)
    idx = index_path(path)
    idx.write_bytes(idx.read_bytes()[: 8 + 16 * 2])
    reader = RecordingReader(path)
    assert [f.time for f in reader] == [10.25, 11.25, 12.0, 13.0]
    assert reader.estimated_times == 2


def test_writer_refuses_to_overwrite_and_reports_unwritable_paths(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    write(path, [(event("device_info"), 1.0)])
    with pytest.raises(RecordingError, match="already exists"):
        RecordingWriter(path)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RecordingError, match="cannot create"):
        RecordingWriter(blocker / "x.bin")
    with pytest.raises(RecordingError, match="no such recording"):
        RecordingReader(tmp_path / "missing.bin")


def test_flush_happens_by_receive_time(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    writer = RecordingWriter(path, flush_interval=0.5)
    raw = event("device_info")
    writer.write(raw, 10.0)
    writer.write(raw, 10.1)
    assert path.stat().st_size == 0  # still buffered
    writer.write(raw, 10.6)
    assert path.stat().st_size == 3 * (4 + len(raw))  # flushed: a crash now loses nothing
    writer.write(raw, 10.7)
    writer.maybe_flush(11.2)
    assert path.stat().st_size == 4 * (4 + len(raw))
    writer.close()
