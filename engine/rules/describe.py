"""Rule sets explained in words: what ``cuecap check`` prints.

One line per trigger and action, in the terms of the rule file, plus the next
fire times of every schedule, computed by the same pure ``Schedule`` the
engine runs, so what ``check`` promises is what ``run`` does. Secrets never
appear: HTTP cameras show their URL without credentials and the name of the
variable holding the password, never its value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from engine.mqtt.config import MqttSettings
from engine.notify.config import EmailTarget, TelegramTarget, WebhookTarget
from engine.rules.fields import WEEKDAYS
from engine.rules.loader import RuleSet
from engine.rules.model import (
    Action,
    EventTrigger,
    LogAction,
    MessageTrigger,
    MqttTrigger,
    NatsSourceConfig,
    PublishAction,
    RecordAction,
    ReplaySourceConfig,
    Rule,
    RunAction,
    ScheduleTrigger,
    SendAction,
    ShotAction,
    SourceConfig,
    Trigger,
    WebSocketSourceConfig,
)
from engine.shots.config import (
    CameraConfig,
    CommandCameraConfig,
    HttpCameraConfig,
    PythonCameraConfig,
    StreamCameraConfig,
)


def seconds(value: float) -> str:
    """``2.5`` -> ``2.5s``, ``90`` -> ``1m30s``, ``7200`` -> ``2h``."""
    if value < 60 or value != int(value):
        return f"{value:g}s"
    value = int(value)
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts)


def clock_time(value: int) -> str:
    if value >= 86400:
        return "24:00"
    hours, rest = divmod(int(value), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def days_text(days: list[int]) -> str:
    if sorted(days) == [0, 1, 2, 3, 4]:
        return "mon-fri"
    if sorted(days) == [5, 6]:
        return "sat-sun"
    return ",".join(WEEKDAYS[d] for d in sorted(days))


def _shown_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=host)
    return urlunsplit(parts)


def trigger_text(trigger: Trigger) -> str:
    if isinstance(trigger, ScheduleTrigger):
        if trigger.cron:
            what = "cron " + " | ".join(trigger.cron)
        elif trigger.every is not None:
            what = f"every {seconds(trigger.every)}"
        else:
            what = "at " + ", ".join(trigger.at or ())
        if trigger.between:
            what += f" between {clock_time(trigger.between[0])}-{clock_time(trigger.between[1])}"
        if trigger.days:
            what += f" on {days_text(trigger.days)}"
        if trigger.timezone:
            what += f" ({trigger.timezone})"
        if trigger.jitter:
            what += f", jitter up to {seconds(trigger.jitter)}"
        return what
    if isinstance(trigger, MessageTrigger):
        kinds = ", ".join(trigger.types) if trigger.types else "any message"
        where = f" where {trigger.where}" if trigger.where else ""
        source = trigger.source or "any source"
        return f"{kinds} from {source}{where}"
    if isinstance(trigger, EventTrigger):
        filters = [f"{k}={getattr(trigger, k)}" for k in ("recorder", "camera", "source", "rule")]
        shown = [f for f in filters if not f.endswith("=None")]
        if trigger.target is not None:
            shown.append(f"target={trigger.target}")
        return f"event {trigger.event}" + (f" ({', '.join(shown)})" if shown else "")
    if isinstance(trigger, MqttTrigger):
        where = f" where {trigger.where}" if trigger.where else ""
        return f"mqtt {trigger.topic}{where}"
    return repr(trigger)  # pragma: no cover


def action_text(action: Action) -> str:
    if isinstance(action, ShotAction):
        offset = ""
        if action.offset:
            offset = f" {seconds(abs(action.offset))} {'before' if action.offset < 0 else 'after'}"
        return f"shot from {', '.join(action.cameras)}{offset}"
    if isinstance(action, RecordAction):
        return f"{action.action} recorder {action.recorder}"
    if isinstance(action, RunAction):
        return f"run {' '.join(action.argv)} (timeout {seconds(action.timeout)})"
    if isinstance(action, LogAction):
        return f"log {action.level}: {action.message}"
    if isinstance(action, PublishAction):
        retain = " (retained)" if action.retain else ""
        return f"publish {action.topic}: {action.payload!r}{retain}"
    if isinstance(action, SendAction):
        shot = " with the shot" if action.shot else ""
        message = f": {action.message}" if action.message else ""
        return f"send to {', '.join(action.to)}{shot}{message}"
    return repr(action)  # pragma: no cover


def target_text(config: WebhookTarget | EmailTarget | TelegramTarget) -> str:
    if isinstance(config, EmailTarget):
        what = f"email via {config.host}:{config.smtp_port} ({config.security}) to {', '.join(config.to)}"
    elif isinstance(config, WebhookTarget):
        what = f"webhook POST {_shown_url(config.url)}"
    else:
        what = (
            f"telegram chat {config.chat_id} via {config.base_url} (token in ${config.token_env})"
        )
    limits = [f"queue {config.queue}", f"{config.retries} retries"]
    if config.period:
        limits.append(f"one per {seconds(config.period)}")
    if config.camera_period:
        limits.append(f"one per camera per {seconds(config.camera_period)}")
    if config.delete_after_send:
        limits.append("shots deleted once sent")
    return f"{what}; {', '.join(limits)}"


def mqtt_text(settings: MqttSettings) -> str:
    prefix = settings.topic_prefix("<host name>")  # check runs where cuecap may not
    login = f", user from ${settings.username_env}" if settings.username_env else ""
    tls = ", TLS" if settings.uses_tls else ""
    discovery = settings.discovery
    ha = f", Home Assistant discovery under {discovery.prefix}/" if discovery else ""
    return f"mqtt: {settings.host}:{settings.port}{tls}{login}, topics under {prefix}/{ha}"


def source_text(config: SourceConfig) -> str:
    if isinstance(config, NatsSourceConfig):
        return f"stream {config.stream} of the site (published by the engine reading it)"
    published = f", published to stream {config.publish_to}" if config.publish_to else ""
    return _device_text(config) + published


def _device_text(config: SourceConfig) -> str:
    assert not isinstance(config, NatsSourceConfig)
    if isinstance(config, WebSocketSourceConfig):
        text = f"websocket {_shown_url(config.url)}"
        if config.schema_ is not None:
            schema = config.schema_
            kinds = f"kind: {schema.kind}" if schema.kind else ""
            text += f", {schema.message} messages" + (f" ({kinds})" if kinds else "")
        return text
    if isinstance(config, ReplaySourceConfig):
        pace = "as fast as possible" if config.speed is None else f"at {config.speed:g}x"
        return f"replay of {config.path} {pace}"
    pace = "as fast as possible" if config.speed is None else f"at {config.speed:g}x"
    return f"simulator (seed {config.seed}, {config.fps:g} fps camera) {pace}"


def camera_text(config: CameraConfig) -> str:
    if isinstance(config, HttpCameraConfig):
        auth = ""
        if config.auth is not None:
            auth = f", {config.auth.type} auth as {config.auth.username} (password in ${config.auth.password_env})"
        return f"http {_shown_url(config.url)}{auth}"
    if isinstance(config, CommandCameraConfig):
        return "command " + " ".join(config.argv)
    if isinstance(config, StreamCameraConfig):
        return f"stream: image frames of source {config.source}"
    if isinstance(config, PythonCameraConfig):
        return f"python {config.function}"
    return repr(config)  # pragma: no cover


def recorder_text(name: str, rules: RuleSet) -> str:
    config = rules.recorders[name]
    labels = [getattr(d, "label", getattr(d, "type", "?")) for d in config.activity]
    activity = ", ".join(labels) if labels else "manual start/stop only"
    state = "" if config.enabled else " (disabled)"
    return (
        f"source {rules.recorder_source(name)}, activity: {activity}; pre-roll "
        f"{seconds(config.pre_roll)}, post-roll {seconds(config.post_roll)}{state}"
    )


def rule_lines(name: str, rule: Rule) -> Iterator[str]:
    state = "" if rule.enabled else " (disabled)"
    extra = f", mode {rule.mode}"
    if rule.mode in ("queued", "parallel"):
        extra += f" (max {rule.max})"
    if rule.cooldown:
        extra += f", cooldown {seconds(rule.cooldown)}"
    yield f"{name}{state}{extra}"
    if rule.description:
        yield f"  {rule.description}"
    for trigger in rule.when:
        yield f"  when {trigger_text(trigger)}"
    for action in rule.do:
        yield f"  do   {action_text(action)}"


def next_fires(rules: RuleSet, now: float, count: int) -> dict[tuple[str, int], list[float]]:
    return {key: schedule.upcoming(now, count) for key, schedule in rules.schedules.items()}


def explain(rules: RuleSet, now: float, count: int = 5) -> str:
    """The text of ``cuecap check``."""
    lines = ["files: " + ", ".join(str(f) for f in rules.files)]
    zone = rules.settings.timezone
    if zone == "local":
        zone = f"local ({rules.tz})"
    lines.append(
        f"recordings go under {rules.settings.recordings}/, shots under "
        f"{rules.settings.shots.folder}/; time zone {zone}"
    )
    if rules.settings.mqtt is not None:
        lines.append(mqtt_text(rules.settings.mqtt))
    sections: list[tuple[str, Mapping[str, object], Callable[[str], str]]] = [
        ("sources", rules.sources, lambda n: source_text(rules.sources[n])),
        ("cameras", rules.cameras, lambda n: camera_text(rules.cameras[n])),
        ("recorders", rules.recorders, lambda n: recorder_text(n, rules)),
    ]
    if rules.targets:
        sections.append(("targets", rules.targets, lambda n: target_text(rules.targets[n])))
    for title, table, text in sections:
        lines.append(f"{title}: {len(table)}")
        lines.extend(f"  {name}: {text(name)}" for name in table)
    lines.append(f"rules: {len(rules.rules)}")
    lines = [rules.redact(line) for line in lines]
    fires = next_fires(rules, now, count)
    for name, rule in rules.rules.items():
        lines.extend(f"  {rules.redact(line)}" for line in rule_lines(name, rule))
        for index, trigger in enumerate(rule.when):
            if not isinstance(trigger, ScheduleTrigger):
                continue
            times = fires.get((name, index), [])
            schedule_zone = rules.schedules[(name, index)].tz
            if not times:
                lines.append("    next: never (no fire time ahead; check the window and dates)")
                continue
            shown = ", ".join(
                datetime.fromtimestamp(t, schedule_zone).strftime("%a %Y-%m-%d %H:%M:%S")
                for t in times
            )
            lines.append(f"    next: {shown}")
    return "\n".join(lines)
