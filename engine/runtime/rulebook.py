"""Which rules a frame, an engine event or a schedule fires: the pure decision core.

The live engine and ``cuecap replay`` both feed frames, events and schedule
fires through a ``Rulebook`` and get back ``Firing`` records; only what they
then do with them differs (run the actions, or report them). That is why a
replay reports the firings a live run made.

Frames are routed by message type first, read off the first byte without
decoding, so a rule about ``electrode_state`` never decodes a camera frame;
the CEL condition runs only on frames of the types it can match.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from engine.core.condition import Condition
from engine.core.frame import Frame
from engine.events import Event
from engine.mqtt.topics import matches
from engine.rules.model import EventTrigger, MessageTrigger, MqttTrigger, Rule, ScheduleTrigger
from engine.runtime.policy import FiringPolicy

TriggerKey = tuple[str, int]  # (rule name, index of the trigger in its ``when``)
_Candidate = tuple[str, int, "str | None", "Condition | None"]
TRACE_CHARS = 300  # of a condition's inputs in a firing's description


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule fired: which, when (engine clock), by what, with the facts for its actions."""

    rule: str
    time: float
    trigger: str  # "schedule", "message", "event", "mqtt", or "manual" (Engine.control)
    index: int
    event: str  # the message type, the engine event's name, "schedule", or the MQTT topic
    source: str = ""
    count: int = 0  # this rule's firings so far, this one included
    facts: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.trigger == "message":
            text = f"{self.event} from {self.source} (seq {self.facts.get('seq', '?')})"
            inputs = self.facts.get("inputs")
            if inputs:
                shown = json.dumps(inputs, separators=(", ", ": "), default=str)
                text += " where " + (
                    shown if len(shown) <= TRACE_CHARS else shown[:TRACE_CHARS] + "…"
                )
            return text
        if self.trigger == "event":
            subject = self.facts.get("recorder") or self.facts.get("camera") or self.source
            return f"{self.event} {subject}".rstrip()
        if self.trigger == "mqtt":
            return f"mqtt {self.event}"
        if self.trigger == "manual":
            return str(self.facts.get("by") or "fired by hand")
        return "schedule"


def _matches_event(trigger: EventTrigger, event: Event) -> bool:
    data = event.data
    for key in ("recorder", "camera", "source", "rule", "target"):
        wanted = getattr(trigger, key)
        if wanted is not None and data.get(key) != wanted:
            return False
    return True


class Rulebook:
    """Routes frames and events to the rules they fire; keeps each rule's firing policy."""

    def __init__(
        self,
        rules: Mapping[str, Rule],
        default_source: str | None = None,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        """``on_problem`` hears of a rule's condition disabled for running over its budget."""
        self.rules = {name: rule for name, rule in rules.items() if rule.enabled}
        self.policies: dict[str, FiringPolicy] = {
            name: FiringPolicy(rule.mode, rule.max, rule.cooldown)
            for name, rule in self.rules.items()
        }
        # (rule, trigger index, source or None, condition or None): read once here, as
        # the trigger's condition is a property of a pydantic model, dear per frame.
        self._by_kind: dict[str, list[_Candidate]] = {}
        self._any_kind: list[_Candidate] = []
        self._by_event: dict[str, list[tuple[str, int, EventTrigger]]] = {}
        self.schedules: list[TriggerKey] = []
        self._mqtt: list[tuple[str, int, MqttTrigger]] = []
        for name, rule in self.rules.items():
            for i, trigger in enumerate(rule.when):
                if isinstance(trigger, MessageTrigger):
                    condition = trigger.condition
                    if condition is not None and on_problem is not None:
                        condition.on_disabled = partial(_tell, on_problem, name)
                    kinds = trigger.kinds
                    candidate = (name, i, trigger.source, condition)
                    if kinds is None:
                        self._any_kind.append(candidate)
                    else:
                        for kind in kinds:
                            self._by_kind.setdefault(kind, []).append(candidate)
                elif isinstance(trigger, EventTrigger):
                    self._by_event.setdefault(trigger.event, []).append((name, i, trigger))
                elif isinstance(trigger, ScheduleTrigger):
                    self.schedules.append((name, i))
                elif isinstance(trigger, MqttTrigger):
                    self._mqtt.append((name, i, trigger))
        self.default_source = default_source
        # Kinds some rule may fire on: a dispatcher skips every other frame at once.
        self.kinds: frozenset[str] | None = None if self._any_kind else frozenset(self._by_kind)
        # Topic filters the MQTT client subscribes to, in rule order, each once.
        self.mqtt_filters: tuple[str, ...] = tuple(dict.fromkeys(t.topic for _, _, t in self._mqtt))

    def carry_over(self, old: Rulebook) -> None:
        """Keep cooldowns and counts of rules that a reload left unchanged."""
        for name in list(self.policies):
            before = old.policies.get(name)
            if before is not None and old.rules.get(name) == self.rules.get(name):
                self.policies[name] = before

    def _accept(self, name: str, index: int, time: float, trigger: str, event: str,
                source: str, facts: Mapping[str, Any]) -> Firing | None:  # fmt: skip
        policy = self.policies[name]
        if not policy.accepts(time):
            return None
        return Firing(name, time, trigger, index, event, source, policy.fired, facts)

    def on_frame(self, frame: Frame) -> list[Firing]:
        kind = frame.kind
        if kind is None:
            return []
        candidates: Iterable[_Candidate] = self._by_kind.get(kind, ())
        if self._any_kind:
            candidates = [*candidates, *self._any_kind]
        out: list[Firing] = []
        fired: set[str] = set()
        for name, index, source, condition in candidates:
            if name in fired:
                continue  # two triggers of one rule on one frame fire it once
            if source is not None and source != frame.source:
                continue
            if condition is not None and not condition.evaluate(frame):
                continue
            facts: dict[str, Any] = {"seq": frame.seq, "source": frame.source}
            firing = self._accept(name, index, frame.time, "message", kind, frame.source, facts)
            fired.add(name)
            if firing is not None:
                if condition is not None:  # the trace, for firings only: what made it true
                    facts["inputs"] = condition.inputs(frame)
                out.append(firing)
        return out

    def on_event(self, event: Event) -> list[Firing]:
        out: list[Firing] = []
        fired: set[str] = set()
        for name, index, trigger in self._by_event.get(event.name, ()):
            if name in fired or not _matches_event(trigger, event):
                continue
            fired.add(name)
            facts = event.data
            source = str(facts.get("source") or "")
            firing = self._accept(name, index, event.time, "event", event.name, source, facts)
            if firing is not None:
                out.append(firing)
        return out

    def on_schedule(self, name: str, index: int, time: float) -> Firing | None:
        if name not in self.policies:
            return None
        return self._accept(name, index, time, "schedule", "schedule", "", {})

    def on_mqtt(self, topic: str, payload: bytes, time: float) -> list[Firing]:
        """The rules an MQTT message fires: topic filter first, then the CEL condition.

        Conditions see ``payload`` (the JSON if the text parses as JSON, else the
        text), ``topic`` and ``text``; templates get ``{topic}`` and ``{payload}``
        (the text).
        """
        candidates = [c for c in self._mqtt if matches(topic, c[2].topic)]
        if not candidates:
            return []
        text = payload.decode("utf-8", errors="replace")
        variables: dict[str, Any] | None = None
        out: list[Firing] = []
        fired: set[str] = set()
        for name, index, trigger in candidates:
            if name in fired:
                continue
            condition = trigger.condition
            if condition is not None:
                if variables is None:
                    variables = {"payload": _decoded(text), "topic": topic, "text": text}
                if not condition.evaluate(variables):
                    continue
            fired.add(name)
            facts = {"topic": topic, "payload": text}
            firing = self._accept(name, index, time, "mqtt", topic, "", facts)
            if firing is not None:
                out.append(firing)
        return out


def _decoded(text: str) -> Any:
    """The JSON a payload holds, or its text when it is not JSON (``ON``, ``42`` stays 42)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
        return text


def _tell(on_problem: Callable[[str], None], rule: str, message: str) -> None:
    on_problem(f"rule {rule}: {message}")
