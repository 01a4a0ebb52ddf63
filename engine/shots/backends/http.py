"""IP cameras that serve a JPEG snapshot over HTTP, with basic or digest auth.

One ``httpx.AsyncClient`` per camera keeps the connection alive between
shots. The password is read from its environment variable for each shot (so
a rotated secret is picked up) and never appears in a reason or a log line;
reasons show the URL without its query string.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from engine.shots.backends.base import BaseCamera, CaptureError, CaptureRequest, fill, redact
from engine.shots.config import HttpCameraConfig
from engine.shots.jpeg import SOI, describe

MAX_IMAGE_BYTES = 64 * 1024 * 1024
# Answers that another try will not fix.
_PERMANENT = {400, 401, 403, 404, 405, 410}


def _shown(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class HttpCamera(BaseCamera):
    kind = "http"
    config: HttpCameraConfig

    _client: httpx.AsyncClient | None = None

    def _auth(self) -> tuple[httpx.Auth | None, str]:
        auth = self.config.auth
        if auth is None:
            return None, ""
        password = self.environ.get(auth.password_env)
        if password is None:
            raise CaptureError(
                f"camera {self.name!r}: environment variable {auth.password_env} "
                f"(password of {auth.username!r}) is not set",
                retryable=False,
            )
        if auth.type == "digest":
            return httpx.DigestAuth(auth.username, password), password
        return httpx.BasicAuth(auth.username, password), password

    def _url(self, request: CaptureRequest, now: float) -> str:
        if request.live:
            return fill(self.config.url, request.format_values(now))
        if self.config.archive_url is None:
            raise self.no_archive(request, "archive_url")
        return fill(self.config.archive_url, request.format_values(now))

    def _client_for(self, timeout: float) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers=self.config.headers,
                verify=self.config.verify_tls,
                follow_redirects=True,
                timeout=timeout,
                trust_env=False,  # a LAN camera must not go through a proxy from the environment
            )
        return self._client

    async def capture(self, request: CaptureRequest) -> bytes:
        url = self._url(request, self.clock.time())
        auth, password = self._auth()
        shown = _shown(url)
        client = self._client_for(request.timeout)
        try:
            async with client.stream(
                "GET", url, auth=auth or httpx.USE_CLIENT_DEFAULT, timeout=request.timeout
            ) as reply:
                if reply.status_code != 200:
                    hint = ""
                    if reply.status_code == 401 and self.config.auth is not None:
                        hint = f" (check the user name and ${self.config.auth.password_env})"
                    raise CaptureError(
                        f"{shown} answered HTTP {reply.status_code} {reply.reason_phrase}{hint}",
                        retryable=reply.status_code not in _PERMANENT,
                    )
                declared = reply.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > MAX_IMAGE_BYTES:
                    raise CaptureError(
                        f"{shown} sent {declared} bytes; more than an image should be"
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in reply.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_IMAGE_BYTES:
                        raise CaptureError(f"{shown} sent more than {MAX_IMAGE_BYTES} bytes")
                    chunks.append(chunk)
                data = b"".join(chunks)
                content_type = reply.headers.get("content-type", "").split(";")[0].strip().lower()
        except httpx.TimeoutException:
            raise CaptureError(f"{shown} did not answer within {request.timeout:g} s") from None
        except httpx.ConnectError as exc:
            raise CaptureError(
                f"cannot connect to {shown}: {redact(str(exc), [password])}"
            ) from None
        except httpx.HTTPError as exc:
            raise CaptureError(
                f"{shown}: {type(exc).__name__}: {redact(str(exc), [password])}"
            ) from None
        if not content_type.startswith("image/") and not (
            content_type in ("", "application/octet-stream") and data.startswith(SOI)
        ):
            raise CaptureError(
                f"{shown} answered {content_type or 'without a content type'}, "
                f"not an image: {describe(data)}"
            )
        return data

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
