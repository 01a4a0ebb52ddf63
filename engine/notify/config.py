"""``targets:``: where the ``send`` action delivers, as rule files declare them.

A target is a webhook (HTTP POST of a JSON body, the shot as a multipart
file), an e-mail account (SMTP with STARTTLS or SSL, the shot attached) or a
Telegram chat (Bot API ``sendPhoto``/``sendMessage``). Secrets are names of
environment variables, read when a message goes out. What every target
shares: a bounded queue, retries with backoff, spam periods, and whether a
shot is deleted once this target confirmed it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from engine.core.secrets import EnvName
from engine.core.units import Duration


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an HTTP URL; write e.g. https://host/path")
    if parts.username or parts.password:
        raise ValueError("no credentials in the URL; use an environment variable (*_env)")
    return value


class _Target(_Model):
    queue: int = Field(
        100, ge=1, le=100_000, description="Messages waiting at most; beyond, refused."
    )
    retries: int = Field(3, ge=0, le=100, description="Tries after the first failed one.")
    backoff_initial: Duration = Field(1.0, ge=0, description="Delay before the first retry.")
    backoff_max: Duration = Field(60.0, ge=0, description="Longest delay between tries.")
    timeout: Duration = Field(30.0, gt=0, description="Longest one try may take.")
    period: Duration = Field(
        0.0, ge=0, description="Spam period: after a send, drop further messages for this long."
    )
    camera_period: Duration = Field(
        0.0, ge=0, description="The same per camera: one shot of each camera per period."
    )
    delete_after_send: bool = Field(
        False, description="Delete the shot once this target confirmed it (never on failure)."
    )


class WebhookTarget(_Target):
    """HTTP POST: a JSON body, or multipart with the JSON as field ``payload`` and the shot."""

    type: Literal["webhook"]
    url: str = Field(description="Where to POST, e.g. https://hooks.example/cuecap.")
    body: Any = Field(
        None,
        description="JSON body template: strings in it are filled ({rule}, {camera}...); "
        "default: the message and the trigger's facts.",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    bearer_env: EnvName | None = Field(
        None, description="Environment variable holding a bearer token (Authorization header)."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


class EmailTarget(_Target):
    """E-mail over SMTP; the shot goes as an attachment."""

    type: Literal["email"]
    host: str = Field(description="SMTP server.")
    port: int | None = Field(
        None, ge=1, le=65535, description="Default: 465 with ssl, 587 with starttls, 25 without."
    )
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls",
        description="starttls (port 587), ssl (port 465), or none (plain, local relays).",
    )
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    tls_ca: str | None = Field(
        None, description="CA file to trust (default: the system's), e.g. a private CA."
    )
    sender: str = Field(description="The From address.")
    to: Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = Field(
        min_length=1, description="Recipients (one or a list)."
    )
    subject: str = Field("cuecap: {rule} ({event})", description="Subject template.")

    @property
    def smtp_port(self) -> int:
        if self.port is not None:
            return self.port
        return {"ssl": 465, "starttls": 587, "none": 25}[self.security]


class TelegramTarget(_Target):
    """A Telegram chat through a bot: the shot with ``sendPhoto``, text with ``sendMessage``."""

    type: Literal["telegram"]
    token_env: EnvName = Field(description="Environment variable holding the bot token.")
    chat_id: int | str = Field(description="The chat's id (or @channelname).")
    base_url: str = Field("https://api.telegram.org", description="The Bot API's address.")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value).rstrip("/")


TargetConfig = Annotated[
    WebhookTarget | EmailTarget | TelegramTarget,
    Field(discriminator="type"),
]


def templates(
    target: WebhookTarget | EmailTarget | TelegramTarget,
) -> list[tuple[tuple[str | int, ...], str]]:
    """(data path within the target, text) of every template a target fills per message."""
    if isinstance(target, EmailTarget):
        return [(("subject",), target.subject)]
    if isinstance(target, WebhookTarget):
        return list(_strings(target.body, ("body",)))
    return []


def _strings(
    value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path, str(key)
            yield from _strings(item, (*path, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))


def secret_names(target: WebhookTarget | EmailTarget | TelegramTarget) -> list[tuple[str, str]]:
    """(field, environment variable) for each secret the target names."""
    out: list[tuple[str, str]] = []
    for key in ("bearer_env", "username_env", "password_env", "token_env"):
        value = getattr(target, key, None)
        if value is not None:
            out.append((key, value))
    return out
