"""Loading rule files: read, validate, merge, cross-check; all errors at once.

``load_rules(paths)`` takes files and folders (a folder means its ``*.yaml``
and ``*.yml`` files, in name order) and returns a ``RuleSet`` or raises
``RuleFileError`` listing every problem with its file:line:column. Nothing is
started before this succeeds, so a bad file never leaves half an engine
running, and a hot reload that fails keeps the old rules.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from engine.core.schema import SchemaError
from engine.core.winpaths import ON_WINDOWS, as_written, problem_text
from engine.notify.config import TargetConfig, secret_names, templates
from engine.recorder.config import RecorderConfig
from engine.rules.errors import Location, RuleError, RuleFileError
from engine.rules.fields import zone
from engine.rules.locate import validation_errors
from engine.rules.model import (
    SECTIONS,
    EventTrigger,
    LogAction,
    MessageTrigger,
    MqttTrigger,
    NatsSourceConfig,
    PublishAction,
    RecordAction,
    ReplaySourceConfig,
    Rule,
    RuleFile,
    RunAction,
    ScheduleTrigger,
    SendAction,
    Settings,
    ShotAction,
    SourceConfig,
    bad_name,
    check_text,
    trigger_fields,
)
from engine.rules.schedule import Schedule, ScheduleError, Window
from engine.rules.schemas import SchemaScope, load_source_schema
from engine.rules.yamlpos import (
    MAX_FILE_BYTES,
    MAX_VALUES,
    Document,
    Positions,
    compose,
    decode,
)
from engine.rules.yamlpos import Path as DataPath
from engine.shots.config import CameraConfig, StreamCameraConfig, format_fields

_T = TypeVar("_T")

RULE_SUFFIXES = (".yaml", ".yml")
RULES_ENV = "CUECAP_RULES"
DEFAULT_RULES = "rules"
MAX_FILES = 1000  # rule files of one rule set (with MAX_VALUES, what loading may cost)
_TOP_LEVEL = (*(k for k in RuleFile.model_fields if k != "schema_"), "$schema")
# The type of one entry per section, for error messages (the keys allowed where).
_SECTION_TYPES: dict[str, object] = {
    section: typing.get_args(RuleFile.model_fields[section].annotation)[1] for section in SECTIONS
}
_SOURCES: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)
_CAMERAS: TypeAdapter[CameraConfig] = TypeAdapter(CameraConfig)
_RECORDERS = TypeAdapter(RecorderConfig)
_RULES = TypeAdapter(Rule)
_TARGETS: TypeAdapter[TargetConfig] = TypeAdapter(TargetConfig)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a named item was declared: its file and data path."""

    file: str
    path: DataPath
    location: Location


@dataclass
class RuleSet:
    """Validated, merged rule files, ready to run."""

    settings: Settings
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    cameras: dict[str, CameraConfig] = field(default_factory=dict)
    recorders: dict[str, RecorderConfig] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)
    targets: dict[str, TargetConfig] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)
    # (rule name, trigger index) -> the schedule of a schedule trigger
    schedules: dict[tuple[str, int], Schedule] = field(default_factory=dict)
    # environment variables the files used: name -> value (for ``redact``)
    environment: dict[str, str] = field(default_factory=dict)
    # settings key -> where it was set
    setting_origins: dict[str, Location] = field(default_factory=dict)

    def redact(self, text: str) -> str:
        """``text`` with the values that came from the environment shown as ``${NAME}``.

        What the engine prints (``check``, dry-run notes) goes through here, so
        a token passed as ``${TOKEN}`` is never shown. Values shorter than four
        characters are left alone: replacing every ``1`` would garble the text.
        """
        for name, value in sorted(self.environment.items(), key=lambda kv: -len(kv[1])):
            if len(value) >= 4:
                text = text.replace(value, f"${{{name}}}")
        return text

    @property
    def tz(self) -> tzinfo:
        return zone(self.settings.timezone)

    def shot_settings(self) -> Any:
        """``settings.shots``, with dates in shot names in the rules' zone unless it sets its own."""
        shots = self.settings.shots
        if shots.timezone is None and self.settings.timezone != "local":
            return shots.model_copy(update={"timezone": self.settings.timezone})
        return shots

    def recorder_source(self, name: str) -> str | None:
        """The source a recorder reads: its own, the default, or the only one."""
        config = self.recorders[name]
        return config.source or self.default_source()

    def default_source(self) -> str | None:
        if self.settings.source is not None:
            return self.settings.source
        if len(self.sources) == 1:
            return next(iter(self.sources))
        return None

    def schedule(self, rule: str, index: int) -> Schedule:
        return self.schedules[(rule, index)]


def default_rule_paths(env: Mapping[str, str] | None = None) -> list[str]:
    """The rule files and folders used when none are named: ``$CUECAP_RULES``, else ``rules/``.

    ``$CUECAP_RULES`` holds paths separated by ``os.pathsep`` (``:``), so a
    service or a script can point every command at ``/etc/cuecap`` once.
    """
    env = os.environ if env is None else env
    named = [p for p in env.get(RULES_ENV, "").split(os.pathsep) if p.strip()]
    return named or [DEFAULT_RULES]


def rule_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The files named, with folders expanded to their rule files in name order."""
    out: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            out.extend(
                sorted(p for p in path.iterdir() if p.suffix in RULE_SUFFIXES and p.is_file())
            )
        else:
            out.append(path)
    return out


def _read(path: Path, env: Mapping[str, str], budget: int = MAX_VALUES) -> Document:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return Document(str(path), None, _empty_positions(path), [_err(path, "no such file")])
    except IsADirectoryError:
        return Document(str(path), None, _empty_positions(path), [_err(path, "is a folder")])
    except OSError as exc:
        return Document(
            str(path), None, _empty_positions(path), [_err(path, f"cannot read: {exc.strerror}")]
        )
    if len(data) > MAX_FILE_BYTES:
        message = f"larger than {MAX_FILE_BYTES // 1024} KiB; a rule file is never that big"
        return Document(str(path), None, _empty_positions(path), [_err(path, message)])
    text = decode(data)
    if isinstance(text, tuple):
        line, column, reason = text
        error = RuleError(Location(str(path), line, column), f"not UTF-8 text: {reason}")
        return Document(str(path), None, _empty_positions(path), [error])
    return compose(text, str(path), env, budget)


def _empty_positions(path: Path) -> Positions:
    return Positions(str(path))


def _err(path: Path, message: str) -> RuleError:
    return RuleError(Location(str(path)), message)


class _Merger:
    """Validates documents one by one, then merges them and checks references."""

    def __init__(self, schemas: SchemaScope | None = None) -> None:
        self.scope = schemas if schemas is not None else SchemaScope()
        self.errors: list[RuleError] = []
        self.docs: list[Document] = []
        self.origins: dict[tuple[str, str], Origin] = {}
        self.sources: dict[str, SourceConfig] = {}
        self.cameras: dict[str, CameraConfig] = {}
        self.recorders: dict[str, RecorderConfig] = {}
        self.rules: dict[str, Rule] = {}
        self.targets: dict[str, TargetConfig] = {}
        self.settings: dict[str, object] = {}
        self.settings_origin: dict[str, Location] = {}
        self.settings_docs: dict[str, Document] = {}  # the file each setting is set in
        self.settings_declared: set[str] = set()  # also those whose value has errors

    def add(self, doc: Document) -> None:
        self.errors.extend(doc.errors)
        if doc.data is None and doc.errors:
            return  # not YAML: nothing more to say about it
        data = doc.data if doc.data is not None else {}
        positions = doc.positions
        if not isinstance(data, dict):
            self.error(
                positions.location(()),
                "a rule file is a mapping with sections: settings, sources, cameras, "
                "recorders, rules, targets",
            )
            return
        self.docs.append(doc)
        for key in data:
            if key not in _TOP_LEVEL:
                self.error(
                    positions.location((key,), key=True),
                    f"unknown section {key!r} (expected one of: {', '.join(_TOP_LEVEL)})",
                )
        self._add_settings(doc, data.get("settings"))
        # In the order of SECTIONS, so errors come in the order of the docs.
        self._add_section(doc, data, "sources", _SOURCES, self.sources)
        self._add_section(doc, data, "cameras", _CAMERAS, self.cameras)
        self._add_section(doc, data, "recorders", _RECORDERS, self.recorders)
        self._add_section(doc, data, "rules", _RULES, self.rules)
        self._add_section(doc, data, "targets", _TARGETS, self.targets)

    def _add_section(
        self,
        doc: Document,
        data: dict[str, Any],
        section: str,
        adapter: TypeAdapter[_T],
        into: dict[str, _T],
    ) -> None:
        positions = doc.positions
        entries = data.get(section)
        if entries is None:
            return
        if not isinstance(entries, dict):
            self.error(
                positions.location((section,)),
                f"{section}: expected a mapping of names to definitions",
            )
            return
        for name, entry in entries.items():
            key = (section, name)
            location = positions.location(key, key=True)
            first = self.origins.get(key)
            if first is not None:
                self.error(
                    location,
                    f"{section[:-1]} {name!r} is already declared at {first.location}; "
                    "names must be unique across rule files",
                )
                continue
            self.origins[key] = Origin(doc.file, key, location)
            why = bad_name(name)
            if why:
                self.error(location, why)
            try:
                value = adapter.validate_python(entry, context=self.scope.context(section, entry))
            except ValidationError as exc:
                self._invalid(exc, _SECTION_TYPES[section], entry, doc, key)
                continue
            schema_config = getattr(value, "schema_", None)
            if section == "sources" and schema_config is not None:
                try:
                    load_source_schema(schema_config)
                except SchemaError as exc:
                    self.error(positions.location((section, name, "schema")), f"schema: {exc}")
                    continue
            into[name] = value

    def _add_settings(self, doc: Document, data: object) -> None:
        if data is None:
            return
        if isinstance(data, dict):
            self.settings_declared.update(str(k) for k in data)
        try:
            settings = Settings.model_validate(data)
        except ValidationError as exc:
            self._invalid(exc, Settings, data, doc, ("settings",))
            return
        for key in sorted(settings.model_fields_set):
            location = doc.positions.location(("settings", key), key=True)
            first_at = self.settings_origin.get(key)
            if first_at is not None:
                self.error(
                    location, f"setting {key!r} is already set at {first_at}; set it in one file"
                )
                continue
            self.settings_origin[key] = location
            self.settings_docs[key] = doc
            self.settings[key] = getattr(settings, key)

    def _invalid(
        self, exc: ValidationError, root: object, data: object, doc: Document, prefix: DataPath
    ) -> None:
        broken = doc.positions.broken
        for error in validation_errors(exc, root, data, doc.positions, prefix):
            if error.location not in broken:
                self.errors.append(error)

    def where(self, section: str, name: str, *rest: str | int) -> Location:
        origin = self.origins[(section, name)]
        for doc in self.docs:
            if doc.file == origin.file:
                return doc.positions.location((section, name, *rest))
        return origin.location  # pragma: no cover

    def error(self, location: Location, message: str) -> None:
        self.errors.append(RuleError(location, message))


def _known(kind: str, name: str, names: Iterable[str]) -> str:
    known = sorted(names)
    listing = ", ".join(known) if known else "none declared"
    return f"unknown {kind} {name!r} (known {kind}s: {listing})"


def _check_references(m: _Merger, settings: Settings, env: Mapping[str, str]) -> None:
    # Names declared count as known even when their definition has errors of its own,
    # so one mistake is reported once, not again at every reference to it.
    declared = {s: {name for (section, name) in m.origins if section == s} for s in SECTIONS}
    sources, cameras, recorders, rules, targets = (declared[s] for s in SECTIONS)
    if settings.source is not None and settings.source not in sources:
        m.error(m.settings_origin["source"], _known("source", settings.source, sources))
    default_source = settings.source or (next(iter(sources)) if len(sources) == 1 else None)
    for name, config in m.sources.items():
        if isinstance(config, ReplaySourceConfig) and not Path(config.path).is_file():
            m.error(
                m.where("sources", name, "path"),
                f"recording {config.path!r} does not exist (relative paths start at the "
                "folder cuecap runs in)",
            )
    _check_streams(m)
    for name, camera in m.cameras.items():
        if isinstance(camera, StreamCameraConfig) and camera.source not in sources:
            m.error(m.where("cameras", name, "source"), _known("source", camera.source, sources))
    for name, recorder in m.recorders.items():
        if recorder.source is None:
            if default_source is None:
                m.error(
                    m.where("recorders", name),
                    "recorder names no source and there is no default: add source: NAME "
                    "(or settings.source)",
                )
        elif recorder.source not in sources:
            m.error(
                m.where("recorders", name, "source"), _known("source", recorder.source, sources)
            )
    for name, rule in m.rules.items():
        for i, trigger in enumerate(rule.when):
            at = ("when", i)
            if isinstance(trigger, MessageTrigger):
                if trigger.source is not None and trigger.source not in sources:
                    m.error(
                        m.where("rules", name, *at, "source"),
                        _known("source", trigger.source, sources),
                    )
                elif trigger.source is None and not sources:
                    m.error(
                        m.where("rules", name, *at),
                        "a message trigger needs a source; none is declared",
                    )
            elif isinstance(trigger, EventTrigger):
                for key, table, kind in (
                    ("recorder", recorders, "recorder"),
                    ("camera", cameras, "camera"),
                    ("source", sources, "source"),
                    ("rule", rules, "rule"),
                ):
                    value = getattr(trigger, key)
                    if value is not None and value not in table:
                        m.error(m.where("rules", name, *at, key), _known(kind, value, table))
                if trigger.target is not None and trigger.target not in targets:
                    m.error(
                        m.where("rules", name, *at, "target"),
                        _known("target", trigger.target, targets),
                    )
            elif isinstance(trigger, MqttTrigger) and "mqtt" not in m.settings_declared:
                m.error(m.where("rules", name, *at), "an mqtt trigger needs settings.mqtt")
        for i, action in enumerate(rule.do):
            at = ("do", i)
            if isinstance(action, ShotAction):
                for j, wanted in enumerate(action.cameras):
                    if wanted not in cameras:
                        m.error(
                            m.where("rules", name, *at, "cameras", j),
                            _known("camera", wanted, cameras),
                        )
            elif isinstance(action, RecordAction) and action.recorder not in recorders:
                m.error(
                    m.where("rules", name, *at, "recorder"),
                    _known("recorder", action.recorder, recorders),
                )
            elif isinstance(action, SendAction):
                for j, target in enumerate(action.to):
                    if target not in targets:
                        m.error(
                            m.where("rules", name, *at, "to", j), _known("target", target, targets)
                        )
            elif isinstance(action, PublishAction) and "mqtt" not in m.settings_declared:
                m.error(m.where("rules", name, *at), "a publish action needs settings.mqtt")
        _check_fields(m, name, rule)
    _check_targets(m)
    _check_secrets(m, settings, env)
    if not ON_WINDOWS:
        _check_windows_paths(m, settings)


def _check_windows_paths(m: _Merger, settings: Settings) -> None:
    """``D:\\shots`` is one folder's name on Linux, not a drive: said where it is written.

    (Rule files moved from the Windows machine the original scripts ran on.) A shot
    action's ``folder`` needs no check here: its template refuses a backslash and
    a drive already (a path must stay inside its folder).
    """
    for key, path, value in (
        ("recordings", ("settings", "recordings"), settings.recordings),
        ("shots", ("settings", "shots", "folder"), settings.shots.folder),
    ):
        doc = m.settings_docs.get(key)
        text = problem_text(value, example=key) if doc is not None else ""
        if doc is not None and text:
            m.error(
                doc.positions.location(path), f"{'.'.join(path[1:])}: {as_written(value)} {text}"
            )


def _check_streams(m: _Merger) -> None:
    """publish_to: and type: nats need the site's server, and name streams that exist once."""
    clustered = "cluster" in m.settings_declared
    published: dict[str, str] = {}  # stream -> the source publishing it
    for name, config in m.sources.items():
        stream = getattr(config, "publish_to", None)
        if stream is None:
            continue
        where = m.where("sources", name, "publish_to")
        if not clustered:
            m.error(where, "publish_to needs settings: cluster: (a site's NATS server, "
                    "docs/cluster.md)")  # fmt: skip
        elif stream in published:
            m.error(where, f"stream {stream!r} is already published by source "
                    f"{published[stream]!r}; each source publishes its own")  # fmt: skip
        else:
            published[stream] = name
    # A source whose definition has errors may be the one publishing: said once, there.
    broken = {n for (section, n) in m.origins if section == "sources"} - set(m.sources)
    for name, config in m.sources.items():
        if not isinstance(config, NatsSourceConfig):
            continue
        if not clustered:
            m.error(m.where("sources", name, "type"), "a nats source needs settings: cluster: "
                    "(a site's NATS server, docs/cluster.md)")  # fmt: skip
        elif config.stream not in published and not broken:
            m.error(m.where("sources", name, "stream"), _known("stream", config.stream, published)
                    + "; a source of the rule files publishes it with publish_to:")  # fmt: skip


def _templates(action: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """(data path within the action, template) of every text template an action has."""
    if isinstance(action, LogAction):
        return [(("message",), action.message)]
    if isinstance(action, RunAction):
        return [(("argv", i), arg) for i, arg in enumerate(action.argv)]
    if isinstance(action, PublishAction):
        return [(("topic",), action.topic), (("payload",), action.payload)]
    if isinstance(action, SendAction) and action.message is not None:
        return [(("message",), action.message)]
    return []


def _check_fields(m: _Merger, name: str, rule: Rule) -> None:
    """A template may use only fields every trigger of its rule provides."""
    provided = frozenset.intersection(*(trigger_fields(t) for t in rule.when))
    for i, action in enumerate(rule.do):
        for where, text in _templates(action):
            missing = sorted(format_fields(text) - provided)
            if missing:
                m.error(
                    m.where("rules", name, "do", i, *where),
                    f"{', '.join('{' + f + '}' for f in missing)}: not provided by "
                    f"{'this trigger' if len(rule.when) == 1 else 'every trigger'} of the rule "
                    f"(available: {', '.join(sorted(provided))})",
                )
        if isinstance(action, SendAction):
            # The targets' own templates (a subject, a JSON body) are filled per message too.
            here = provided | ({"camera", "path"} if action.shot else set())
            for j, target_name in enumerate(action.to):
                target = m.targets.get(target_name)
                uses = (
                    set().union(*(format_fields(t) for _, t in templates(target)))
                    if target
                    else set()
                )
                missing = sorted(uses - here)
                if missing:
                    m.error(
                        m.where("rules", name, "do", i, "to", j),
                        f"target {target_name!r} fills in "
                        f"{', '.join('{' + f + '}' for f in missing)}, which this rule's "
                        f"trigger does not provide (available: {', '.join(sorted(here))})",
                    )
        if isinstance(action, ShotAction):
            provided = provided | {"camera", "path"}  # later actions know the shot


def _check_targets(m: _Merger) -> None:
    """A target's templates name known fields only (``{camera}``, not ``{camra}``)."""
    for name, target in m.targets.items():
        for where, text in templates(target):
            try:
                check_text(text)
            except ValueError as exc:
                m.error(m.where("targets", name, *where), str(exc))


def _check_secrets(m: _Merger, settings: Settings, env: Mapping[str, str]) -> None:
    """Every environment variable named for a secret is set: found missing at load, not later."""
    mqtt = settings.mqtt
    if mqtt is not None:
        for key in ("username_env", "password_env"):
            var = getattr(mqtt, key)
            if var is not None and var not in env:
                m.error(
                    m.settings_origin["mqtt"], f"mqtt.{key}: environment variable {var} is not set"
                )
    cluster = settings.cluster
    if cluster is not None:
        for key, var in cluster.secret_names():
            if var not in env:
                m.error(
                    m.settings_origin["cluster"],
                    f"cluster.{key}: environment variable {var} is not set",
                )
    token_env = settings.http.token_env
    if token_env is not None and token_env not in env:
        m.error(
            m.settings_origin["http"],
            f"http.token_env: environment variable {token_env} is not set",
        )
    for name, target in m.targets.items():
        for key, var in secret_names(target):
            if var not in env:
                m.error(m.where("targets", name, key), f"environment variable {var} is not set")


def _local_epoch(moment: datetime, tz: tzinfo) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def build_schedule(name: str, index: int, trigger: ScheduleTrigger, default_tz: tzinfo) -> Schedule:
    """The pure schedule of one trigger; ``name``/``index`` seed its jitter."""
    tz = zone(trigger.timezone) if trigger.timezone is not None else default_tz
    window = None
    if trigger.between is not None or trigger.days is not None:
        start, end = trigger.between if trigger.between is not None else (0, 86400)
        days = frozenset(trigger.days if trigger.days is not None else range(7))
        window = Window(start, end, days)
    return Schedule(
        tz=tz,
        cron=trigger.cron,
        every=trigger.every,
        at=trigger.times_of_day(),
        dates=[_local_epoch(d, tz) for d in trigger.moments()],
        window=window,
        start=_local_epoch(trigger.start, tz) if trigger.start is not None else None,
        end=_local_epoch(trigger.end, tz) if trigger.end is not None else None,
        jitter=trigger.jitter,
        seed=f"{name}#{index}",
    )


def _build_schedules(
    m: _Merger, rules: dict[str, Rule], tz: tzinfo
) -> dict[tuple[str, int], Schedule]:
    out: dict[tuple[str, int], Schedule] = {}
    for name, rule in rules.items():
        for i, trigger in enumerate(rule.when):
            if not isinstance(trigger, ScheduleTrigger):
                continue
            try:
                out[(name, i)] = build_schedule(name, i, trigger, tz)
            except ScheduleError as exc:
                m.error(m.where("rules", name, "when", i), str(exc))
    return out


def load_rules(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
) -> RuleSet:
    """Read, validate and merge rule files; raises ``RuleFileError`` with every problem.

    ``paths``: files and folders; one path given alone (a ``str`` or ``Path``) is one.
    """
    env = os.environ if env is None else env
    paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    files = rule_files(paths)
    if len(files) > MAX_FILES:
        where = ", ".join(str(p) for p in paths)
        raise RuleFileError(
            [
                RuleError(
                    Location(where), f"{len(files)} rule files; a rule set has at most {MAX_FILES}"
                )
            ]
        )
    if not files:
        raise RuleFileError(
            [RuleError(Location(", ".join(str(p) for p in paths) or "."), "no rule files (*.yaml)")]
        )
    budget = MAX_VALUES  # for all the files together: a thousand files are no way around it
    docs: list[Document] = []
    for path in files:
        docs.append(_read(path, env, max(budget, 0)))
        budget -= docs[-1].values
    merger = _Merger(SchemaScope.of(docs))
    for doc in docs:
        merger.add(doc)
    settings = Settings.model_validate(merger.settings)
    _check_references(merger, settings, env)
    tz = zone(settings.timezone)
    schedules = _build_schedules(merger, merger.rules, tz)
    if merger.errors:
        raise RuleFileError(merger.errors)
    return RuleSet(
        settings=settings,
        sources=merger.sources,
        cameras=merger.cameras,
        recorders=merger.recorders,
        rules=merger.rules,
        targets=merger.targets,
        files=files,
        origins=merger.origins,
        schedules=schedules,
        environment={k: v for doc in merger.docs for k, v in doc.positions.environment.items()},
        setting_origins=dict(merger.settings_origin),
    )
