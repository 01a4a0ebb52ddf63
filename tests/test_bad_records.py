"""A bad record never hides a recording: every tool counts it, skips it and reads the rest."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from logfixtures import session, write_recording

from engine.cli.main import main
from engine.core.frame import peek_kind
from engine.logtools.errors import LogToolError
from engine.logtools.info import summarize
from engine.logtools.inputs import LogInput
from engine.recording.format import RECORD_HEADER, index_path, manifest_path
from engine.sources.log import LogSource

# A record whose first byte is no PurpleDrop field: what a server may send by mistake.
BAD = b"\xff\xfe not an event"

COMMANDS = [
    ["info"],
    ["dump"],
    ["export", "-t", "hv_regulator", "-o", "{out}/x.csv"],
    ["cut", "--to", "3", "-o", "{out}/cut.bin"],  # a range that holds the bad record
    ["merge", "-o", "{out}/m.bin"],
    ["frames", "-o", "{out}/frames"],
    ["video", "-o", "{out}/v.mp4"],
    ["plot", "-o", "{out}/p.png"],
    ["repair"],
]


def cuecap(*args: str | os.PathLike[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def records() -> list[tuple[float, bytes]]:
    good = session(4.0)
    return [(good[0][0] - 0.001, BAD), *good]


def _bare(path: Path, records: list[tuple[float, bytes]]) -> Path:
    """The same records with no index or manifest: a plain ``pdrecord`` file."""
    with open(path, "wb") as f:
        for _, raw in records:
            f.write(RECORD_HEADER.pack(len(raw)) + raw)
    return path


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_bad_first_record_of_a_cuecap_recording(
    command: list[str], tmp_path: Path, records: list[tuple[float, bytes]]
) -> None:
    rec = write_recording(tmp_path / "a.bin", records)
    args = [a.replace("{out}", str(tmp_path)) for a in command]
    code, out, err = cuecap("log", args[0], rec, *args[1:])
    assert "not a recording" not in err
    assert code in (0, 2), err  # 2: the tool did its work and says a record was left out
    said = out + err
    if args[0] == "repair":  # repair keeps every record, byte for byte
        assert f"{len(records)} records" in said, said
        return
    assert "1 record(s) are not PurpleDrop events" in said or "invalid     1" in said, said


def test_info_counts_the_bad_record_and_every_good_one(
    tmp_path: Path, records: list[tuple[float, bytes]]
) -> None:
    for path in (write_recording(tmp_path / "a.bin", records), _bare(tmp_path / "b.bin", records)):
        facts = summarize(LogInput(path))
        assert facts.records == len(records)
        assert facts.invalid == 1
        good = [peek_kind(raw) for _, raw in records[1:]]
        assert sum(v.count for v in facts.types.values()) == len(good)


def test_bare_file_of_records_is_a_recording(
    tmp_path: Path, records: list[tuple[float, bytes]]
) -> None:
    path = _bare(tmp_path / "b.bin", records)
    assert not index_path(path).exists() and not manifest_path(path).exists()
    LogInput(path)  # does not raise


def test_only_bad_records_but_ours_is_still_a_recording(tmp_path: Path) -> None:
    rec = write_recording(tmp_path / "a.bin", [(1.0, BAD), (2.0, BAD)])
    log = LogInput(rec)
    assert len(list(log.frames())) == 2
    assert log.invalid == 2
    index_path(rec).unlink()  # the manifest alone says it is ours
    LogInput(rec)
    manifest_path(rec).unlink()  # two whole records chaining to the end of the file
    LogInput(rec)


def test_one_bad_record_and_noise_is_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "noise.bin"
    path.write_bytes(RECORD_HEADER.pack(len(BAD)) + BAD + b"\xff\xff\xff\x7f tail")
    with pytest.raises(LogToolError, match="not a recording"):
        LogInput(path)


def test_replay_counts_and_passes_over_the_bad_record(
    tmp_path: Path, records: list[tuple[float, bytes]]
) -> None:
    rec = write_recording(tmp_path / "a.bin", records)

    async def drain() -> LogSource:
        source = LogSource(rec)
        async for _ in source:
            pass
        return source

    source = asyncio.run(drain())
    assert source.stats.frames == len(records)
    assert source.stats.invalid == 1


def test_cuecap_replay_counts_the_bad_record_and_replays_the_rest(
    tmp_path: Path, records: list[tuple[float, bytes]]
) -> None:
    rec = write_recording(tmp_path / "a.bin", records)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"sources:\n  pd: {{type: replay, path: '{rec}'}}\n"
        "rules:\n  moves:\n    when: {type: message, types: electrode_state}\n"
        "    do: {type: log, message: moved}\n"
    )
    code, out, err = cuecap("replay", rec, rules)
    assert code == 0, err
    assert f"{len(records)} frames (1 invalid)" in out.splitlines()[0]
    moves = sum(1 for _, raw in records if peek_kind(raw) == "electrode_state")
    assert f"moves: {moves}" in out


@pytest.mark.parametrize(
    "manifest",
    [b"[" * 200_000 + b"]" * 200_000, b'{"a": "' + b"x" * (65 << 20) + b'"}', b"\xff\xfe"],
    ids=["deep", "huge", "not-utf8"],
)
def test_a_hostile_manifest_is_unreadable_not_fatal(
    tmp_path: Path, records: list[tuple[float, bytes]], manifest: bytes
) -> None:
    rec = write_recording(tmp_path / "a.bin", records)
    manifest_path(rec).write_bytes(manifest)
    code, out, err = cuecap("log", "info", rec)
    assert "Traceback" not in err
    assert code in (0, 2), err
    assert f"{len(records)} records" in out
