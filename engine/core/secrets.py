"""Secrets come from environment variables, never from rule files.

A rule file names the variable (``password_env: MQTT_PASSWORD``); the value
is read where it is used, so it is never part of a loaded ``RuleSet``, never
printed by ``cuecap check``, and never committed with the rules. The loader
checks that every named variable is set, so a missing one is an error at load.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator

from engine.errors import CuecapError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class SecretMissing(CuecapError, KeyError):
    """An environment variable a rule file names for a secret is not set."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "secret missing"


def check_env_name(value: Any) -> Any:
    if isinstance(value, str) and not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name; put the secret in an "
            "environment variable and name it here"
        )
    return value


EnvName = Annotated[str, AfterValidator(check_env_name)]


def read_secret(name: str, env: Mapping[str, str]) -> str:
    """The value of environment variable ``name``; ``SecretMissing`` when it is not set."""
    value = env.get(name)
    if value is None:
        raise SecretMissing(f"environment variable {name} is not set")
    return value
