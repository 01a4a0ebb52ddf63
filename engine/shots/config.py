"""Configuration of cameras and of the shot saver, as rule files declare them.

These models are the schema: the rule-file loader composes them, so a typo, an
unknown key, a template that reaches for an attribute or names an unknown
field, or a secret written into a URL is refused when the file is loaded, with
its location, never at three in the morning when the first shot is due.

Secrets never live in the file: HTTP authentication names an environment
variable that holds the password, and the password is read only when a shot is
taken.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from enum import Enum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from engine.core.templates import Template, TemplateError, check_path
from engine.core.units import ByteSize, Duration

# Names a file-name or folder template may use. Values are made filesystem-safe.
PATH_FIELDS: frozenset[str] = frozenset(
    {
        "camera",  # the camera's name
        "channel",  # the same, under the seed's name
        "server",  # the camera's server label (default: this host's name)
        "source",  # the event source that fired the rule, if any
        "rule",  # the rule that asked for the shot, if any
        "event",  # the event that fired the rule, if any
        "seq",  # per-camera shot counter of this run (1, 2, ...)
        "task",  # the task's guid
        "figures",  # "figures" when the shot was asked with figures, else ""
    }
)
# Names an archive URL or a command argument may use (str.format, values raw).
REQUEST_FIELDS: frozenset[str] = frozenset({"time", "utc", "epoch", "epoch_ms", "camera"})
COMMAND_FIELDS: frozenset[str] = REQUEST_FIELDS | {"output"}

DEFAULT_FILE_NAME = "{camera} (%Y.%m.%d %H-%M-%S.%f).jpg"


# A plain Enum: in a str subclass, the member "replace" would hide str.replace.
class OnExists(Enum):
    """What a shot does when its file name is taken: by a file, or by a shot still being saved."""

    unique = "unique"  # the next free "name (2).jpg", "name (3).jpg"...
    replace = "replace"  # write over the file
    error = "error"  # fail the shot, saying which file is in the way


ON_EXISTS_HELP = (
    "When the file name is taken: 'unique' adds ' (2)', ' (3)'... before the extension, "
    "'replace' writes over the file, 'error' fails the shot."
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CALLABLE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*\Z")


def check_template(text: str, fields: Iterable[str] = PATH_FIELDS) -> str:
    """Parse ``text`` as a path template; a bad one raises ``ValueError`` naming the column.

    Besides the fields and specs, the path must stay inside its folder (no
    ``..``, absolute path, drive or backslash; see ``check_path``).
    """
    try:
        check_path(Template(text, fields), "path", allow_empty=True)
    except TemplateError as exc:
        raise ValueError(str(exc)) from None
    return text


def check_format(text: str, fields: Iterable[str]) -> str:
    """Check a ``str.format`` string (URL, argv item) uses only ``fields``, no lookups."""
    try:
        Template(text, fields)
    except TemplateError as exc:
        raise ValueError(str(exc)) from None
    return text


def format_fields(text: str) -> set[str]:
    """The field names a (checked) format string uses."""
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class HttpAuth(_Model):
    """Basic or digest authentication; the password comes from an environment variable."""

    type: Literal["basic", "digest"] = "basic"
    username: str = Field(min_length=1)
    password_env: str = Field(
        description="Name of the environment variable holding the password (never the password).",
    )

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(
                f"{value!r} is not an environment variable name; put the password in an "
                "environment variable and name it here"
            )
        return value


class CameraCommon(_Model):
    """Fields every camera has: limits, retries and where its shots go.

    Also usable alone, for a camera built in code (``PythonCamera(name, fn, CameraCommon(...))``).
    """

    description: str = ""
    max_in_flight: int | None = Field(
        default=None, ge=1, description="At most this many shots of this camera at once."
    )
    min_interval: Duration = Field(
        default=0.0, ge=0, description="At most one shot of this camera per this many seconds."
    )
    throttle: Literal["skip", "delay"] = Field(
        default="skip",
        description="A request inside min_interval: 'skip' refuses it, 'delay' queues it.",
    )
    timeout: Duration | None = Field(
        default=None, gt=0, description="Seconds per try (default: timeout_sec)."
    )
    tries: int | None = Field(
        default=None, ge=1, description="Tries per shot (default: max_tries)."
    )
    live_window: Duration = Field(
        default=2.0,
        ge=0,
        description="A requested time this close to now (seconds) is served by a live shot.",
    )
    folder: str | None = Field(
        default=None,
        description="Folder template under the screenshots folder (replaces subfolder).",
    )
    file_name: str | None = Field(default=None, description="File name template.")
    on_exists: OnExists | None = Field(
        default=None, description=ON_EXISTS_HELP + " Default: the saver's on_exists."
    )
    server: str | None = Field(default=None, description="Value of {server} (default: host name).")

    @field_validator("folder", "file_name")
    @classmethod
    def _path_template(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)


class HttpCameraConfig(CameraCommon):
    """An IP camera's JPEG snapshot URL."""

    type: Literal["http"]
    url: str
    archive_url: str | None = Field(
        default=None,
        description="URL of a past frame; fields {time:%Y%m%dT%H%M%S}, {epoch}, {epoch_ms}.",
    )
    auth: HttpAuth | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True

    @field_validator("url", "archive_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        if parts.username or parts.password:
            raise ValueError(
                "credentials in the URL are not allowed; use auth: {username, password_env}"
            )
        return check_format(value, REQUEST_FIELDS)


class CommandCameraConfig(CameraCommon):
    """A program that writes one shot, e.g. ffmpeg grabbing a frame from RTSP.

    ``{output}`` in an argument is replaced by the file the program must write;
    without it, the program's standard output is the image.
    """

    type: Literal["command"]
    argv: list[str] = Field(min_length=1)
    archive_argv: list[str] | None = Field(
        default=None, min_length=1, description="Command for a past frame ({time:...}, {epoch})."
    )

    secret_env: dict[str, str] = Field(
        default_factory=dict,
        description="Field name -> environment variable, e.g. {password: CAM_PASS}; "
        "usable as {password} in argv, hidden in logs.",
    )

    @field_validator("secret_env")
    @classmethod
    def _secret_names(cls, value: dict[str, str]) -> dict[str, str]:
        for field, env in value.items():
            if not _ENV_NAME.match(field) or field in COMMAND_FIELDS:
                raise ValueError(f"{field!r} cannot be a secret field name")
            if not _ENV_NAME.match(env):
                raise ValueError(f"{env!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _argv(self) -> CommandCameraConfig:
        fields = COMMAND_FIELDS | set(self.secret_env)
        for key in ("argv", "archive_argv"):
            for i, arg in enumerate(getattr(self, key) or ()):
                try:
                    check_format(arg, fields)
                except ValueError as exc:
                    raise ValueError(f"{key}[{i}]: {exc}") from None
        return self


class StreamCameraConfig(CameraCommon):
    """Camera frames carried by an event source (PurpleDrop ``image`` events)."""

    type: Literal["stream"]
    source: str = Field(min_length=1, description="Name of the event source carrying images.")
    max_age: Duration = Field(
        default=5.0, gt=0, description="A live shot refuses a newest frame older than this (s)."
    )
    tolerance: Duration = Field(
        default=1.0, ge=0, description="A past shot takes the nearest frame within this (s)."
    )
    recordings: str | None = Field(
        default=None, description="Folder of recordings to search for past frames."
    )


class PythonCameraConfig(CameraCommon):
    """A Python callable ``module:function`` returning JPEG bytes (or a Pillow image)."""

    type: Literal["python"]
    function: str
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("function")
    @classmethod
    def _callable(cls, value: str) -> str:
        if not _CALLABLE.match(value):
            raise ValueError(f"{value!r} is not 'module:function'")
        return value


CameraConfig = Annotated[
    HttpCameraConfig | CommandCameraConfig | StreamCameraConfig | PythonCameraConfig,
    Field(discriminator="type"),
]
"""One camera; ``type`` chooses the backend."""


class RetentionConfig(_Model):
    """How long shots stay: by age, by total size, by free disk space; oldest go first."""

    keep_days: float | None = Field(default=None, gt=0)
    max_bytes: ByteSize | None = Field(default=None, description="e.g. 500MB, 20GiB")
    min_free_bytes: ByteSize | None = Field(
        default=None, description="Delete oldest shots while the disk has less free space."
    )
    interval: Duration = Field(default=600.0, gt=0, description="Seconds between clean-ups.")
    patterns: list[str] = Field(default_factory=lambda: ["*.jpg", "*.jpeg"], min_length=1)

    @model_validator(mode="after")
    def _something(self) -> RetentionConfig:
        if self.keep_days is None and self.max_bytes is None and self.min_free_bytes is None:
            raise ValueError("retention needs keep_days, max_bytes or min_free_bytes")
        return self


class ShotsConfig(_Model):
    """The saver: pool, queue, retries and where shots go by default."""

    folder: str = Field(default="shots", description="The screenshots folder.")
    subfolder: str = Field(default="", description="Folder template under folder.")
    file_name: str = Field(default=DEFAULT_FILE_NAME, description="File name template.")
    on_exists: OnExists = Field(default=OnExists.unique, description=ON_EXISTS_HELP)
    pool_size: int = Field(default=10, ge=1, description="At most this many shots at once.")
    queue_size: int = Field(
        default=1000,
        ge=1,
        description="Shots that may wait beyond pool_size; more are refused "
        "(at most pool_size + queue_size unfinished at once).",
    )
    timeout_sec: Duration = Field(default=10.0, gt=0, description="Seconds per try.")
    max_tries: int = Field(default=2, ge=1)
    buffer_ts: Duration = Field(
        default=0.0, ge=0, description="Seconds a shot waits before it starts."
    )
    backoff: Duration = Field(default=0.5, ge=0, description="Seconds before the first retry.")
    backoff_factor: float = Field(default=2.0, ge=1)
    backoff_max: Duration = Field(default=30.0, ge=0)
    jitter: float = Field(
        default=0.5, ge=0, le=1, description="Retry delay varies by +-this fraction."
    )
    verify: Literal["markers", "pillow"] = Field(
        default="markers", description="JPEG check: SOI/EOI markers, or a Pillow verify."
    )
    timezone: str | None = Field(
        default=None, description="IANA zone for dates in names (default: local)."
    )
    retention: RetentionConfig | None = None

    @field_validator("subfolder", "file_name")
    @classmethod
    def _path_template(cls, value: str) -> str:
        return check_template(value)

    @field_validator("file_name")
    @classmethod
    def _file_name_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("file_name must not be empty")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


class ShotsFile(_Model):
    """Cameras and saver settings together, as a standalone file or a rule-file section."""

    cameras: dict[str, CameraConfig] = Field(default_factory=dict)
    shots: ShotsConfig = Field(default_factory=ShotsConfig)

    @field_validator("cameras")
    @classmethod
    def _names(cls, value: dict[str, CameraConfig]) -> dict[str, CameraConfig]:
        for name in value:
            if not name.strip():
                raise ValueError("a camera needs a non-empty name")
        return value
