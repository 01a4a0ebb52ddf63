"""Who may read and who may steer: the HTTP server's access rules, with no I/O.

The rules, in the order ``check`` applies them:

- A request whose ``Host`` is not the server's own name is refused when the
  server listens on loopback only: a web page elsewhere cannot reach the
  engine by pointing a DNS name of its own at 127.0.0.1 (DNS rebinding).
- With a token set, every request from another machine carries it, and so
  does every control request from anywhere (``Authorization: Bearer TOKEN``,
  or the ``cuecap_token`` cookie the page's sign-in sets). Tokens are compared
  in constant time.
- Control requests (every ``POST``) come from the page itself or from a
  script: a browser's cross-site request (``Sec-Fetch-Site: cross-site``, or an
  ``Origin`` naming another host) is refused, so a page on another site cannot
  press the buttons with the user's cookie.
- Without a token only loopback clients are served (the server can only be
  bound to loopback then: ``require_token`` says so at start).

The server passes plain values in and maps the verdict to a status code, so
these rules are tested without sockets.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

COOKIE = "cuecap_token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class Verdict(enum.Enum):
    """What to do with a request: serve it, or refuse with the status code to answer."""

    ALLOW = 200
    NEEDS_TOKEN = 401  # no token, or a wrong one
    FORBIDDEN = 403  # a cross-site control request, or a foreign Host


def is_loopback(host: str) -> bool:
    """True for names and addresses of this machine only (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_token(host: str, token: str | None) -> str | None:
    """Why serving on ``host`` without a token is refused (None when it may start)."""
    if token or is_loopback(host):
        return None
    return (
        f"serving HTTP on {host} reaches other machines and needs a token: "
        "set --http-token or the CUECAP_HTTP_TOKEN environment variable "
        "(or listen on 127.0.0.1)"
    )


def _host_name(host_header: str) -> str:
    """``127.0.0.1:7080`` -> ``127.0.0.1``; ``[::1]:7080`` -> ``::1``."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _same_origin(origin: str, host_header: str) -> bool:
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.lower()


def presented_token(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The token a request carries: the Bearer header first, then the page's cookie."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return cookies.get(COOKIE) or None


def token_matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class Kind(enum.Enum):
    """What a request does: reads, steers, or signs in (presents the token for a cookie)."""

    READ = "read"
    CONTROL = "control"
    SIGN_IN = "sign_in"


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """The rules for one server: where it listens and the token (None: loopback only)."""

    listen_host: str
    token: str | None

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.listen_host)

    def check(
        self,
        *,
        kind: Kind,
        client: str | None,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
    ) -> Verdict:
        """The verdict on one request; ``headers`` are lower-case names."""
        host_header = headers.get("host", "")
        if self.loopback_only and not is_loopback(_host_name(host_header)):
            return Verdict.FORBIDDEN
        if kind is not Kind.READ:
            if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return Verdict.FORBIDDEN
            origin = headers.get("origin")
            if origin is not None and not _same_origin(origin, host_header):
                return Verdict.FORBIDDEN
        remote = client is None or not is_loopback(client)
        if self.token is None:
            return Verdict.NEEDS_TOKEN if remote else Verdict.ALLOW
        if kind is Kind.SIGN_IN:
            return Verdict.ALLOW  # the sign-in itself checks the token it is given
        if (kind is Kind.CONTROL or remote) and not token_matches(
            presented_token(headers, cookies), self.token
        ):
            return Verdict.NEEDS_TOKEN
        return Verdict.ALLOW
