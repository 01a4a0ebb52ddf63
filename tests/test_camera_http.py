"""HTTP snapshot cameras against a real server on 127.0.0.1: auth, bad answers, retries."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from engine.shots import (
    CaptureError,
    CaptureRequest,
    HttpCameraConfig,
    ShotsConfig,
    ShotService,
    camera_config,
)
from engine.shots.backends.http import HttpCamera
from engine.shots.testing import HttpCameraServer

SECRET = "s3cr3t-pa55"


@pytest.fixture
def server() -> Any:
    with HttpCameraServer() as s:
        yield s


def http(url: str, **kw: Any) -> HttpCameraConfig:
    return camera_config({"type": "http", "url": url, **kw})


def request(live: bool = True, time: float | None = None, timeout: float = 2.0) -> CaptureRequest:
    return CaptureRequest(
        camera="cam", task="t1", time=time, live=live, figures=False, timeout=timeout
    )


async def capture(
    config: HttpCameraConfig, req: CaptureRequest | None = None, env: dict | None = None
) -> bytes:
    cam = HttpCamera("cam", config, environ=env or {})
    try:
        return await cam.capture(req or request())
    finally:
        await cam.aclose()


async def test_snapshot_is_fetched(server: HttpCameraServer) -> None:
    assert await capture(http(server.url())) == server.jpeg
    assert await capture(http(server.url("/octet"))) == server.jpeg  # untyped but a JPEG


@pytest.mark.parametrize("kind", ["basic", "digest"])
async def test_auth_with_password_from_the_environment(kind: str) -> None:
    with HttpCameraServer(auth=(kind, "admin", SECRET)) as s:
        cfg = http(s.url(), auth={"type": kind, "username": "admin", "password_env": "CAM_PASS"})
        assert await capture(cfg, env={"CAM_PASS": SECRET}) == s.jpeg
        with pytest.raises(CaptureError) as info:
            await capture(cfg, env={"CAM_PASS": "wrong"})
        assert "HTTP 401" in info.value.reason and "$CAM_PASS" in info.value.reason
        assert not info.value.retryable and SECRET not in info.value.reason


async def test_missing_password_variable_is_a_permanent_error(server: HttpCameraServer) -> None:
    cfg = http(server.url(), auth={"username": "admin", "password_env": "NOPE_PASS"})
    with pytest.raises(CaptureError, match=r"NOPE_PASS.*is not set") as info:
        await capture(cfg)
    assert not info.value.retryable


@pytest.mark.parametrize(
    ("route", "needle", "retryable"),
    [
        ("/status/500", "answered HTTP 500 Internal Server Error", True),
        ("/status/404", "answered HTTP 404", False),
        ("/html", "answered text/html, not an image: an HTML page", True),
    ],
)
async def test_bad_answers_are_errors_with_reasons(
    server: HttpCameraServer, route: str, needle: str, retryable: bool
) -> None:
    with pytest.raises(CaptureError) as info:
        await capture(http(server.url(route) + "?token=abc"))
    assert needle in info.value.reason and info.value.retryable is retryable
    assert "token=abc" not in info.value.reason  # query strings may hold secrets


async def test_unreachable_camera_is_a_retryable_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        CaptureError, match=f"cannot connect to http://127.0.0.1:{port}/snap"
    ) as info:
        await capture(http(f"http://127.0.0.1:{port}/snap"))
    assert info.value.retryable


async def test_archive_url_gets_the_requested_time(server: HttpCameraServer) -> None:
    cfg = http(
        server.url(), archive_url=server.url("/archive") + "?t={epoch}&d={utc:%Y%m%dT%H%M%S}"
    )
    await capture(cfg, request(live=False, time=1_700_000_000.5))
    assert server.queries[-1] == {"t": ["1700000000"], "d": ["20231114T221320"]}
    with pytest.raises(CaptureError, match="has no archive_url") as info:
        await capture(http(server.url()), request(live=False, time=1_700_000_000.0))
    assert not info.value.retryable


def _settings(tmp_path: Path, **kw: Any) -> ShotsConfig:
    return ShotsConfig(folder=str(tmp_path), backoff=0.001, backoff_max=0.005, **kw)


async def test_saver_against_misbehaving_cameras_retries_then_errors_cleanly(
    tmp_path: Path,
    server: HttpCameraServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/snap"
    cameras = {
        "hang": {"type": "http", "url": server.url("/hang"), "timeout": 0.2},
        "e500": {"type": "http", "url": server.url("/status/500")},
        "html": {"type": "http", "url": server.url("/html")},
        "cut": {"type": "http", "url": server.url("/truncated")},
        "dead": {"type": "http", "url": dead},
        "good": {
            "type": "http",
            "url": server.url(),
            "auth": {"username": "u", "password_env": "SHOT_TEST_PASS"},
        },
    }
    monkeypatch.setenv("SHOT_TEST_PASS", SECRET)
    async with ShotService(cameras, _settings(tmp_path, max_tries=2)) as service:
        finals = await asyncio.gather(
            *(service.shoot(n, file_name="{camera}.jpg") for n in cameras)
        )
    results = dict(zip(cameras, finals, strict=True))
    assert results["good"] == "success" and (tmp_path / "good.jpg").read_bytes() == server.jpeg
    for name in ("hang", "e500", "html", "cut", "dead"):
        assert results[name] == "error", name
        assert results[name].try_number == 2, name  # retried once
    assert "within 0.2 s" in results["hang"].reason
    assert "HTTP 500" in results["e500"].reason
    assert "HTML" in results["html"].reason
    assert "incomplete JPEG" in results["cut"].reason
    assert "cannot connect" in results["dead"].reason
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["good.jpg"]  # nothing partial
    assert all(SECRET not in r.getMessage() for r in caplog.records)


async def test_transient_failure_recovers_on_retry(tmp_path: Path) -> None:
    with HttpCameraServer(flaky_failures=1) as s:
        async with ShotService(
            {"cam": {"type": "http", "url": s.url("/flaky")}}, _settings(tmp_path)
        ) as service:
            result = await service.shoot("cam")
    assert result == "success" and result.try_number == 2
    assert result.path is not None and result.path.read_bytes() == s.jpeg
