"""``settings: mqtt:``: the broker, credentials, TLS and topics, as rule files declare them.

Credentials are names of environment variables (``password_env``), read when
the client connects. ``mqtts://`` means TLS with the system's CA store;
``tls:`` gives a CA file, a client certificate or turns verification off.
Every topic is checked here, so a wildcard in the prefix is an error at load.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.core.secrets import EnvName
from engine.core.units import ByteSize, Duration
from engine.mqtt.topics import join, level, topic_problem

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttTls(_Model):
    """TLS to the broker: which CA to trust, a client certificate, or no verification."""

    ca: str | None = Field(None, description="CA certificate file (default: the system's).")
    cert: str | None = Field(None, description="Client certificate file (PEM).")
    key: str | None = Field(None, description="The client certificate's key file (PEM).")
    insecure: bool = Field(False, description="Do not verify the broker's certificate.")


class HomeAssistant(_Model):
    """Home Assistant MQTT discovery: entities appear in Home Assistant by themselves."""

    prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix.")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return _topic(value)


def _topic(value: str) -> str:
    problem = topic_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class MqttSettings(_Model):
    """An MQTT broker: engine events go out, ``mqtt`` triggers and controls come in."""

    url: str = Field(description="mqtt://host:1883, or mqtts://host:8883 for TLS.")
    username_env: EnvName | None = Field(
        None, description="Environment variable holding the user name."
    )
    password_env: EnvName | None = Field(
        None, description="Environment variable holding the password."
    )
    tls: bool | MqttTls = Field(False, description="TLS (mqtts:// implies it).")
    instance: str | None = Field(
        None, description="This engine's name on the broker (default: the host name)."
    )
    client_id: str | None = Field(None, description="MQTT client id (default: cuecap-INSTANCE).")
    prefix: str | None = Field(None, description="Topic prefix (default: cuecap/INSTANCE).")
    events: bool = Field(True, description="Publish every engine event on PREFIX/events/KIND.")
    qos: Literal[0, 1, 2] = Field(1, description="QoS of what the engine publishes.")
    keepalive: int = Field(30, ge=5, le=65535, description="Seconds between keepalive pings.")
    buffer: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Messages kept while the broker is away; beyond, the oldest are dropped.",
    )
    max_payload: ByteSize = Field(
        256 * 1024, gt=0, description="Largest incoming message read; larger ones are dropped."
    )
    reconnect_initial: Duration = Field(0.5, gt=0, description="First reconnect delay.")
    reconnect_max: Duration = Field(30.0, gt=0, description="Longest reconnect delay.")
    homeassistant: bool | HomeAssistant = Field(
        False, description="Announce entities to Home Assistant (MQTT discovery)."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        text = value if "://" in value else f"mqtt://{value}"
        parts = urlsplit(text)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"{value!r} is not an MQTT URL; write e.g. mqtt://broker:1883")
        if parts.username or parts.password:
            raise ValueError("no credentials in the URL; use username_env and password_env")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"{value!r}: the port is not a number from 0 to 65535") from None
        return value

    @field_validator("prefix", "instance")
    @classmethod
    def _topics(cls, value: str | None) -> str | None:
        return None if value is None else _topic(value)

    @property
    def host(self) -> str:
        return urlsplit(self._full_url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self._full_url)
        return parts.port or DEFAULT_PORTS[parts.scheme]

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self._full_url).scheme == "mqtts" or self.tls is not False

    @property
    def discovery(self) -> HomeAssistant | None:
        if self.homeassistant is False:
            return None
        return (
            HomeAssistant.model_validate({}) if self.homeassistant is True else self.homeassistant
        )

    def instance_name(self, hostname: str) -> str:
        """This engine's name on the broker: the setting, else ``hostname`` (one topic level)."""
        if self.instance:
            return self.instance
        host = hostname.split(".")[0]
        return level(host) if host else "cuecap"

    def topic_prefix(self, hostname: str) -> str:
        return self.prefix or join("cuecap", self.instance_name(hostname))

    @property
    def _full_url(self) -> str:
        return self.url if "://" in self.url else f"mqtt://{self.url}"
