"""Stand-in cameras for tests, examples and benchmarks: no hardware needed.

``HttpCameraServer`` is a real HTTP snapshot camera on 127.0.0.1 (a free
port), with routes that misbehave on purpose (500, HTML, hang, cut-short JPEG)
and optional basic or digest authentication. ``FlakyCamera`` is an in-process
camera with seeded random delays and failures that counts how many shots it
serves at once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import random
import secrets
import threading
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from engine.shots.backends.base import CaptureError, CaptureRequest


@lru_cache(maxsize=32)
def make_jpeg(width: int = 32, height: int = 24, color: str = "purple", text: str = "") -> bytes:
    """A small valid JPEG (Pillow), cached."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), color)
    if text:
        ImageDraw.Draw(image).text((2, 2), text, fill="white")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    server: HttpCameraServer._Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(
        self, code: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        owner: HttpCameraServer = self.server.owner
        if owner.auth is None:
            return True
        kind, user, password = owner.auth
        header = self.headers.get("Authorization", "")
        if kind == "basic":
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if header == expected:
                return True
            self._send(
                401, b"unauthorized", "text/plain", {"WWW-Authenticate": 'Basic realm="cam"'}
            )
            return False
        if header.startswith("Digest "):
            params = dict(
                (k.strip(), v.strip().strip('"'))
                for k, _, v in (p.partition("=") for p in header[7:].split(","))
            )
            ha1 = _md5(f"{user}:cam:{password}")
            ha2 = _md5(f"{self.command}:{params.get('uri', '')}")
            expected = _md5(
                f"{ha1}:{params.get('nonce')}:{params.get('nc')}:{params.get('cnonce')}:"
                f"{params.get('qop')}:{ha2}"
            )
            if params.get("username") == user and params.get("response") == expected:
                return True
        nonce = secrets.token_hex(8)
        challenge = f'Digest realm="cam", nonce="{nonce}", qop="auth", algorithm=MD5'
        self._send(401, b"unauthorized", "text/plain", {"WWW-Authenticate": challenge})
        return False

    def do_GET(self) -> None:
        owner: HttpCameraServer = self.server.owner
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if query:  # before answering: the client may look as soon as it has the answer
            owner.queries.append(query)
        owner._enter(self.path)
        try:
            if not self._authorized():
                return
            route = url.path
            if route == "/hang":
                owner.stop.wait(60)
                return
            if owner.delay:
                owner.stop.wait(owner.delay)
            if route in ("/snapshot.jpg", "/archive"):
                self._send(200, owner.jpeg, "image/jpeg")
            elif route == "/flaky":
                with owner.lock:
                    owner.flaky_left -= 1
                    fail = owner.flaky_left >= 0
                if fail:
                    self._send(503, b"busy", "text/plain")
                else:
                    self._send(200, owner.jpeg, "image/jpeg")
            elif route.startswith("/status/"):
                self._send(int(route.rsplit("/", 1)[1]), b"oops", "text/plain")
            elif route == "/html":
                self._send(200, b"<!DOCTYPE html><html><body>Login</body></html>", "text/html")
            elif route == "/truncated":
                self._send(200, owner.jpeg[: len(owner.jpeg) // 2], "image/jpeg")
            elif route == "/octet":
                self._send(200, owner.jpeg, "application/octet-stream")
            else:
                self._send(404, b"no such route", "text/plain")
        finally:
            owner._leave()


class HttpCameraServer:
    """A snapshot camera on ``127.0.0.1:<free port>``; use as a context manager.

    Routes: ``/snapshot.jpg``, ``/archive`` (records its query), ``/flaky``
    (503 for the first ``flaky_failures`` requests), ``/status/<code>``,
    ``/html``, ``/truncated``, ``/octet``, ``/hang`` (until ``close``).
    ``auth=("basic"|"digest", user, password)`` protects every route.
    """

    class _Server(ThreadingHTTPServer):
        daemon_threads = True
        owner: HttpCameraServer

    def __init__(
        self,
        *,
        jpeg: bytes | None = None,
        auth: tuple[str, str, str] | None = None,
        delay: float = 0.0,
        flaky_failures: int = 0,
    ) -> None:
        self.jpeg = jpeg if jpeg is not None else make_jpeg(text="cam")
        self.auth = auth
        self.delay = delay
        self.flaky_left = flaky_failures
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.queries: list[dict[str, list[str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._server = self._Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, route: str = "/snapshot.jpg") -> str:
        return f"http://127.0.0.1:{self.port}{route}"

    def _enter(self, path: str) -> None:
        with self.lock:
            self.requests.append(path)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def close(self) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> HttpCameraServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FlakyCamera:
    """An async camera function: seeded random delays and failures, concurrency counted."""

    def __init__(
        self,
        *,
        failure_rate: float = 0.2,
        max_delay: float = 0.001,
        seed: int = 1,
        jpeg: bytes | None = None,
    ) -> None:
        self.failure_rate = failure_rate
        self.max_delay = max_delay
        self.random = random.Random(seed)
        self.jpeg = jpeg if jpeg is not None else make_jpeg()
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls = 0

    async def __call__(self, request: CaptureRequest) -> bytes:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            delay = self.random.random() * self.max_delay
            fail = self.random.random() < self.failure_rate
            await asyncio.sleep(delay)
            if fail:
                raise CaptureError("flaky camera failed on purpose")
            return self.jpeg
        finally:
            self.in_flight -= 1


_demo: HttpCameraServer | None = None


def demo_camera() -> dict[str, object]:
    """A camera config for examples: yours from the environment, else a local stand-in.

    ``CUECAP_CAMERA_URL`` (and optionally ``CUECAP_CAMERA_ARCHIVE_URL``) name a
    real snapshot camera; without them a stand-in HTTP camera starts on
    127.0.0.1 for as long as the program runs.
    """
    global _demo
    import os

    url = os.environ.get("CUECAP_CAMERA_URL")
    if url:
        config: dict[str, object] = {"type": "http", "url": url}
        archive = os.environ.get("CUECAP_CAMERA_ARCHIVE_URL")
        if archive:
            config["archive_url"] = archive
        return config
    if _demo is None:
        _demo = HttpCameraServer(jpeg=make_jpeg(320, 240, "teal", text="cuecap demo camera"))
    return {"type": "http", "url": _demo.url(), "archive_url": _demo.url("/archive") + "?t={epoch}"}
