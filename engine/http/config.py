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

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.errors import CuecapError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7080
TOKEN_ENV = "CUECAP_HTTP_TOKEN"
MIN_TOKEN = 16  # characters: a token short enough to guess protects nothing
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class HttpConfigError(CuecapError, ValueError):
    """An address or token the HTTP server cannot use; nothing was started."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:7080`` for IPv6; port 0 picks a free one) as (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
    else:
        host, sep, port_text = text.rpartition(":")
    if not sep or not host or (":" in host and not text.startswith("[")):
        raise HttpConfigError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:7080, [::1]:7080)")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise HttpConfigError(f"{text!r}: the port must be a number from 0 to 65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9.-]+", host):
                raise HttpConfigError(f"{text!r}: {host!r} is not a host name or address") from None
    return host, int(port_text)


class HttpSettings(BaseModel):
    """``settings: http:`` in a rule file: the status page, JSON API and metrics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Serve the status page, API and /metrics.")
    listen: str | None = Field(
        None,
        description=f"HOST:PORT to listen on (default {DEFAULT_HOST}:{DEFAULT_PORT}); "
        "any address but loopback needs a token.",
    )
    token_env: str | None = Field(
        None,
        description="Name of the environment variable holding the access token "
        "(never the token itself).",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_listen(value)
            except HttpConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                f"{value!r} is not an environment variable name; put the token in an "
                "environment variable and name it here"
            )
        return value


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
    host, port = parse_listen(chosen) if chosen is not None else (DEFAULT_HOST, DEFAULT_PORT)
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
