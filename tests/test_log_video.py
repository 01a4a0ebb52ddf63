"""``log video`` and ``log frames``: camera frames at their own times, read back with PyAV."""

from __future__ import annotations

import itertools
import sys
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from conftest import CliRun
from logfixtures import T0, image, image_times, jpeg, session, sim_session, write_recording

from engine.logtools.errors import LogToolError
from engine.logtools.inputs import LogInput
from engine.logtools.timerange import TimeRange
from engine.logtools.video import VideoOptions, write_video


def video_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        return [float(frame.pts * frame.time_base) for frame in container.decode(stream)]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    records = sim_session(5.0)
    path = write_recording(tmp_path_factory.mktemp("video") / "sim.bin", records)
    return path, image_times(records)


def test_video_frame_count_and_times_match_the_recording(
    cuecap: CliRun, sim: tuple[Path, list[float]], tmp_path: Path
) -> None:
    path, times = sim
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) > 2 * min(gaps)  # the camera really is irregular
    out = tmp_path / "sim.mp4"
    code, _, err = cuecap("log", "video", path, "-o", out)
    assert code == 0, err
    assert f"{len(times)} frames, 64x48" in err
    got = video_times(out)
    assert len(got) == len(times)
    for g, t in zip(got, times, strict=True):
        assert g == pytest.approx(t - times[0], abs=1 / 90000)
    with av.open(str(out)) as container:  # the last frame lasts as long as the one before it
        duration = float(container.streams.video[0].duration * container.streams.video[0].time_base)
    assert duration == pytest.approx(times[-1] - times[0] + gaps[-1], abs=2 / 90000)


def test_speed_and_range(sim: tuple[Path, list[float]], tmp_path: Path) -> None:
    path, times = sim
    first = times[0]
    options = VideoOptions(time_range=TimeRange(first + 1.0, first + 3.0), speed=4.0)
    result = write_video(LogInput(path), tmp_path / "fast.mp4", options)
    selected = [t for t in times if first + 1.0 <= t < first + 3.0]
    got = video_times(tmp_path / "fast.mp4")
    assert result.frames == len(got) == len(selected)
    for g, t in zip(got, selected, strict=True):
        assert g == pytest.approx((t - selected[0]) / 4.0, abs=1 / 90000)


def test_timestamp_clock_places_frames_by_the_server_time(tmp_path: Path) -> None:
    stamps = [T0, T0 + 0.1, T0 + 0.35, T0 + 0.4]
    received = [T0 + 0.05, T0 + 0.3, T0 + 0.31, T0 + 0.9]  # network jitter
    path = write_recording(
        tmp_path / "r.bin",
        [(r, image(s, jpeg(i))) for i, (s, r) in enumerate(zip(stamps, received, strict=True))],
    )
    write_video(LogInput(path), tmp_path / "ts.mp4", VideoOptions(clock="timestamp"))
    assert video_times(tmp_path / "ts.mp4") == pytest.approx(
        [s - T0 for s in stamps], abs=1 / 90000
    )
    write_video(LogInput(path), tmp_path / "rx.mp4")
    assert video_times(tmp_path / "rx.mp4") == pytest.approx(
        [r - received[0] for r in received], abs=1 / 90000
    )


def test_overlay_draws_the_time(cuecap: CliRun, tmp_path: Path) -> None:
    records = [(T0 + i * 0.2, image(T0 + i * 0.2, jpeg(0, size=(320, 240)))) for i in range(3)]
    path = write_recording(tmp_path / "r.bin", records)
    plain, stamped = tmp_path / "plain.mp4", tmp_path / "stamped.mp4"
    write_video(LogInput(path), plain)
    code, _, err = cuecap("log", "video", path, "-o", stamped, "--timestamp", "--utc")
    assert code == 0, err

    def corner(p: Path) -> list[int]:
        with av.open(str(p)) as c:
            img = next(c.decode(video=0)).to_image().convert("L")
        return [img.getpixel((x, y)) for x in range(20, 150) for y in range(6, 16)]

    # white text on a black box where the plain frame is dark blue everywhere
    assert max(corner(stamped)) > 200 > max(corner(plain))


def test_odd_sizes_and_a_camera_that_changes_size(tmp_path: Path) -> None:
    sizes = [(65, 49), (65, 49), (128, 96), (65, 49)]
    records = [(T0 + i * 0.1, image(T0 + i * 0.1, jpeg(i, size=s))) for i, s in enumerate(sizes)]
    path = write_recording(tmp_path / "r.bin", records)
    result = write_video(LogInput(path), tmp_path / "odd.mp4")
    assert (result.width, result.height) == (64, 48)
    assert len(video_times(tmp_path / "odd.mp4")) == 4


def test_undecodable_frames_are_left_out_and_said(cuecap: CliRun, tmp_path: Path) -> None:
    records = [(T0 + i * 0.1, image(T0 + i * 0.1, jpeg(i))) for i in range(4)]
    records.insert(2, (T0 + 0.15, image(T0 + 0.15, b"\xff\xd8not really a jpeg")))
    path = write_recording(tmp_path / "r.bin", records)
    out = tmp_path / "v.mp4"
    code, _, err = cuecap("log", "video", path, "-o", out)
    assert code == 2
    assert "1 frame(s) could not be decoded" in err
    assert "record 2" in err
    assert len(video_times(out)) == 4  # the video of the good frames is still written


def test_no_frames_in_range_is_an_error(sim: tuple[Path, list[float]], tmp_path: Path) -> None:
    path, _ = sim
    with pytest.raises(LogToolError, match=r"no camera \(image\) frames in \["):
        write_video(
            LogInput(path), tmp_path / "v.mp4", VideoOptions(time_range=TimeRange(0.0, 1.0))
        )
    assert list(tmp_path.iterdir()) == []  # no half-written video left behind


def test_recording_without_camera(cuecap: CliRun, tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.bin", session(2.0, images=False))
    code, _, err = cuecap("log", "video", path, "-o", tmp_path / "v.mp4")
    assert code == 2
    assert "no camera (image) frames" in err


def test_output_rules(cuecap: CliRun, sim: tuple[Path, list[float]], tmp_path: Path) -> None:
    path, _ = sim
    code, _, err = cuecap("log", "video", path, "-o", tmp_path / "v.avi")
    assert code == 2
    assert "unknown video type '.avi'" in err
    existing = tmp_path / "v.mp4"
    existing.write_bytes(b"keep")
    code, _, err = cuecap("log", "video", path, "-o", existing)
    assert code == 2
    assert "already exists" in err
    assert existing.read_bytes() == b"keep"
    code, _, err = cuecap("log", "video", path, "-o", existing, "--force", "--preset", "ultrafast")
    assert code == 0, err
    assert existing.read_bytes()[4:8] == b"ftyp"
    code, _, err = cuecap("log", "video", path, "-o", tmp_path / "m.mkv", "--speed", "0")
    assert code == 2
    assert "--speed" in err


def test_missing_pyav_is_a_clear_error_with_exit_3(
    cuecap: CliRun, sim: tuple[Path, list[float]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    code, _, err = cuecap("log", "video", sim[0], "-o", tmp_path / "v.mp4")
    assert code == 3
    assert "pip install 'cuecap[video]'" in err


def test_missing_encoder_is_a_clear_error_with_exit_3(
    cuecap: CliRun, sim: tuple[Path, list[float]], tmp_path: Path
) -> None:
    code, _, err = cuecap(
        "log", "video", sim[0], "-o", tmp_path / "v.mp4", "--encoder", "h264_nosuch"
    )
    assert code == 3
    assert "h264_nosuch" in err
    assert not (tmp_path / "v.mp4").exists()


# -- frames --------------------------------------------------------------------------------


def test_frames_are_written_as_received_and_named_by_time(
    cuecap: CliRun, sim: tuple[Path, list[float]], tmp_path: Path
) -> None:
    path, times = sim
    out = tmp_path / "frames"
    code, _, err = cuecap("log", "frames", path, "-o", out, "--utc")
    assert code == 0, err
    files = sorted(out.iterdir())
    assert len(files) == len(times)
    expected = [datetime.fromtimestamp(t, UTC).strftime("%Y%m%d-%H%M%S.%f.jpg") for t in times]
    assert [f.name for f in files] == expected
    frames = [f for f in LogInput(path).frames(["image"])]
    assert [f.read_bytes() for f in files] == [fr.message.image_data for fr in frames]
    assert files[0].stat().st_mtime == pytest.approx(times[0], abs=1e-3)
    code, _, err = cuecap("log", "frames", path, "-o", out, "--utc")
    assert code == 2
    assert "already exists" in err


def test_frames_with_a_name_template_and_a_range(
    cuecap: CliRun, sim: tuple[Path, list[float]], tmp_path: Path
) -> None:
    path, times = sim
    out = tmp_path / "f"
    code, _, err = cuecap(
        "log", "frames", path, "-o", out, "--name", "{index:04d}_%S.jpg", "--to", "1"
    )
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    first = LogInput(path).first_time()
    assert first is not None
    assert len(names) == sum(1 for t in times if t < first + 1.0) > 0
    assert names[0].startswith("0000_")
    code, _, err = cuecap("log", "frames", path, "-o", out, "--name", "{camera}.jpg")
    assert code == 2
    assert "unknown field {camera}" in err


def test_frames_that_share_a_name_are_all_kept(cuecap: CliRun, tmp_path: Path) -> None:
    records = [(T0 + 0.1 * i, image(T0, jpeg(i))) for i in range(3)]
    path = write_recording(tmp_path / "r.bin", records)
    code, _, err = cuecap("log", "frames", path, "-o", tmp_path / "f", "--name", "same.jpg")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [
        "same-1.jpg",
        "same-2.jpg",
        "same.jpg",
    ]


def test_a_range_past_the_end_is_told_in_the_recordings_own_times(
    cuecap: CliRun, sim: tuple[Path, list[float]], tmp_path: Path
) -> None:
    path, _ = sim
    code, _, err = cuecap("log", "video", path, "-o", tmp_path / "x.mp4", "--from", "1:00")
    assert code == 2
    assert (
        "no camera (image) frames in [1:00.000, the end) of a recording of 0:00.000 to 0:0" in err
    )
    assert "17" not in err.split("frames in", 1)[1]  # no epoch seconds (17...)
    code, _, err = cuecap(
        "log", "frames", path, "-o", tmp_path / "f", "--from", "-1h", "--to", "-50m"
    )
    assert (
        code == 2
        and "[-59:54.990, -49:54.990) of a recording of 0:00.000 to 0:05.010" in err
        and "of a recording of 0:00.000 to" in err
    )


def test_speed_is_bounded_and_a_rate_players_cannot_show_is_said(
    cuecap: CliRun, sim: tuple[Path, list[float]], tmp_path: Path
) -> None:
    path, _ = sim
    for bad in ("0", "-2", "5000"):
        code, _, err = cuecap("log", "video", path, "-o", tmp_path / "x.mp4", "--speed", bad)
        assert code == 2 and "--speed" in err and "0.001<=x<=1000" in err
    code, _, err = cuecap("log", "video", path, "-o", tmp_path / "x.mp4", "--speed", "1000")
    assert code == 0
    assert "at --speed 1000 the video runs" in err and "players show at most about 60" in err
    code, _, err = cuecap("log", "video", path, "-o", tmp_path / "y.mp4", "--speed", "2")
    assert code == 0 and "warning" not in err
