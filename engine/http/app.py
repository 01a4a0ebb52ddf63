"""The status page, the JSON API and /metrics of one engine, as an ASGI application.

Routes (the OpenAPI description is at ``/api/openapi.json``)::

    GET  /                          the status page (no build step, no CDN)
    GET  /healthz  /readyz          alive; ready (sources connected, no recorder in error)
    GET  /metrics                   Prometheus text format
    GET  /api/status                everything below in one snapshot
    GET  /api/sources  /api/recorders[/NAME]  /api/cameras[/NAME]  /api/rules[/NAME]
    GET  /api/segments  /api/shots  /api/firings       the recent ones, newest first
    GET  /api/segments/file/PATH  /api/shots/file/PATH  downloads (recordings, shots only)
    GET  /api/site                  the site's engines, which ran recent fires, warnings (cluster)
    GET  /api/events                every event as server-sent events (the event model's JSON)
    GET  /api/live                  the page's stream: events plus a status (and site) each second
    POST /api/recorders/NAME/start  /api/recorders/NAME/stop
    POST /api/rules/NAME/fire       /api/cameras/NAME/shot
    POST /api/session               sign in with the token (sets the page's cookie)

Every request passes ``AccessPolicy`` first (``engine/http/security.py``);
every answer carries headers that keep the page from being framed or from
running scripts of anyone else. Handlers run on the engine's loop and only
read snapshots or call ``Engine.control``: none blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable
from http.cookies import SimpleCookie
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.cluster.roster import SiteStatus, no_site, site_of
from engine.core.templates import PathEscapeError
from engine.http.files import inside
from engine.http.security import COOKIE, AccessPolicy, Kind, Verdict, token_matches
from engine.runtime.control import ControlRefused, ControlResult, UnknownTarget
from engine.runtime.status import (
    CameraStatus,
    EngineStatus,
    FiringStatus,
    RecorderState,
    RecorderStatus,
    RuleStatus,
    SegmentStatus,
    ShotStatusInfo,
    SourceStatus,
    relative_to,
)

if TYPE_CHECKING:
    from engine.http.metrics import Metrics
    from engine.runtime.engine import Engine
    from engine.runtime.subscribers import EventStream

_T = TypeVar("_T")

MAX_BODY = 4096  # bytes: no request needs more than a token
MAX_STREAMS = 32  # open event streams at once; more get 503
STREAM_BUFFER = 1000  # events held for a slow stream reader (oldest dropped)
KEEPALIVE = 15.0  # seconds between comments on a quiet stream (proxies close idle ones)
LIVE_PERIOD = 1.0  # seconds between status snapshots on the page's stream
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css", "signin.js": "text/javascript"}
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),  # no embedding shots in other sites
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    ),
]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    reasons: list[str]


class SignIn(BaseModel):
    token: str


def _page(name: str) -> bytes:
    return resources.files("engine.http").joinpath("page", name).read_bytes()


class _Guard:
    """ASGI middleware: the access rules before any route, security headers after."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        cookies: dict[str, str] = {}
        if "cookie" in headers:
            with contextlib.suppress(Exception):
                cookies = {k: m.value for k, m in SimpleCookie(headers["cookie"]).items()}
        method, path = scope["method"], scope["path"]
        if method in ("GET", "HEAD"):
            kind = Kind.READ
        elif path == "/api/session":
            kind = Kind.SIGN_IN
        else:
            kind = Kind.CONTROL
        client = scope.get("client")
        verdict = self.policy.check(
            kind=kind,
            client=client[0] if client else None,
            headers=headers,
            cookies=cookies,
        )

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        if verdict is Verdict.ALLOW:
            await self.app(scope, receive, send_secured)
            return
        if verdict is Verdict.NEEDS_TOKEN and kind is Kind.READ and path == "/":
            response: Response = Response(
                _page("signin.html"), status_code=401, media_type="text/html"
            )
        elif verdict is Verdict.NEEDS_TOKEN:
            response = JSONResponse(
                {"error": "this needs the access token (Authorization: Bearer TOKEN)"},
                status_code=401,
                headers={"www-authenticate": "Bearer"},
            )
        else:
            response = JSONResponse(
                {"error": "refused: cross-site request or a host name this server does not have"},
                status_code=403,
            )
        await response(scope, receive, send_secured)


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def build_app(
    engine: Engine, policy: AccessPolicy, metrics: Metrics
) -> tuple[ASGIApp, set[EventStream]]:
    """The application serving ``engine`` and its open event streams (to close at shutdown).

    ``policy`` guards every request; ``metrics`` answers /metrics.
    """
    app = FastAPI(
        title="cuecap",
        summary="See and steer a running cuecap engine.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # the interactive docs load scripts from a CDN: not here
        redoc_url=None,
        max_body_size=MAX_BODY,
    )
    streams: set[EventStream] = set()

    def status() -> EngineStatus:
        return engine.status()

    def site() -> SiteStatus:
        reporter = site_of(engine.adapters)
        return reporter.site_status() if reporter is not None else no_site(engine.clock.time())

    def recordings_root() -> Path:
        return Path(engine.recordings_root)

    def shots_root() -> Path:
        shots = engine.shots
        folder = shots.settings.folder if shots is not None else engine.rules.settings.shots.folder
        return Path(folder)

    def found(get: Callable[[str], _T], kind: str, name: str) -> _T:
        try:
            return get(name)
        except KeyError:
            raise HTTPException(404, f"no {kind} named {name!r}") from None

    # -- the page -----------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return Response(_page("index.html"), media_type="text/html")

    @app.get("/page/{name}", include_in_schema=False)
    async def page_file(name: str) -> Response:
        media = PAGE_FILES.get(name)
        if media is None:
            raise HTTPException(404, "no such file")
        return Response(_page(name), media_type=media)

    # -- health and metrics -------------------------------------------------------

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        """The engine's loop answers."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Readiness, tags=["health"])
    async def readyz() -> JSONResponse:
        """Ready: running, every source connected, no recorder in error (503 otherwise)."""
        now = status()
        reasons = [] if now.running else ["the engine is not running"]
        reasons += [f"source {s.name} is not connected" for s in now.sources if not s.connected]
        reasons += [
            f"recorder {r.name} is in error: {r.last_error}"
            for r in now.recorders
            if r.state is RecorderState.ERROR
        ]
        body = Readiness(ready=not reasons, reasons=reasons)
        return JSONResponse(body.model_dump(), status_code=200 if not reasons else 503)

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def prometheus() -> Response:
        """Prometheus metrics (text exposition format)."""
        from engine.http.metrics import CONTENT_TYPE

        return Response(metrics.render(), media_type=CONTENT_TYPE)

    # -- reading -----------------------------------------------------------------

    @app.get("/api/status", response_model=EngineStatus, tags=["status"])
    async def get_status() -> EngineStatus:
        """Every source, recorder, camera and rule, with errors and reloads."""
        return status()

    @app.get("/api/sources", response_model=list[SourceStatus], tags=["status"])
    async def get_sources() -> list[SourceStatus]:
        return list(status().sources)

    @app.get("/api/recorders", response_model=list[RecorderStatus], tags=["recorders"])
    async def get_recorders() -> list[RecorderStatus]:
        return list(status().recorders)

    @app.get("/api/recorders/{name}", response_model=RecorderStatus, tags=["recorders"])
    async def get_recorder(name: str) -> RecorderStatus:
        return found(status().recorder, "recorder", name)

    @app.get("/api/segments", response_model=list[SegmentStatus], tags=["recorders"])
    async def get_segments() -> list[SegmentStatus]:
        """The last segments of every recorder (open ones first), newest first."""
        recorders = status().recorders
        closed = [s for r in recorders for s in r.segments]
        closed.sort(key=lambda s: s.last_time or 0.0, reverse=True)
        return [r.current for r in recorders if r.current is not None] + closed

    @app.get("/api/segments/file/{path:path}", tags=["recorders"], response_class=FileResponse)
    async def download_segment(path: str) -> FileResponse:
        """A file under the recordings folder (a segment, its index or manifest)."""
        return _download(recordings_root(), path, "application/octet-stream")

    @app.get("/api/cameras", response_model=list[CameraStatus], tags=["cameras"])
    async def get_cameras() -> list[CameraStatus]:
        return list(status().cameras)

    @app.get("/api/cameras/{name}", response_model=CameraStatus, tags=["cameras"])
    async def get_camera(name: str) -> CameraStatus:
        return found(status().camera, "camera", name)

    @app.get("/api/shots", response_model=list[ShotStatusInfo], tags=["cameras"])
    async def get_shots() -> list[ShotStatusInfo]:
        """The last shots taken, newest first."""
        return list(status().shots)

    @app.get("/api/shots/file/{path:path}", tags=["cameras"], response_class=FileResponse)
    async def download_shot(path: str) -> FileResponse:
        """An image under the shots folder."""
        return _download(shots_root(), path, None)

    @app.get("/api/rules", response_model=list[RuleStatus], tags=["rules"])
    async def get_rules() -> list[RuleStatus]:
        return list(status().rules)

    @app.get("/api/rules/{name}", response_model=RuleStatus, tags=["rules"])
    async def get_rule(name: str) -> RuleStatus:
        return found(status().rule, "rule", name)

    @app.get("/api/firings", response_model=list[FiringStatus], tags=["rules"])
    async def get_firings() -> list[FiringStatus]:
        """The last firings of every rule with their traces, newest first."""
        out = [f for rule in status().rules for f in rule.last_firings]
        out.sort(key=lambda f: f.time, reverse=True)
        return out

    @app.get("/api/site", response_model=SiteStatus, tags=["site"])
    async def get_site() -> SiteStatus:
        """Every live engine of the site with what it runs, who ran recent fires, and warnings.

        An engine without ``settings.cluster`` answers ``site: null`` and a note saying so.
        """
        return site()

    # -- streams -------------------------------------------------------------------

    def open_stream() -> EventStream:
        if len(streams) >= MAX_STREAMS:
            raise HTTPException(503, f"at most {MAX_STREAMS} event streams at once")
        stream = engine.events(maxsize=STREAM_BUFFER)
        streams.add(stream)
        return stream

    async def relay(
        stream: EventStream, tick: Callable[[], bytes | None] | None
    ) -> AsyncIterator[bytes]:
        """Events as they come; with ``tick``, what it gives every LIVE_PERIOD seconds too."""
        loop = asyncio.get_running_loop()
        try:
            yield b"retry: 2000\n\n"
            if tick is not None:
                first = tick()
                if first is not None:
                    yield first
            next_tick = loop.time() + (LIVE_PERIOD if tick is not None else KEEPALIVE)
            iterator = aiter(stream)
            while True:
                wait = max(0.0, next_tick - loop.time())
                try:
                    event = await asyncio.wait_for(anext(iterator), wait)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    next_tick = loop.time() + (LIVE_PERIOD if tick is not None else KEEPALIVE)
                    beat = tick() if tick is not None else None
                    yield beat if beat is not None else b": keepalive\n\n"
                    continue
                yield _sse(event.kind.value, event.to_json())
        finally:
            stream.close()
            streams.discard(stream)

    sse_headers = {"cache-control": "no-store", "x-accel-buffering": "no"}

    @app.get("/api/events", tags=["events"], response_class=StreamingResponse)
    async def events() -> StreamingResponse:
        """Every engine event as server-sent events: ``event:`` the kind, ``data:`` its JSON."""
        stream = open_stream()
        return StreamingResponse(
            relay(stream, None), media_type="text/event-stream", headers=sse_headers
        )

    @app.get("/api/live", include_in_schema=False)
    async def live() -> StreamingResponse:
        stream = open_stream()
        last: dict[str, bytes] = {}
        in_site = site_of(engine.adapters) is not None

        def changed(kind: str, now: dict[str, Any]) -> bytes:
            """``kind`` when it changed since the last one sent (its time aside), else b""."""
            at = now.pop("time")
            body = json.dumps(now, separators=(",", ":")).encode()
            if body == last.get(kind):
                return b""
            last[kind] = body
            return _sse(kind, {**now, "time": at})

        def snapshot() -> bytes | None:
            out = changed("status", status().to_json())
            if in_site:
                out += changed("site", site().to_json())
            return out or None

        return StreamingResponse(
            relay(stream, snapshot), media_type="text/event-stream", headers=sse_headers
        )

    # -- control -------------------------------------------------------------------

    async def act(action: Awaitable[ControlResult], root: Path) -> JSONResponse:
        """Run a control action; the answer adds the file's download name when it has one."""
        try:
            result = await action
        except UnknownTarget as exc:
            raise HTTPException(404, str(exc)) from None
        except ControlRefused as exc:
            raise HTTPException(409, str(exc)) from None
        body: dict[str, Any] = result.to_json()
        body["download"] = relative_to(root, result.path) if result.path else None
        return JSONResponse(body)

    @app.post("/api/recorders/{name}/start", tags=["control"])
    async def start_recorder(name: str) -> JSONResponse:
        """Record now, with the pre-roll, until stopped."""
        return await act(engine.control.start_recorder(name), recordings_root())

    @app.post("/api/recorders/{name}/stop", tags=["control"])
    async def stop_recorder(name: str) -> JSONResponse:
        """Close the open recording now."""
        return await act(engine.control.stop_recorder(name), recordings_root())

    @app.post("/api/rules/{name}/fire", tags=["control"])
    async def fire_rule(name: str) -> JSONResponse:
        """Run the rule's actions now (its mode still applies)."""
        return await act(engine.control.fire_rule(name), recordings_root())

    @app.post("/api/cameras/{name}/shot", tags=["control"])
    async def take_shot(name: str) -> JSONResponse:
        """Queue a shot from the camera now."""
        return await act(engine.control.take_shot(name), shots_root())

    @app.post("/api/session", tags=["control"])
    async def sign_in(body: SignIn) -> JSONResponse:
        """Trade the token for the page's cookie (HttpOnly, SameSite=Strict)."""
        if policy.token is None or not token_matches(body.token, policy.token):
            raise HTTPException(401, "wrong token")
        response = JSONResponse({"signed_in": True})
        response.set_cookie(COOKIE, policy.token, httponly=True, samesite="strict", path="/")
        return response

    return _Guard(app, policy), streams


def _download(root: Path, path: str, media: str | None) -> FileResponse:
    try:
        file = inside(root, path)
    except PathEscapeError as exc:
        raise HTTPException(403, str(exc)) from None
    except FileNotFoundError:
        raise HTTPException(404, f"no file {path!r}") from None
    if media is None:
        media = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return FileResponse(file, media_type=media, filename=file.name)
