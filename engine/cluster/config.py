"""``settings: cluster:``, the rule-file part that makes an engine one of a site's engines.

Absent, the engine is alone: no server, nothing to install, as always. Given,
every engine of the site loads the same rule files and meets the others on
the NATS server at ``nats``. Secrets come from environment variables the
settings name (``password_env: NATS_PASSWORD``), read when the engine connects.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from engine.core.secrets import EnvName
from engine.core.units import ByteSize, Duration

_SITE = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"  # a NATS subject token and a stream-name part


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Model):
    """TLS to the NATS server: the CA to trust, and a client certificate if the server asks."""

    ca: str | None = Field(None, description="CA certificate file (default: the system's).")
    cert: str | None = Field(None, description="Client certificate file (mutual TLS).")
    key: str | None = Field(None, description="Client key file (with cert).")


class StreamLimits(_Model):
    """Bounds of the streams sources publish into (``publish_to:``), the same for each."""

    max_age: Duration = Field(
        600.0, gt=0, description="The server keeps a stream's frames this long (default 10 min)."
    )
    max_bytes: ByteSize = Field(
        1024**3, gt=0, description="...and at most this many bytes of it, the oldest going first."
    )
    queue: ByteSize = Field(
        64 * 1024**2,
        gt=0,
        description="Most bytes the reading engine keeps to publish while the server is away; "
        "beyond, the oldest are dropped (counted, and a gap for the consumers).",
    )


class ClusterConfig(_Model):
    """One site of engines sharing schedules, shot limits and events over NATS JetStream."""

    nats: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(
        min_length=1, description="nats://host:4222 (or a list: servers of one NATS cluster)."
    )
    name: str = Field(pattern=_SITE, description="The site: every engine of it uses the same.")
    engine: str | None = Field(
        None, description="This engine's name in events (default: host name and process id)."
    )
    user_env: EnvName | None = Field(
        None, description="Environment variable holding the user name."
    )
    password_env: EnvName | None = Field(
        None, description="Environment variable holding the password."
    )
    token_env: EnvName | None = Field(None, description="Environment variable holding a token.")
    creds: str | None = Field(None, description="A .creds file (JWT and NKey seed).")
    tls: TlsConfig | None = Field(None, description="TLS settings (tls:// URLs use TLS anyway).")
    ack_wait: Duration = Field(
        30.0,
        gt=0,
        description="An engine silent this long about a firing or shot it holds is taken for "
        "dead: the work goes to another engine.",
    )
    duplicate_window: Duration = Field(
        120.0, gt=0, description="How long the server remembers firing and shot ids."
    )
    outbox: int = Field(
        10_000, ge=1, description="Most events and firings kept while the server is away."
    )
    connect_timeout: Duration = Field(5.0, gt=0, description="Seconds per connection attempt.")
    lease: Duration = Field(
        5.0,
        ge=1,
        le=3600,
        description="A published source's reader lease: its engine renews it every third of "
        "this; another engine takes the source over once it lapses.",
    )
    streams: StreamLimits = Field(
        default_factory=StreamLimits, description="Bounds of the streams of publish_to: sources."
    )

    @field_validator("nats")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url if "://" in url else f"nats://{url}")
            if parts.scheme not in ("nats", "tls") or not parts.hostname:
                raise ValueError(f"{url!r} is not a NATS URL; write e.g. nats://host:4222")
        return value

    def engine_name(self, default: str) -> str:
        return self.engine or default

    def secret_names(self) -> list[tuple[str, str]]:
        """(setting, variable) of every secret named, for the loader to check they are set."""
        names = (("user_env", self.user_env), ("password_env", self.password_env),
                 ("token_env", self.token_env))  # fmt: skip
        return [(key, var) for key, var in names if var is not None]
