"""``log plot`` draws a real PNG; every reader streams with flat memory and reports progress."""

from __future__ import annotations

import io
import os
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tzlocal
from conftest import CliRun
from logfixtures import T0, active, hv, image, sim_session, write_recording
from PIL import Image

from engine.logtools.cutmerge import cut
from engine.logtools.export import export_csv
from engine.logtools.info import summarize
from engine.logtools.inputs import LogInput
from engine.logtools.plot import axis_zone, collect
from engine.logtools.timerange import TimeRange
from engine.recording.writer import RecordingWriter


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_recording(
        tmp_path_factory.mktemp("plot") / "sim.bin",
        sim_session(8.0, fps=4.0),
        gaps=[(T0 + 5.0, T0 + 5.5)],
    )


def test_plot_writes_a_png_with_the_panels_the_recording_has(
    cuecap: CliRun, rec: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p.png"
    code, _, err = cuecap("log", "plot", rec, "-o", out, "--width", "8")
    assert code == 0, err
    assert "rates, capacitance, temperature, voltage" in err
    with Image.open(out) as img:
        assert img.format == "PNG"
        assert img.size[0] == 880  # 8 inches at 110 dpi
        assert img.size[1] > 600  # four panels
        colours = img.convert("RGB").getcolors(1 << 20)
    assert colours is not None and len(colours) > 50  # lines, bands and shading, not a blank page


def test_timeline_finds_the_simulated_activity(rec: Path) -> None:
    timeline = collect(LogInput(rec))
    spans = timeline.activity_spans()
    assert spans
    from engine.sim.world import SimWorld  # the ground truth of the same seeded world

    world = SimWorld(7, fps=4.0, image_size=(64, 48), idle=(1.0, 2.0), first_burst_delay=0.5)
    truth = world.activity(T0, T0 + 8.0)
    assert truth
    for t in truth:  # each electrode_state, received 1-40 ms later, lies in a shaded span
        assert any(a - 0.041 <= t <= b for a, b in spans)
    total = sum(b - a for a, b in spans)
    assert total < 0.5 * (timeline.end - timeline.start)  # shading marks bursts, not everything


def test_plot_refuses_unknown_types_and_overwrites(
    cuecap: CliRun, rec: Path, tmp_path: Path
) -> None:
    code, _, err = cuecap("log", "plot", rec, "-o", tmp_path / "p.bmp")
    assert code == 2
    assert "unknown picture type" in err
    (tmp_path / "p.png").write_bytes(b"keep")
    code, _, err = cuecap("log", "plot", rec, "-o", tmp_path / "p.png")
    assert code == 2
    assert (tmp_path / "p.png").read_bytes() == b"keep"


def test_missing_matplotlib_is_exit_3(
    cuecap: CliRun, rec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = cuecap("log", "plot", rec, "-o", tmp_path / "p.png")
    assert code == 3
    assert "pip install 'cuecap[plot]'" in err


def test_progress_reports_bytes_up_to_the_file_size(rec: Path) -> None:
    seen: list[int] = []
    summarize(LogInput(rec), seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == rec.stat().st_size
    assert len(seen) > 1


def test_memory_stays_flat_on_a_big_recording(tmp_path: Path) -> None:
    """40 MB of camera frames: info, export and cut never hold more than a few frames."""
    path = tmp_path / "big.bin"
    blob = os.urandom(200_000)
    writer = RecordingWriter(path, opened_at=T0)
    for i in range(200):
        t = T0 + i * 0.1
        writer.write(image(t, blob), t)
        writer.write(active(t, 0.5), t)
        writer.write(hv(t, 100.0), t)
    writer.close()
    assert path.stat().st_size > 40_000_000
    tracemalloc.start()
    try:
        info = summarize(LogInput(path))
        export_csv(LogInput(path), "active_capacitance", io.StringIO())
        cut(LogInput(path), tmp_path / "cut.bin", TimeRange(T0 + 5, None))
        collect(LogInput(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.types["image"].count == 200
    assert peak < 8_000_000  # a few 1 MiB read buffers and frames, not 40 MB


def test_the_time_axis_keeps_each_dates_own_utc_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    tzlocal.reload_localzone()
    try:
        zone = axis_zone(utc=False)
        summer = datetime(2026, 7, 1, 12, tzinfo=UTC)
        winter = datetime(2026, 1, 1, 12, tzinfo=UTC)
        assert summer.astimezone(zone).utcoffset() == timedelta(hours=2)
        assert winter.astimezone(zone).utcoffset() == timedelta(hours=1)
        assert axis_zone(utc=True) is UTC
    finally:
        monkeypatch.undo()
        time.tzset()
        tzlocal.reload_localzone()
