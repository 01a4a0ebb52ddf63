"""The rule-file schema: sources, cameras, recorders, rules and settings.

Every model forbids unknown keys and every choice is a discriminated union on
``type``, so a typo is an error with its position and editors can complete
keys from the published JSON Schema. Checks that need one value only (a cron
string, a CEL condition, a template) run here, where pydantic knows the
value's position; checks across sections and files (does that camera exist?)
run in the loader once all files are merged.

Cameras and the shot saver are the shots part's models, recorders the
recorder part's: this module only composes them.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import typing
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from engine.cluster.config import ClusterConfig
from engine.core.address import parse_listen
from engine.core.condition import Condition, DataCondition
from engine.core.schema import Schema, SchemaSpec
from engine.core.secrets import EnvName
from engine.core.units import ByteSize, Duration
from engine.events import TRIGGER_KINDS, EventKind
from engine.mqtt.config import MqttSettings
from engine.mqtt.topics import filter_problem, topic_problem
from engine.notify.config import TargetConfig
from engine.recorder.config import KindName, RecorderConfig, schema_in
from engine.rules.fields import Days, Offset, TimeOfDay, TimeZoneName, parse_time_of_day
from engine.rules.schedule import MIN_EVERY, every_floor_message, parse_cron
from engine.shots.config import (
    ON_EXISTS_HELP,
    CameraConfig,
    OnExists,
    ShotsConfig,
    check_format,
    check_template,
    format_fields,
)
from engine.sim.world import OPTIONS, SimConfig
from engine.sources.backoff import DEFAULT_INITIAL, DEFAULT_JITTER, DEFAULT_MAXIMUM

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
STREAM_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"  # a subject token and a stream-name part
MAX_NAME = 100
_NAME = re.compile(NAME_PATTERN)

# Names a log line or a command argument may use: ``{rule}``, ``{time:%H:%M:%S}``...
TEXT_FIELDS: frozenset[str] = frozenset(
    {
        "rule",  # the rule's name
        "trigger",  # schedule, message or event
        "event",  # the engine event's name, or the message type
        "time",  # when the trigger happened (a datetime: {time:%Y-%m-%d %H:%M:%S})
        "epoch",  # the same in epoch seconds
        "source",  # the source of the message or event
        "recorder",  # the recorder of a recording event
        "camera",  # the camera of a shot event
        "path",  # the file of a recording or shot event
        "reason",  # why a recording started or stopped, or why a shot failed
        "seq",  # the message's sequence number
        "count",  # how many times this rule has fired, this one included
        "topic",  # the topic of an MQTT message
        "payload",  # the payload of an MQTT message, as text
        "target",  # the target of a send event
        "records",  # messages in a stopped recording
        "bytes",  # bytes of a stopped recording
        "duration",  # seconds a stopped recording covers
    }
)
# What every trigger provides; the rest depends on the trigger (``trigger_fields``).
COMMON_FIELDS: frozenset[str] = frozenset(
    {"rule", "trigger", "event", "time", "epoch", "source", "count"}
)
# Names an MQTT trigger's condition sees: the decoded payload (JSON, else the text),
# the topic and the raw text.
MQTT_NAMES: frozenset[str] = frozenset({"payload", "topic", "text"})
# Engine events a rule may react to.
EVENT_NAMES = tuple(kind.value for kind in TRIGGER_KINDS)
if TYPE_CHECKING:
    EventName: TypeAlias = str  # a Literal of the tuple above is only known at run time
else:
    EventName = Literal[EVENT_NAMES]


def _one_or_many(value: object) -> object:
    """Let a single item stand where a list is expected."""
    if value is None or isinstance(value, list):
        return value
    return [value]


def _many(item: Any) -> BeforeValidator:
    """One item or a list of them; the schema tells editors both are fine."""
    return BeforeValidator(_one_or_many, json_schema_input_type=item | list[item])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_text(text: str) -> str:
    """A log line or command argument: ``{field}`` names from ``TEXT_FIELDS`` only."""
    return check_format(text, TEXT_FIELDS)


TextTemplate = Annotated[str, BeforeValidator(lambda v: check_text(v) if isinstance(v, str) else v)]


# -- sources -------------------------------------------------------------------


class SchemaConfig(_Model):
    """The protobuf message a source carries, when it is not PurpleDrop's."""

    message: str = Field(description="Full name of each frame's message, e.g. lab.Event.")
    descriptor_set: str | None = Field(
        None, description="File from protoc --descriptor_set_out --include_imports."
    )
    proto: Annotated[list[str] | None, _many(str)] = Field(
        None, description=".proto file(s), compiled when the rules load (needs grpcio-tools)."
    )
    include: Annotated[list[str], _many(str)] = Field(
        default_factory=list, description="Import folders for proto."
    )
    kind: str | None = Field(
        None,
        description="Enum field whose value is the kind (default: the oneof member set, "
        "else the message name).",
    )
    oneof: str | None = Field(None, description="The oneof that says the kind, if several.")
    image: str | None = Field(
        None, description="Field path of camera image bytes, e.g. CompressedImage.data."
    )
    timestamp: str | None = Field(
        None, description="Timestamp field of the messages (default: timestamp)."
    )
    _schema: Schema | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _one_source(self) -> SchemaConfig:
        if (self.descriptor_set is None) == (not self.proto):
            raise ValueError("a schema needs exactly one of descriptor_set or proto")
        return self

    def spec(self) -> SchemaSpec:
        return SchemaSpec(
            message=self.message,
            descriptor_set=self.descriptor_set,
            proto=tuple(self.proto or ()),
            include=tuple(self.include),
            kind=self.kind,
            oneof=self.oneof,
            image=self.image,
            timestamp=self.timestamp,
        )

    @property
    def loaded(self) -> Schema:
        """The loaded schema (the rule loader loads it: files are read there, not here)."""
        if self._schema is None:
            raise ValueError(f"schema {self.message!r} was not loaded")
        return self._schema

    def set_schema(self, schema: Schema) -> None:
        self._schema = schema


class WebSocketSourceConfig(_Model):
    """A live event stream, e.g. PurpleDrop's ``pdserver`` on port 7001."""

    type: Literal["websocket"]
    url: str = Field(description="ws://host:7001 (a bare host:port gets ws://).")
    schema_: SchemaConfig | None = Field(
        None,
        alias="schema",
        description="The stream's protobuf schema (default: PurpleDrop's).",
    )
    max_size: ByteSize = Field(
        16 * 1024 * 1024,
        gt=0,
        le=1024**3,
        description="Largest message accepted (camera frames are big), up to 1 GiB.",
    )
    open_timeout: Duration = Field(10.0, gt=0)
    reconnect_initial: Duration = Field(
        DEFAULT_INITIAL, ge=0, description="First reconnect delay (doubles on each failure)."
    )
    reconnect_max: Duration = Field(DEFAULT_MAXIMUM, ge=0, description="Longest reconnect delay.")
    reconnect_jitter: float = Field(
        DEFAULT_JITTER, ge=0, le=1, description="Each delay shortened at random by up to this part."
    )
    max_retries: int | None = Field(
        None, ge=1, description="Give up after this many failed attempts in a row (null: never)."
    )
    publish_to: str | None = Field(
        None,
        pattern=STREAM_PATTERN,
        max_length=64,
        description="With settings.cluster: one engine of the site reads the source and "
        "publishes it into this stream, for type: nats sources elsewhere.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        text = value if "://" in value else f"ws://{value}"
        parts = urlsplit(text)
        try:
            parts.port  # noqa: B018 - parsing it refuses a port out of range
        except ValueError as exc:
            raise ValueError(f"{value!r}: {exc}") from None
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"{value!r} is not a websocket URL; write e.g. ws://purpledrop:7001")
        return value


class ReplaySourceConfig(_Model):
    """A recording played back as if it were live."""

    type: Literal["replay"]
    path: str = Field(description="The recording's .bin file.")
    speed: float | None = Field(
        1.0, gt=0, description="1: original pace; 10: ten times faster; null: as fast as possible."
    )
    publish_to: str | None = Field(
        None,
        pattern=STREAM_PATTERN,
        max_length=64,
        description="With settings.cluster: one engine of the site reads the source and "
        "publishes it into this stream, for type: nats sources elsewhere.",
    )


class _SimulatorBase(_Model):
    """The built-in PurpleDrop simulator, run in-process: bursts of droplet moves and camera frames.

    Besides ``seed`` and ``speed`` it takes every option of the simulator
    (``fps``, ``idle``, ``moves_per_burst``, ``max_bursts``...; see ``cuecap sim --help``).
    """

    type: Literal["simulator"]
    seed: int = Field(1, description="Same seed, same experiment.")
    if TYPE_CHECKING:
        fps: float  # one of the fields _simulator_model adds per simulator option
    speed: float | None = Field(
        1.0, gt=0, description="1: real time; 10: ten times faster; null: as fast as possible."
    )
    publish_to: str | None = Field(
        None,
        pattern=STREAM_PATTERN,
        max_length=64,
        description="With settings.cluster: one engine of the site reads the source and "
        "publishes it into this stream, for type: nats sources elsewhere.",
    )

    @model_validator(mode="after")
    def _options(self) -> _SimulatorBase:
        self.world_options()  # SimConfigError (a ValueError) names the option
        return self

    def world_options(self) -> dict[str, Any]:
        """The options for ``SimWorld``, checked together."""
        options = {name: getattr(self, name) for name in SIM_OPTIONS}
        SimConfig(**options)
        return options


def _simulator_model() -> type[_SimulatorBase]:
    hints = typing.get_type_hints(SimConfig)
    defaults = {f.name: f.default for f in dataclasses.fields(SimConfig)}
    fields: dict[str, Any] = {name: (hints[name], defaults[name]) for name in SIM_OPTIONS}
    model = create_model("SimulatorSourceConfig", __base__=_SimulatorBase, **fields)
    model.__doc__ = _SimulatorBase.__doc__
    model.__module__ = __name__
    return model


SIM_OPTIONS = tuple(sorted(OPTIONS))
if TYPE_CHECKING:
    # Made at run time with a field per simulator option; statically, its base.
    SimulatorSourceConfig: TypeAlias = _SimulatorBase
else:
    SimulatorSourceConfig = _simulator_model()


class NatsSourceConfig(_Model):
    """A source another engine of the site reads and publishes (``publish_to:``), from NATS."""

    type: Literal["nats"]
    stream: str = Field(
        pattern=STREAM_PATTERN, max_length=64, description="The publish_to: name of the source."
    )
    max_lag: Duration = Field(
        5.0,
        gt=0,
        description="Frames that come more than this long after they were received are not "
        "delivered: a gap instead (after the server was away).",
    )
    batch: int = Field(
        64,
        ge=1,
        le=10_000,
        description="Most messages held in memory at a time (each up to the server's "
        "max_payload, 1 MiB by default).",
    )


SourceConfig = Annotated[
    WebSocketSourceConfig | ReplaySourceConfig | SimulatorSourceConfig | NatsSourceConfig,
    Field(discriminator="type"),
]


# -- triggers --------------------------------------------------------------------


def _between(value: object) -> object:
    if isinstance(value, str):
        parts = [
            p.strip() for p in re.split(r"\s*(?:-|\u2013|to)\s*(?=\d)", value.strip(), maxsplit=1)
        ]
        if len(parts) != 2:
            raise ValueError(f"{value!r} is not a time window; write '08:00-18:00'")
        return parts
    return value


class ScheduleTrigger(_Model):
    """Fires on a clock: a cron expression, an interval or fixed times, optionally in a window."""

    type: Literal["schedule"]
    cron: Annotated[list[str] | None, _many(str)] = Field(
        None,
        max_length=50,
        description="Cron: minute hour day month weekday, e.g. '*/5 * * * *' (or a list of up to 50).",
    )
    every: Duration | None = Field(
        None, gt=0, description="An interval, e.g. 10s, 5min, 1h (at least 0.1s)."
    )
    at: Annotated[list[str] | None, _many(str)] = Field(
        None,
        max_length=500,
        description="Times of day ('08:00', daily) or moments ('2025-05-01T10:00'), one or a list "
        "of up to 500.",
    )
    between: Annotated[
        list[TimeOfDay] | None,
        BeforeValidator(_between, json_schema_input_type=str | list[TimeOfDay]),
    ] = Field(
        None,
        min_length=2,
        max_length=2,
        description="Only between these times of day: '08:00-18:00' (may wrap past midnight).",
    )
    days: Days | None = Field(None, description="Only on these weekdays: mon-fri, [sat, sun]...")
    timezone: TimeZoneName | None = Field(
        None, description="Zone of the times above (default: settings.timezone)."
    )
    start: datetime | None = Field(None, description="Not before this moment.")
    end: datetime | None = Field(None, description="Not after this moment.")
    jitter: Duration = Field(
        0.0, ge=0, description="Delay each fire by up to this much (spread, reproducible)."
    )
    grace: Duration = Field(
        1.0,
        gt=0,
        description="A fire that could not run within this many seconds of its time is skipped.",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: list[str] | None) -> list[str] | None:
        from zoneinfo import ZoneInfo

        for expression in value or ():
            parse_cron(expression, ZoneInfo("UTC"))  # ScheduleError is a ValueError
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value: float | None) -> float | None:
        if value is not None and value < MIN_EVERY:
            raise ValueError(every_floor_message(value))
        return value

    @field_validator("at")
    @classmethod
    def _at(cls, value: list[str] | None) -> list[str] | None:
        for item in value or ():
            _moment(item)
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleTrigger:
        given = [k for k in ("cron", "every", "at") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "a schedule needs exactly one of cron, every or at"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.every is not None and self.jitter >= self.every:
            raise ValueError("jitter must be shorter than the interval (every)")
        if self.between is not None and self.between[0] == self.between[1]:
            raise ValueError("between: the window is empty (same start and end)")
        return self

    def times_of_day(self) -> list[int]:
        return [m for m in (_moment(x) for x in self.at or ()) if isinstance(m, int)]

    def moments(self) -> list[datetime]:
        return [m for m in (_moment(x) for x in self.at or ()) if isinstance(m, datetime)]


def _moment(text: str) -> int | datetime:
    """A time of day (seconds after midnight) or a moment."""
    if re.match(r"\s*\d{1,2}:\d{2}", text) and "T" not in text and "-" not in text:
        return parse_time_of_day(text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a time of day ('08:30') nor a moment ('2025-05-01T08:30')"
        ) from None


class MessageTrigger(_Model):
    """Fires on a message from a source: of these types, matching a CEL condition."""

    type: Literal["message"]
    source: str | None = Field(None, description="Only from this source (default: any).")
    types: Annotated[list[KindName] | None, _many(KindName)] = Field(
        None, description="Message types, e.g. electrode_state (default: those `where` names)."
    )
    where: str | None = Field(
        None, description="CEL over the message, e.g. active_capacitance.calibrated > 3.5"
    )
    _condition: Condition | None = PrivateAttr(None)

    @field_validator("where")
    @classmethod
    def _compiles(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            # ConditionError (a ValueError) carries the column of the mistake
            _condition(value, info.data.get("types"), schema_in(info))
        return value

    @model_validator(mode="after")
    def _compile(self, info: ValidationInfo) -> MessageTrigger:
        if not self.types and not self.where:
            raise ValueError("a message trigger needs types, where, or both")
        if self.where is not None:
            self._condition = _condition(self.where, self.types, schema_in(info, self.source))
        return self

    @property
    def condition(self) -> Condition | None:
        return self._condition

    @property
    def kinds(self) -> frozenset[str] | None:
        """The message types this trigger can match (None: any), checked before decoding."""
        if self.types:
            return frozenset(self.types)
        return self._condition.kinds if self._condition is not None else None


def _condition(where: str, types: list[str] | None, schema: Schema) -> Condition:
    return Condition(where, types[0] if types and len(types) == 1 else None, schema)


class EventTrigger(_Model):
    """Fires on an engine event: a recording started or stopped, a shot done, the engine started."""

    type: Literal["event"]
    event: EventName = Field(
        description="recording.started, recording.stopped, shot.success, engine.started..."
    )
    recorder: str | None = Field(None, description="Only events of this recorder.")
    camera: str | None = Field(None, description="Only events of this camera.")
    source: str | None = Field(None, description="Only events of this source.")
    rule: str | None = Field(None, description="Only shots asked (or sends made) by this rule.")
    target: str | None = Field(None, description="Only send events of this target.")


class MqttTrigger(_Model):
    """Fires on an MQTT message on a topic (wildcards allowed), matching a CEL condition."""

    type: Literal["mqtt"]
    topic: str = Field(description="Topic filter, e.g. frigate/events or home/+/motion.")
    where: str | None = Field(
        None,
        description="CEL over payload (the JSON, or the text), topic and text, e.g. "
        "payload.type == 'new' && payload.after.label == 'person'",
    )
    _condition: DataCondition | None = PrivateAttr(None)

    @field_validator("topic")
    @classmethod
    def _filter(cls, value: str) -> str:
        problem = filter_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("where")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            DataCondition(value, MQTT_NAMES)  # ConditionError (a ValueError) has the column
        return value

    @model_validator(mode="after")
    def _compile(self) -> MqttTrigger:
        if self.where is not None:
            self._condition = DataCondition(self.where, MQTT_NAMES)
        return self

    @property
    def condition(self) -> DataCondition | None:
        return self._condition


Trigger = Annotated[
    ScheduleTrigger | MessageTrigger | EventTrigger | MqttTrigger,
    Field(discriminator="type"),
]


# -- actions ---------------------------------------------------------------------


class ShotAction(_Model):
    """Take a shot from each camera, at the trigger's time plus ``offset``."""

    type: Literal["shot"]
    cameras: Annotated[list[str], _many(str)] = Field(
        min_length=1, description="Camera names (one or a list)."
    )
    offset: Offset = Field(
        0.0, description="-2s: two seconds before the trigger's time; 1s: after."
    )
    file_name: str | None = Field(None, description="File name template (default: the camera's).")
    folder: str | None = Field(None, description="Folder template (default: the camera's).")
    on_exists: OnExists | None = Field(
        None, description=ON_EXISTS_HELP + " Default: the camera's, else the shots settings'."
    )

    @field_validator("file_name", "folder")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)


class RecordAction(_Model):
    """Start, stop, enable or disable a recorder."""

    type: Literal["record"]
    recorder: str
    action: Literal["start", "stop", "enable", "disable"] = "start"


# Programs that run an argument as code, and the options that say which one.
_CODE_RUNNERS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh"), ("-c",)),
    **dict.fromkeys(("tcsh", "busybox"), ("-c",)),
    **dict.fromkeys(("python", "python3", "pypy3"), ("-c",)),
    **dict.fromkeys(("perl", "ruby", "node"), ("-e", "-E")),
    "cmd": ("/c", "/k"),
    **dict.fromkeys(("powershell", "pwsh"), ("-c", "-command", "-encodedcommand")),
}


def env_name(field: str) -> str:
    """The environment variable a ``run`` action's program finds ``{field}`` in."""
    return f"CUECAP_{field.upper()}"


def _program_name(item: str) -> str:
    name = item.replace("\\", "/").rsplit("/", 1)[-1].lower().removesuffix(".exe")
    return re.sub(r"^(python|pypy)[0-9.]*$", r"\1", name)


def _code_arguments(argv: list[str]) -> list[tuple[str, int]]:
    """Program and index of each argument that a shell or interpreter in ``argv`` runs as code.

    The shell may come after a wrapper (``env``, ``timeout 5``, ``sudo``,
    ``nice``, ``busybox``, ``find ... -exec``, ``docker exec``...), so every
    item naming one counts; ``ssh`` passes all it is given to the remote shell.
    """
    out: list[tuple[str, int]] = []
    for i, item in enumerate(argv):
        program = _program_name(item)
        if program == "ssh":
            out.extend(("ssh", j) for j in range(i + 1, len(argv)))
            break
        options = _CODE_RUNNERS.get(program) or _CODE_RUNNERS.get(program + "3")
        if options is None:
            continue
        for j in range(i + 1, len(argv)):
            option = argv[j].lower()
            if not option.startswith("/" if program == "cmd" else "-"):
                break  # a script file: what follows are its own arguments
            short = not option.startswith("--") and len(option) > 2 and option[0] == "-"
            if option in options or (
                short and options[0] in ("-c", "-e") and options[0][1] in option
            ):
                if j + 1 < len(argv):  # -c SCRIPT, -ec SCRIPT
                    out.append((program, j + 1))
                break
    return out


class RunAction(_Model):
    """Run a program (no shell); killed when it runs longer than ``timeout``.

    Each argv item is one argument, fields filled in: a value never becomes
    shell text. The values are also in the environment (``CUECAP_PATH``,
    ``CUECAP_RULE``...), which is how a shell script should read them: an
    argv that runs a shell (or python, perl...) with a ``-c`` script that
    holds a ``{field}`` is refused, because the value would become code.
    """

    type: Literal["run"]
    argv: list[TextTemplate] = Field(
        min_length=1, description="Program and arguments; {rule}, {time:%H:%M}... are filled in."
    )
    timeout: Duration = Field(60.0, gt=0)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return env

    @field_validator("argv")
    @classmethod
    def _no_code_from_fields(cls, argv: list[str]) -> list[str]:
        chosen = sorted(format_fields(argv[0])) if argv else []
        if chosen:
            raise ValueError(
                f"argv item 1 is the program to run and holds {{{chosen[0]}}}: a value must "
                "not choose the program; name it, and pass the value as an argument"
            )
        for program, index in _code_arguments(argv):
            fields = sorted(format_fields(argv[index]))
            if fields:
                uses = ", ".join(f"${env_name(f)} for {{{f}}}" for f in fields)
                what = (
                    "goes to the remote shell"
                    if program == "ssh"
                    else f"is a script {program} runs"
                )
                raise ValueError(
                    f"argv item {index + 1} {what}, and it holds "
                    f"{', '.join(f'{{{f}}}' for f in fields)}: a value would become code. "
                    f"Read the environment variable in the script instead ({uses}), "
                    "or pass the value as an argv item of its own"
                )
        return argv


class LogAction(_Model):
    """Write a line to the engine's log."""

    type: Literal["log"]
    message: TextTemplate = Field(description="e.g. '{rule}: {event} at {time:%H:%M:%S}'")
    level: Literal["debug", "info", "warning", "error"] = "info"


class PublishAction(_Model):
    """Publish an MQTT message (needs settings.mqtt)."""

    type: Literal["publish"]
    topic: TextTemplate = Field(description="Topic; {camera}, {rule}... are filled in.")
    payload: TextTemplate = Field("", description="Payload text template.")
    retain: bool = False
    qos: Literal[0, 1, 2] = 1

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        problem = topic_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class SendAction(_Model):
    """Send a message to targets (e-mail, webhook, Telegram), with the shot if asked."""

    type: Literal["send"]
    to: Annotated[list[str], _many(str)] = Field(
        min_length=1, description="Target names (one or a list), declared under targets:."
    )
    message: TextTemplate | None = Field(
        None, description="Text template (default: what happened, e.g. a recording's summary)."
    )
    shot: bool = Field(
        False,
        description="Attach the shot: the one an earlier shot action of this rule took, "
        "or the one a shot.success trigger reports.",
    )


Action = Annotated[
    ShotAction | RecordAction | RunAction | LogAction | PublishAction | SendAction,
    Field(discriminator="type"),
]


class RuleMode(enum.StrEnum):
    """What a firing does while the rule's earlier runs still go on."""

    SINGLE = "single"  # ignored
    QUEUED = "queued"  # runs after them
    PARALLEL = "parallel"  # runs beside them
    RESTART = "restart"  # cancels them and runs


class Rule(_Model):
    """When something happens (``when``), do these actions in order (``do``)."""

    description: str = ""
    enabled: bool = True
    when: Annotated[list[Trigger], _many(Trigger)] = Field(
        min_length=1, description="One trigger or a list (any of them fires the rule)."
    )
    do: Annotated[list[Action], _many(Action)] = Field(
        min_length=1, description="One action or a list, run in order."
    )
    mode: RuleMode = Field(
        RuleMode.SINGLE,
        description="A firing while the rule still runs: single ignores it, queued runs it "
        "after, parallel runs it alongside, restart cancels the running one.",
    )
    max: int = Field(
        10, ge=1, le=1000, description="queued: most waiting; parallel: most at once (up to 1000)."
    )
    cooldown: Duration = Field(
        0.0, ge=0, description="After a firing, ignore triggers for this long."
    )


# -- settings and files ----------------------------------------------------------


DEFAULT_LISTEN = "127.0.0.1:7080"


class HttpSettings(_Model):
    """``settings: http:`` in a rule file: the status page, JSON API and metrics."""

    enabled: bool = Field(default=True, description="Serve the status page, API and /metrics.")
    listen: str | None = Field(
        default=None,
        description=f"HOST:PORT to listen on (default {DEFAULT_LISTEN}); "
        "any address but loopback needs a token.",
    )
    token_env: EnvName | None = Field(
        default=None,
        description="Name of the environment variable holding the access token "
        "(never the token itself).",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen(value)  # an AddressError is a ValueError: pydantic places it
        return value


class Settings(_Model):
    """Engine-wide settings; each may be set in one rule file only."""

    recordings: str = Field("recordings", description="Folder that recordings go under.")
    timezone: TimeZoneName = Field(
        "local", description="Zone for schedules and dates in names (an IANA name, or local)."
    )
    source: str | None = Field(
        None, description="Default source of recorders that name none (default: the only one)."
    )
    shots: ShotsConfig = Field(default_factory=ShotsConfig, description="The shot saver.")
    tick: Duration = Field(
        0.1, ge=0.01, le=5, description="Seconds between recorder timer ticks and flushes."
    )
    stop_timeout: Duration = Field(
        10.0, ge=0, description="On stop, how long running actions may take to finish."
    )
    mqtt: MqttSettings | None = Field(None, description="An MQTT broker for events and triggers.")
    http: HttpSettings = Field(
        default_factory=HttpSettings, description="The status page, JSON API and /metrics."
    )
    cluster: ClusterConfig | None = Field(
        None, description="Run as one of a site's engines over NATS JetStream (docs/cluster.md)."
    )


class RuleFile(_Model):
    """One rule file. Several files merge; a name may be declared once across them."""

    schema_: SkipJsonSchema[str | None] = Field(None, alias="$schema")
    settings: Settings | None = None
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    cameras: dict[str, CameraConfig] = Field(default_factory=dict)
    recorders: dict[str, RecorderConfig] = Field(default_factory=dict)
    rules: dict[str, Rule] = Field(default_factory=dict)
    targets: dict[str, TargetConfig] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


SECTIONS = ("sources", "cameras", "recorders", "rules", "targets")


_EVENT_FIELDS: dict[str, frozenset[str]] = {
    "recording": frozenset({"recorder", "path", "reason"}),
    "shot": frozenset({"camera", "path", "reason"}),
    "send": frozenset({"target", "camera", "path", "reason"}),
    "source": frozenset({"reason"}),
    "engine": frozenset({"reason"}),
}


def trigger_fields(trigger: Any) -> frozenset[str]:
    """The template fields a trigger provides (``{camera}`` needs a shot event...)."""
    if isinstance(trigger, MessageTrigger):
        return COMMON_FIELDS | {"seq"}
    if isinstance(trigger, MqttTrigger):
        return COMMON_FIELDS | {"topic", "payload"}
    if isinstance(trigger, EventTrigger):
        extra = _EVENT_FIELDS.get(trigger.event.split(".")[0], frozenset())
        if trigger.event == EventKind.RECORDING_STOPPED:
            extra = extra | {"records", "bytes", "duration"}
        return COMMON_FIELDS | extra
    return COMMON_FIELDS


def bad_name(name: str) -> str | None:
    """Why ``name`` cannot name a source, camera, recorder or rule (None if it can).

    Names go into file names, log lines and environment values: at most
    ``MAX_NAME`` characters.
    """
    if len(name) > MAX_NAME:
        return (
            f"name {name[:20]!r}... is {len(name)} characters long; names have at most {MAX_NAME}"
        )
    if _NAME.match(name):
        return None
    return (
        f"name {name!r} is not allowed; use letters, digits, '_', '-', '.', "
        "starting with a letter or digit"
    )
