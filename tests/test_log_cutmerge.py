"""``log cut`` and ``log merge``: new recordings that give back exactly the old records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CliRun
from logfixtures import T0, session, sim_session, write_recording

from engine.logtools.cutmerge import cut, merge
from engine.logtools.errors import LogToolError
from engine.logtools.inputs import LogInput
from engine.logtools.timerange import TimeRange
from engine.recording.format import INDEX_ENTRY, INDEX_MAGIC, index_path, manifest_path
from engine.recording.reader import read_frames


def index_entries(path: Path) -> list[tuple[int, float]]:
    data = index_path(path).read_bytes()
    assert data[: len(INDEX_MAGIC)] == INDEX_MAGIC
    return list(INDEX_ENTRY.iter_unpack(data[len(INDEX_MAGIC) :]))


@pytest.fixture(scope="module")
def records() -> list[tuple[float, bytes]]:
    return sim_session(6.0)


@pytest.fixture
def rec(tmp_path: Path, records: list[tuple[float, bytes]]) -> Path:
    return write_recording(
        tmp_path / "a.bin", records, gaps=[(T0 + 4.0, T0 + 4.2)], activity=[T0 + 0.6, T0 + 1.5]
    )


def test_cut_then_merge_gives_back_the_same_records(
    cuecap: CliRun, rec: Path, tmp_path: Path
) -> None:
    for i, (lo, hi) in enumerate([(None, "2"), ("2", "4.5"), ("4.5", None)]):
        args = [a for pair in (("--from", lo), ("--to", hi)) if pair[1] for a in pair]
        code, _, err = cuecap("log", "cut", rec, *args, "-o", tmp_path / f"part{i}.bin")
        assert code == 0, err
    parts = [tmp_path / f"part{i}.bin" for i in (2, 0, 1)]  # any order: merge sorts by time
    code, _, err = cuecap("log", "merge", *parts, "-o", tmp_path / "whole.bin")
    assert code == 0, err
    whole = tmp_path / "whole.bin"
    assert whole.read_bytes() == rec.read_bytes()
    assert index_entries(whole) == index_entries(rec)
    manifest = json.loads(manifest_path(whole).read_text())
    original = json.loads(manifest_path(rec).read_text())
    assert manifest["records"] == original["records"]
    assert manifest["counts"] == original["counts"]
    assert manifest["first_time"] == original["first_time"]
    assert manifest["last_time"] == original["last_time"]
    assert manifest["gaps"] == original["gaps"]
    assert manifest["complete"] is True


def test_cut_keeps_the_half_open_range_and_says_where_it_came_from(
    rec: Path, records: list[tuple[float, bytes]], tmp_path: Path
) -> None:
    first = records[0][0]
    out = tmp_path / "cut.bin"
    manifest = cut(LogInput(rec), out, TimeRange(first + 1.0, first + 3.0))
    expected = [(t, raw) for t, raw in records if first + 1.0 <= t < first + 3.0]
    frames = read_frames(out)
    assert [(f.time, f.raw) for f in frames] == expected
    assert manifest.records == len(expected)
    assert manifest.extra["cut"] == {"from": str(rec), "start": first + 1.0, "end": first + 3.0}
    assert manifest.recorder == "test"
    assert manifest.gaps == []  # the gap at +4 s lies outside
    assert manifest.first_activity is None  # activity spanned the cut's start: not known exactly
    inside = cut(LogInput(rec), tmp_path / "cut2.bin", TimeRange(first, first + 5.0))
    assert inside.first_activity == T0 + 0.6
    assert len(inside.gaps) == 1


def test_cut_of_an_empty_range_is_an_error_and_leaves_nothing(
    cuecap: CliRun, rec: Path, tmp_path: Path
) -> None:
    out = tmp_path / "none.bin"
    code, _, err = cuecap(
        "log", "cut", rec, "--from", "@1000000000", "--to", "@1000000001", "-o", out
    )
    assert code == 2
    assert "no records in" in err
    assert not out.exists()
    assert not index_path(out).exists()
    assert not manifest_path(out).exists()


def test_cut_needs_a_range_and_refuses_to_overwrite(
    cuecap: CliRun, rec: Path, tmp_path: Path
) -> None:
    code, _, err = cuecap("log", "cut", rec, "-o", tmp_path / "x.bin")
    assert code == 2
    assert "--from, --to" in err
    code, _, err = cuecap("log", "cut", rec, "--from", "1", "-o", rec)
    assert code == 2
    assert "is the input" in err
    (tmp_path / "taken.bin").write_bytes(b"precious")
    code, _, err = cuecap("log", "cut", rec, "--from", "1", "-o", tmp_path / "taken.bin")
    assert code == 2
    assert "already exists" in err
    assert (tmp_path / "taken.bin").read_bytes() == b"precious"


def test_cut_from_the_end(
    cuecap: CliRun, rec: Path, records: list[tuple[float, bytes]], tmp_path: Path
) -> None:
    manifest = cut(LogInput(rec), tmp_path / "tail.bin", TimeRange(records[-1][0] - 1.0, None))
    code, _, _ = cuecap("log", "cut", rec, "--from", "-1", "-o", tmp_path / "tail2.bin")
    assert code == 0
    assert (tmp_path / "tail2.bin").read_bytes() == (tmp_path / "tail.bin").read_bytes()
    assert manifest.records == sum(1 for t, _ in records if t >= records[-1][0] - 1.0)


def test_overlapping_recordings_are_refused_unless_interleaved(
    cuecap: CliRun, tmp_path: Path
) -> None:
    a_records = session(4.0, seed=1, images=False)
    b_records = [(t + 2.0005, raw) for t, raw in session(4.0, seed=2, images=False)]
    a = write_recording(tmp_path / "a.bin", a_records)
    b = write_recording(tmp_path / "b.bin", b_records)
    code, _, err = cuecap("log", "merge", a, b, "-o", tmp_path / "m.bin")
    assert code == 2
    assert "overlap" in err
    assert "--interleave" in err
    assert not (tmp_path / "m.bin").exists()
    assert not index_path(tmp_path / "m.bin").exists()
    code, _, err = cuecap("log", "merge", b, a, "--interleave", "-o", tmp_path / "m.bin")
    assert code == 0, err
    merged = read_frames(tmp_path / "m.bin")
    expected = sorted(a_records + b_records, key=lambda item: item[0])
    assert [(f.time, f.raw) for f in merged] == expected
    manifest = json.loads(manifest_path(tmp_path / "m.bin").read_text())
    assert manifest["extra"]["interleaved"] is True
    assert manifest["extra"]["merged_from"] == [str(a), str(b)]


def test_merge_refuses_its_own_input_as_output(rec: Path) -> None:
    with pytest.raises(LogToolError, match="is one of the inputs"):
        merge([LogInput(rec)], rec)


def test_merge_of_inputs_without_index_says_times_are_estimated(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "plain.bin", session(2.0, images=False))
    index_path(path).unlink()
    manifest = merge([LogInput(path)], tmp_path / "out.bin")
    assert manifest.extra["times_estimated"] == manifest.records > 0


def test_cut_and_merge_replace_their_output_with_force(
    cuecap: CliRun, rec: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.bin"
    assert cuecap("log", "cut", rec, "--to", "1", "-o", out)[0] == 0
    first = out.read_bytes()
    assert cuecap("log", "cut", rec, "--to", "2", "-o", out)[0] == 2
    assert out.read_bytes() == first
    code, _, err = cuecap("log", "cut", rec, "--to", "2", "-o", out, "--force")
    assert code == 0, err
    assert len(out.read_bytes()) > len(first) and LogInput(out).manifest is not None
    assert len(list(LogInput(out).frames())) == LogInput(out).manifest["records"]
    code, _, err = cuecap("log", "merge", rec, "-o", out)
    assert code == 2 and "or -f/--force" in err
    code, _, err = cuecap("log", "merge", rec, "-o", out, "-f")
    assert code == 0, err
    assert out.read_bytes() == rec.read_bytes()
    code, _, err = cuecap("log", "cut", rec, "--to", "1", "-o", rec, "-f")  # never the input
    assert code == 2 and "is the input" in err
