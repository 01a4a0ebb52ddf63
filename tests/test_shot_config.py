from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from engine.shots.config import (
    CameraConfig,
    CommandCameraConfig,
    HttpCameraConfig,
    ShotsConfig,
    ShotsFile,
)

CAMERA = TypeAdapter(CameraConfig)


def test_camera_type_chooses_the_model() -> None:
    cam = CAMERA.validate_python(
        {
            "type": "http",
            "url": "http://10.0.0.5/snap.jpg",
            "auth": {"type": "digest", "username": "admin", "password_env": "GATE_PASS"},
            "min_interval": 5,
        }
    )
    assert isinstance(cam, HttpCameraConfig)
    assert cam.auth is not None and cam.auth.type == "digest"
    cmd = CAMERA.validate_python(
        {"type": "command", "argv": ["ffmpeg", "-i", "rtsp://cam/1", "-frames:v", "1", "{output}"]}
    )
    assert isinstance(cmd, CommandCameraConfig)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"type": "http", "url": "http://u:p@cam/snap"}, "credentials in the URL"),
        ({"type": "http", "url": "ftp://cam/snap"}, "not an http"),
        (
            {
                "type": "http",
                "url": "http://cam/x",
                "auth": {"username": "a", "password_env": "x-y"},
            },
            "environment variable name",
        ),
        (
            {"type": "http", "url": "http://cam/x", "file_name": "{camera.__class__}.jpg"},
            "attribute and index lookups",
        ),
        ({"type": "http", "url": "http://cam/x", "folder": "{nope}"}, "unknown field {nope}"),
        ({"type": "http", "url": "http://cam/x?t={when}"}, "unknown field {when}"),
        ({"type": "command", "argv": ["grab", "{out}"]}, "argv[1]"),
        ({"type": "python", "function": "not a path"}, "module:function"),
        ({"type": "stream"}, "source"),
        ({"type": "rtsp", "url": "rtsp://x"}, "rtsp"),
        ({"type": "http", "url": "http://cam/x", "pasword_env": "X"}, "pasword_env"),
    ],
)
def test_bad_cameras_are_refused_with_a_reason(data: dict, needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        CAMERA.validate_python(data)
    assert needle in str(info.value)


def test_template_error_points_at_the_camera_field_and_column() -> None:
    with pytest.raises(ValidationError) as info:
        ShotsFile.model_validate(
            {"cameras": {"gate": {"type": "http", "url": "http://c/x", "file_name": "ab{x.y}"}}}
        )
    error = info.value.errors()[0]
    assert error["loc"][:4] == ("cameras", "gate", "http", "file_name")
    assert "column 3" in error["msg"]


def test_settings_defaults_match_the_seed_and_are_checked_on_assignment() -> None:
    s = ShotsConfig()
    assert (s.pool_size, s.timeout_sec, s.max_tries, s.buffer_ts) == (10, 10.0, 2, 0.0)
    assert s.file_name == "{camera} (%Y.%m.%d %H-%M-%S.%f).jpg"
    with pytest.raises(ValidationError):
        s.pool_size = 0
    with pytest.raises(ValidationError, match="retention needs"):
        ShotsConfig.model_validate({"retention": {}})
    r = ShotsConfig.model_validate({"retention": {"max_bytes": "2 MiB", "keep_days": 7}}).retention
    assert r is not None and r.max_bytes == 2 * 1024 * 1024
    with pytest.raises(ValidationError, match="unknown time zone"):
        ShotsConfig(timezone="Mars/Olympus")
