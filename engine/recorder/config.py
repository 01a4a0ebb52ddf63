"""What a recorder is, as declared in a rule file: validated once, at load time.

Every mistake a user can make in a recorder definition is caught here, with
the location pydantic reports (which the rule loader maps to file:line:column):
unknown message types, misspelled field paths (with their column), thresholds
without a side, templates with unknown fields or that climb out of the
recordings folder, CEL conditions that do not compile.

Durations accept seconds (``2.5``) or text (``"500ms"``, ``"2s"``, ``"1.5min"``,
``"1h"``); sizes accept bytes or text (``"64MiB"``, ``"10MB"``, ``"1.5GB"``).
"""

from __future__ import annotations

import enum
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)

from engine.core.condition import Condition
from engine.core.fieldpath import FieldPath, unknown_kind_message
from engine.core.schema import PURPLEDROP, Schema
from engine.core.templates import Template, check_path, safe_join
from engine.core.units import ByteSize, Duration

# Fields a recorder's folder and file-name templates may use.
TEMPLATE_FIELDS: frozenset[str] = frozenset({"recorder", "source", "seq", "part", "reason"})


def schema_in(info: ValidationInfo | None, source: str | None = None) -> Schema:
    """The schema names are checked against while validating (the rule loader says which).

    The loader validates each recorder with ``context={"schema": ...}`` (its
    source's schema) and rules with ``"schemas"`` per source name as well; with
    no context (a config made in Python) it is PurpleDrop's.
    """
    context = info.context if info is not None else None
    if not context:
        return PURPLEDROP
    if source is None:
        try:
            data = info.data if info is not None else None
        except AttributeError:  # a model-level validator: no field data
            data = None
        source = data.get("source") if isinstance(data, dict) else None
    schemas = context.get("schemas") or {}
    if source is not None and source in schemas:
        found: Schema = schemas[source]
        return found
    default: Schema = context.get("schema") or PURPLEDROP
    return default


def _check_kind(value: str, info: ValidationInfo) -> str:
    schema = schema_in(info)
    if value not in schema.kinds:
        raise ValueError(unknown_kind_message(value, schema))
    return value


def _check_path(value: str, info: ValidationInfo) -> str:
    FieldPath(value, schema_in(info))  # raises FieldPathError (a ValueError) naming the column
    return value


def _check_numeric_path(value: str, info: ValidationInfo) -> str:
    path = FieldPath(value, schema_in(info))
    if not path.numeric:
        hint = " (pick one element with [index])" if path.repeated else ""
        raise ValueError(f"field {value!r} is a {path.type_name}, not a number{hint}")
    return value


KindName = Annotated[str, AfterValidator(_check_kind)]
FieldPathText = Annotated[str, AfterValidator(_check_path)]
NumericFieldPath = Annotated[str, AfterValidator(_check_numeric_path)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Detector(_Model):
    name: str | None = Field(
        None, description="A label for logs and manifests (default: the type)."
    )
    _schema: Schema = PrivateAttr(PURPLEDROP)

    @model_validator(mode="after")
    def _remember_schema(self, info: ValidationInfo) -> _Detector:
        self._schema = schema_in(info)
        return self

    @property
    def message_schema(self) -> Schema:
        """The schema its field names were checked against (its recorder's source's)."""
        return self._schema

    @property
    def label(self) -> str:
        return self.name or str(getattr(self, "type", "activity"))  # each has a Literal type


class MessageDetectorConfig(_Detector):
    """Any message of these types is activity (e.g. every ``electrode_state``)."""

    type: Literal["message"]
    types: list[KindName] = Field(min_length=1)


class ChangedDetectorConfig(_Detector):
    """A field differs from its value in the previous message of its type (compared by value)."""

    type: Literal["changed"]
    field: FieldPathText


class ThresholdDetectorConfig(_Detector):
    """A number crosses a threshold; it re-arms only after going back past it by ``hysteresis``.

    With ``continuous``, every message while beyond the threshold is activity,
    so a recording lasts as long as the value stays high (or low).
    """

    type: Literal["threshold"]
    field: NumericFieldPath
    above: float | None = None
    below: float | None = None
    hysteresis: float = Field(0.0, ge=0)
    continuous: bool = False

    @model_validator(mode="after")
    def _one_side(self) -> ThresholdDetectorConfig:
        if (self.above is None) == (self.below is None):
            raise ValueError("a threshold needs exactly one of 'above' or 'below'")
        return self


class StepDetectorConfig(_Detector):
    """A number moves by more than ``delta`` from the previous message of its type."""

    type: Literal["step"]
    field: NumericFieldPath
    delta: float = Field(gt=0)
    direction: Literal["any", "up", "down"] = "any"


class RateDetectorConfig(_Detector):
    """More than ``per_second`` messages per second (of ``types``, or of all) over ``window``."""

    type: Literal["rate"]
    types: list[KindName] | None = Field(None, min_length=1)
    per_second: float = Field(gt=0)
    window: Duration = Field(1.0, gt=0)


class WhereDetectorConfig(_Detector):
    """A CEL condition over the decoded message, e.g. ``active_capacitance.calibrated > 3.5``."""

    type: Literal["where"]
    where: str
    types: list[KindName] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _compiles(self, info: ValidationInfo) -> WhereDetectorConfig:
        self._schema = schema_in(info)
        self.condition()  # raises ConditionError (a ValueError) with the column
        return self

    def condition(self) -> Condition:
        message_type = self.types[0] if self.types and len(self.types) == 1 else None
        return Condition(self.where, message_type, self._schema)


DetectorConfig = Annotated[
    MessageDetectorConfig
    | ChangedDetectorConfig
    | ThresholdDetectorConfig
    | StepDetectorConfig
    | RateDetectorConfig
    | WhereDetectorConfig,
    Field(discriminator="type"),
]


def _template(text: str) -> Template:
    return Template(text, TEMPLATE_FIELDS)


_SAMPLE = {"recorder": "r", "source": "s", "seq": 1, "part": 1, "reason": "activity"}
_SAMPLE_TIME = datetime(2000, 1, 2, 3, 4, 5)


def _check_path_template(text: str, what: str, allow_empty: bool) -> str:
    template = _template(text)  # TemplateError (a ValueError) names the column
    check_path(template, what, allow_empty=allow_empty)
    rendered = template.render(_SAMPLE, _SAMPLE_TIME)
    if not rendered.strip(" /"):
        if allow_empty:
            return text
        raise ValueError(f"{what} {text!r} names no file")
    safe_join(PurePosixPath("/recordings"), rendered)  # PathEscapeError: absolute or '..'
    return text


def _check_folder(text: str) -> str:
    return _check_path_template(text, "folder", allow_empty=True)


def _check_file_name(text: str) -> str:
    return _check_path_template(text, "file_name", allow_empty=False)


class RecordingRetention(_Model):
    """How long a recorder's files stay: by age and/or by total size; oldest go first.

    Only recordings whose manifest names this recorder are touched, and never
    the one being written.
    """

    keep_days: float | None = Field(None, gt=0, description="Delete recordings older than this.")
    max_bytes: ByteSize | None = Field(
        None, gt=0, description="Delete the oldest while this recorder's files hold more."
    )
    min_free_bytes: ByteSize | None = Field(
        None, gt=0, description="Delete the oldest while the disk has less free space."
    )
    interval: Duration = Field(600.0, gt=0, description="Seconds between clean-ups.")

    @model_validator(mode="after")
    def _something(self) -> RecordingRetention:
        if self.keep_days is None and self.max_bytes is None and self.min_free_bytes is None:
            raise ValueError("retention needs keep_days, max_bytes or min_free_bytes")
        return self


class RecordingFormat(enum.StrEnum):
    """How a recorder writes its segments."""

    PDRECORD = "pdrecord"  # NAME.bin (+ .idx, .json): PurpleDrop's pdrecord layout
    MCAP = "mcap"  # NAME.mcap (+ .json while recording): opens in Foxglove and other viewers


class McapCompression(enum.StrEnum):
    ZSTD = "zstd"
    LZ4 = "lz4"
    NONE = "none"


DEFAULT_FILE_NAME = "{recorder}-%Y%m%d-%H%M%S-{seq:03d}.bin"


class RecorderConfig(_Model):
    """One recorder: which source, what counts as activity, how much around it, where files go.

    The recorder's name is the key it is declared under in the rule file.
    """

    source: str | None = Field(
        None, description="Source to record; None: the engine's default source."
    )
    activity: list[DetectorConfig] = Field(
        default_factory=list,
        description="Any detector hitting counts as activity; empty: manual only.",
    )
    min_activity: int = Field(1, ge=1, description="Hits needed within activity_window to start.")
    activity_window: Duration = Field(1.0, gt=0)
    pre_roll: Duration = Field(2.0, ge=0, description="Seconds kept before the first activity.")
    pre_roll_bytes: ByteSize = Field(
        64 * 1024 * 1024, ge=0, description="Memory bound of the pre-roll."
    )
    post_roll: Duration = Field(
        5.0, ge=0, description="Quiet seconds after the last activity before stopping."
    )
    max_segment_seconds: Duration | None = Field(
        None, gt=0, description="Rotate to a new file after this long."
    )
    max_segment_bytes: ByteSize | None = Field(
        None, gt=0, description="Rotate to a new file at this size."
    )
    folder: Annotated[str, AfterValidator(_check_folder)] = Field(
        "{recorder}", description="Folder under the recordings root (a template)."
    )
    file_name: Annotated[str, AfterValidator(_check_file_name)] = Field(
        DEFAULT_FILE_NAME,
        description="File name template (with format mcap, the default ends in .mcap).",
    )
    format: RecordingFormat = Field(
        RecordingFormat.PDRECORD, description="pdrecord (.bin) or mcap (.mcap)."
    )
    mcap_compression: McapCompression = Field(
        McapCompression.ZSTD, description="format mcap: how chunks are compressed."
    )
    mcap_chunk_size: ByteSize = Field(
        1024 * 1024,
        gt=0,
        le=64 * 1024 * 1024,
        description="format mcap: largest chunk (viewers load a chunk at once).",
    )
    utc: bool = Field(
        False, description="Render dates in file names in UTC rather than local time."
    )
    exclude: list[KindName] = Field(default_factory=list, description="Message types not written.")
    flush_interval: Duration = Field(
        0.5, gt=0, description="Longest time written records wait in memory."
    )
    retry_after: Duration | None = Field(
        30.0,
        gt=0,
        description="After a write error, try again this much later; null: only when told.",
    )
    retention: RecordingRetention | None = Field(
        None, description="Delete old recordings: keep_days and/or max_bytes, oldest first."
    )
    enabled: bool = True
    _schema: Schema = PrivateAttr(PURPLEDROP)

    @model_validator(mode="after")
    def _remember_schema(self, info: ValidationInfo) -> RecorderConfig:
        self._schema = schema_in(info, self.source)
        if self.format is RecordingFormat.MCAP and self.file_name != DEFAULT_FILE_NAME:
            if not self.file_name.endswith(".mcap"):
                raise ValueError(f"format mcap: file_name {self.file_name!r} must end in .mcap")
        elif self.file_name.endswith(".mcap"):
            raise ValueError(f"file_name {self.file_name!r} ends in .mcap: add format: mcap")
        return self

    @property
    def message_schema(self) -> Schema:
        """The schema of the recorder's source, as the rule loader found it."""
        return self._schema

    def path_template(self) -> Template:
        """The folder and file name as one template, relative to the recordings root."""
        folder = self.folder.strip().strip("/")
        name = self.file_name
        if self.format is RecordingFormat.MCAP and name == DEFAULT_FILE_NAME:
            name = name.removesuffix(".bin") + ".mcap"
        return _template(f"{folder}/{name}" if folder else name)
