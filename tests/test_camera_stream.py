"""Stream cameras: frames carried by the event stream, from memory or recordings."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.clock import ManualClock
from engine.core.frame import Frame
from engine.proto.purpledrop_pb2 import PurpleDropEvent
from engine.recording.writer import RecordingWriter
from engine.shots import (
    CaptureError,
    CaptureRequest,
    FrameCache,
    ShotsConfig,
    ShotService,
    camera_config,
)
from engine.shots.backends.stream import StreamCamera
from engine.shots.testing import make_jpeg


def image_frame(t: float, seq: int, source: str = "pd", size: int = 32) -> Frame:
    event = PurpleDropEvent()
    event.image.timestamp.seconds = int(t)
    event.image.image_data = make_jpeg(size, size, "red", text=str(seq))
    return Frame(event.SerializeToString(), t, seq, source)


def other_frame(t: float, seq: int, source: str = "pd") -> Frame:
    event = PurpleDropEvent()
    event.active_capacitance.calibrated = 1.5
    return Frame(event.SerializeToString(), t, seq, source)


def request(time: float | None = None) -> CaptureRequest:
    return CaptureRequest(camera="cam", task="t", time=time, live=True, figures=False, timeout=1)


def test_cache_keeps_only_images_per_source() -> None:
    cache = FrameCache()
    cache.update(other_frame(1.0, 1))
    cache.update(Frame(b"", 1.0, 2, "pd"))
    assert cache.latest("pd") is None
    f = image_frame(2.0, 3)
    cache.update(f)
    cache.update(image_frame(2.5, 4, source="other"))
    assert cache.latest("pd") is f and cache.sources() == ["other", "pd"]


def test_cache_is_bounded_by_age_and_bytes() -> None:
    cache = FrameCache(max_age=1.0)
    for i in range(30):
        cache.update(image_frame(i * 0.25, i))
    assert cache.span("pd") == (6.25, 7.25)
    size = len(image_frame(0, 0).raw)
    small = FrameCache(max_age=100, max_bytes=size * 3)
    for i in range(10):
        small.update(image_frame(i, i))
    first, last = small.span("pd") or (0, 0)
    assert (first, last) == (7, 9)


def test_nearest_picks_the_closest_frame_within_tolerance() -> None:
    cache = FrameCache(max_age=100)
    for i in range(10):
        cache.update(image_frame(100 + i, i))
    nearest = cache.nearest("pd", 104.4)
    assert nearest is not None and nearest.seq == 4
    nearest = cache.nearest("pd", 104.6)
    assert nearest is not None and nearest.seq == 5
    assert cache.nearest("pd", 120, tolerance=1.0) is None
    first = cache.nearest("pd", 0)
    assert first is not None and first.seq == 0
    assert cache.nearest("nope", 100) is None


async def test_stream_camera_live_refuses_stale_frames() -> None:
    clock = ManualClock(100.0)
    cache = FrameCache()
    cfg = camera_config({"type": "stream", "source": "pd", "max_age": 2})
    cam = StreamCamera("cam", cfg, cache, clock=clock)
    with pytest.raises(CaptureError, match="no image received from source 'pd' yet"):
        await cam.capture(request())
    f = image_frame(99.5, 1)
    cache.update(f)
    assert await cam.capture(request()) == f.event.image.image_data
    clock.advance(3)
    with pytest.raises(CaptureError, match=r"3\.5 s old \(max_age 2 s\)"):
        await cam.capture(request())


async def test_stream_camera_reads_past_frames_from_recordings(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "rec" / "a.bin", source="pd", opened_at=0) as writer:
        for i in range(20):
            writer.write_frame(image_frame(1000 + i, i) if i % 2 else other_frame(1000 + i, i))
    with RecordingWriter(tmp_path / "rec" / "b.bin", source="elsewhere", opened_at=0) as writer:
        writer.write_frame(image_frame(1006.9, 99, source="elsewhere"))
    cache = FrameCache()
    cfg = camera_config(
        {"type": "stream", "source": "pd", "tolerance": 0.6, "recordings": str(tmp_path / "rec")}
    )
    cam = StreamCamera("cam", cfg, cache)
    data = await cam.capture(request(time=1007.2))
    assert data == image_frame(1007, 7).event.image.image_data
    with pytest.raises(CaptureError, match=r"within 0\.6 s .* in memory or recordings"):
        await cam.capture(request(time=2000.0))


async def test_service_saves_stream_frames(tmp_path: Path) -> None:
    clock = ManualClock(500.0)
    cache = FrameCache(max_age=30)
    for i in range(5):
        cache.update(image_frame(490 + i, i))
    cameras = {"scope": {"type": "stream", "source": "pd", "max_age": 100}}
    settings = ShotsConfig(folder=str(tmp_path), file_name="{camera}-{seq}.jpg")
    async with ShotService(cameras, settings, clock=clock, frame_cache=cache) as service:
        live = await service.shoot("scope")
        past = await service.shoot("scope", dt=491.1)
    assert live == "success" and past == "success"
    assert (tmp_path / "scope-1.jpg").read_bytes() == image_frame(494, 4).event.image.image_data
    assert (tmp_path / "scope-2.jpg").read_bytes() == image_frame(491, 1).event.image.image_data


def test_stream_camera_without_cache_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no frame cache"):
        ShotService({"scope": {"type": "stream", "source": "pd"}})


def test_a_cache_told_to_keep_no_past_holds_the_newest_frame_only_until_told_again() -> None:
    cache = FrameCache(max_age=100)
    cache.keep_past(False)
    for i in range(5):
        cache.update(image_frame(i, i))
    assert cache.span("pd") == (4, 4)
    latest = cache.latest("pd")
    assert latest is not None and latest.seq == 4
    assert cache.nearest("pd", 2, tolerance=1.0) is None  # evicted, as asked
    cache.keep_past(True)
    for i in range(5, 10):
        cache.update(image_frame(i, i))
    assert cache.span("pd") == (4, 9)
