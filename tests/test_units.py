"""One parser for durations and sizes, and every configuration that takes them."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from engine.core.units import parse_duration, parse_size
from engine.rules.model import WebSocketSourceConfig
from engine.shots.config import CameraConfig, RetentionConfig, ShotsConfig

CAMERA = TypeAdapter(CameraConfig)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("2s", 2.0),
        (" 1.5 min ", 90.0),
        ("2 h", 7200.0),
        ("3", 3.0),
        ("1e-3", 0.001),
    ],
)
def test_durations_in_the_forms_people_write(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1.5KiB", 1536), ("2k", 2000), ("64MiB", 64 << 20), ("10 MB", 10_000_000), ("12", 12)],
)
def test_sizes_in_the_forms_people_write(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["soon", "2 parsecs", "-1s", True])
def test_a_bad_duration_says_what_is_accepted(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_numbers_pass_through_for_the_model_to_check() -> None:
    assert parse_duration(2.5) == 2.5
    assert parse_size(4096.0) == 4096 and isinstance(parse_size(4096.0), int)


def test_camera_and_saver_settings_take_the_same_forms_as_recorders() -> None:
    camera = CAMERA.validate_python(
        {
            "type": "http",
            "url": "http://cam/snap.jpg",
            "min_interval": "1min",
            "timeout": "1500ms",
            "live_window": "2s",
        }
    )
    assert (camera.min_interval, camera.timeout, camera.live_window) == (60.0, 1.5, 2.0)
    stream = CAMERA.validate_python({"type": "stream", "source": "pd", "max_age": "500ms"})
    assert stream.max_age == 0.5
    saver = ShotsConfig(timeout_sec="5s", buffer_ts="250ms", backoff="1s", backoff_max="1min")
    assert (saver.timeout_sec, saver.buffer_ts, saver.backoff, saver.backoff_max) == (
        5.0,
        0.25,
        1.0,
        60.0,
    )
    retention = RetentionConfig(max_bytes="500MB", min_free_bytes="2GiB", interval="10min")
    assert (retention.max_bytes, retention.min_free_bytes, retention.interval) == (
        500_000_000,
        2 << 30,
        600.0,
    )
    source = WebSocketSourceConfig(type="websocket", url="ws://pd:7001", max_size="32MiB")
    assert source.max_size == 32 << 20


def test_bounds_still_apply_after_parsing() -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        ShotsConfig(timeout_sec="0ms")
    with pytest.raises(ValidationError, match="not a duration"):
        CAMERA.validate_python({"type": "http", "url": "http://cam/x", "timeout": "fast"})
