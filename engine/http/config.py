"""Where the status page and API listen, and with which token: settings and options.

Precedence, highest first: ``--no-http``, ``--http HOST:PORT``, then
``settings: http:`` in the rule files, then the default ``127.0.0.1:7080``.
The token: ``--http-token``, else the ``CUECAP_HTTP_TOKEN`` environment
variable, else the variable ``settings.http.token_env`` names. Rule files
name a variable, never hold the token itself, as camera passwords do.

The default address is a convenience, not a request: when something else
already listens there (a second engine on this machine), the engine runs
without the page and says so. An address the user chose is a request: when
it cannot be bound, nothing is started.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.core.address import AddressError, parse_listen
from engine.errors import CuecapError
from engine.rules.model import DEFAULT_LISTEN, HttpSettings

DEFAULT_HOST, DEFAULT_PORT = parse_listen(DEFAULT_LISTEN)
TOKEN_ENV = "CUECAP_HTTP_TOKEN"
MIN_TOKEN = 16  # characters: a token short enough to guess protects nothing
__all__ = ["HttpConfigError", "HttpOptions", "HttpSettings", "resolve"]


class HttpConfigError(CuecapError, ValueError):
    """An address or token the HTTP server cannot use; nothing was started."""


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """What the server is to do: where to listen, with which token, and whether asked to."""

    host: str
    port: int
    token: str | None
    explicit: bool  # the address was chosen (flag or rule file), not the default

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def resolve(
    settings: HttpSettings,
    *,
    enabled: bool = True,
    listen: str | None = None,
    token: str | None = None,
    env: Mapping[str, str],
) -> HttpOptions | None:
    """The options for this run from flags, rule-file settings and the environment.

    None when the server is off. Raises ``HttpConfigError`` for an address
    that is not HOST:PORT, a token too short, or a non-loopback address
    without a token.
    """
    from engine.http.security import require_token

    if not enabled or (listen is None and not settings.enabled):
        return None
    chosen = listen if listen is not None else settings.listen
    try:
        host, port = parse_listen(chosen) if chosen is not None else (DEFAULT_HOST, DEFAULT_PORT)
    except AddressError as exc:
        raise HttpConfigError(str(exc)) from None
    if token is None:
        token = env.get(TOKEN_ENV) or None
    if token is None and settings.token_env is not None:
        token = env.get(settings.token_env) or None
        if token is None:
            raise HttpConfigError(
                f"settings.http.token_env names {settings.token_env}, which is not set"
            )
    if token is not None and len(token) < MIN_TOKEN:
        raise HttpConfigError(f"the HTTP token is too short: use at least {MIN_TOKEN} characters")
    refusal = require_token(host, token)
    if refusal is not None:
        raise HttpConfigError(refusal)
    return HttpOptions(host, port, token, explicit=chosen is not None)
