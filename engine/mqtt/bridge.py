"""What the engine says on MQTT and what it hears back: the pure core of the MQTT adapter.

Input: engine events, a (re)connection, incoming messages. Output:
``Outgoing`` messages to publish and ``Command`` requests to perform. No
socket, no loop, no clock: ``engine.mqtt.client`` drives it, tests feed it.

Topics under the prefix (default ``cuecap/<instance>``)::

    availability                 online / offline (retained; offline is the last will)
    events/<kind>                every engine event, its JSON form
    recorders/<name>/state       recording / idle (retained)
    recorders/<name>/set         in: start, stop, enable, disable
    cameras/<name>/last_shot     the last shot.success, JSON plus ``iso`` (retained)
    cameras/<name>/image         the last shot's JPEG (retained; the driver reads the file)
    cameras/<name>/shot          in: any payload takes a shot

With Home Assistant discovery, each of these also gets an entity config
under ``<discovery prefix>/<component>/<node>/<object>/config``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.events import Event, RecordingStarted, RecordingStopped, ShotSaved
from engine.mqtt.config import HomeAssistant
from engine.mqtt.topics import join, level, matches

ONLINE = b"online"
OFFLINE = b"offline"
RECORDING = b"recording"
IDLE = b"idle"
RECORDER_ACTIONS = ("start", "stop", "enable", "disable")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to publish: ``payload``, or the bytes of ``file`` (read by the driver)."""

    topic: str
    payload: bytes = b""
    retain: bool = False
    qos: int = 0
    file: str | None = None


class CommandKind(enum.Enum):
    SHOT = "shot"
    RECORDER = "recorder"


@dataclass(frozen=True, slots=True)
class Command:
    """A control request that came over MQTT: take a shot, start/stop a recorder."""

    kind: CommandKind
    name: str  # the camera or recorder
    action: str = ""  # recorders: start, stop, enable, disable


class Bridge:
    """Translates events to messages and command topics to ``Command``\\ s."""

    def __init__(
        self,
        prefix: str,
        *,
        instance: str,
        qos: int = 1,
        events: bool = True,
        discovery: HomeAssistant | None = None,
        recorders: Iterable[str] = (),
        cameras: Iterable[str] = (),
    ) -> None:
        self.prefix = prefix
        self.instance = instance
        self.qos = qos
        self.events = events
        self.discovery = discovery
        self.recorders = list(recorders)
        self.cameras = list(cameras)
        self._states: dict[str, bytes] = {}
        self._announced: set[str] = set()  # discovery config topics published

    # -- topics -------------------------------------------------------------

    @property
    def availability(self) -> str:
        return join(self.prefix, "availability")

    def event_topic(self, kind: str) -> str:
        return join(self.prefix, "events", kind)

    def recorder_topic(self, name: str, leaf: str) -> str:
        return join(self.prefix, "recorders", level(name), leaf)

    def camera_topic(self, name: str, leaf: str) -> str:
        return join(self.prefix, "cameras", level(name), leaf)

    @property
    def command_filters(self) -> tuple[str, ...]:
        return (
            join(self.prefix, "recorders", "+", "set"),
            join(self.prefix, "cameras", "+", "shot"),
        )

    def will(self) -> Outgoing:
        """The last will: what the broker publishes when the engine vanishes."""
        return Outgoing(self.availability, OFFLINE, retain=True, qos=self.qos)

    # -- inputs -------------------------------------------------------------

    def on_connect(self, recording: Mapping[str, bool]) -> list[Outgoing]:
        """What a (re)connection publishes: online, discovery, each recorder's state."""
        out = [Outgoing(self.availability, ONLINE, retain=True, qos=self.qos)]
        out.extend(self.discovery_messages())
        for name in self.recorders:
            state = RECORDING if recording.get(name) else IDLE
            self._states[name] = state
            out.append(Outgoing(self.recorder_topic(name, "state"), state, True, self.qos))
        return out

    def closing(self) -> list[Outgoing]:
        """A clean stop says offline itself (a will is only sent when the link breaks)."""
        return [Outgoing(self.availability, OFFLINE, retain=True, qos=self.qos)]

    def on_event(self, event: Event) -> list[Outgoing]:
        out: list[Outgoing] = []
        if self.events:
            body = json.dumps(event.to_json(), separators=(",", ":")).encode()
            out.append(Outgoing(self.event_topic(event.kind.value), body, False, self.qos))
        if isinstance(event, RecordingStarted | RecordingStopped):
            state = RECORDING if isinstance(event, RecordingStarted) else IDLE
            if self._states.get(event.recorder) != state:
                self._states[event.recorder] = state
                topic = self.recorder_topic(event.recorder, "state")
                out.append(Outgoing(topic, state, True, self.qos))
        elif isinstance(event, ShotSaved) and event.path:
            moment = event.shot_time if event.shot_time is not None else event.time
            shot = {**event.to_json(), "iso": datetime.fromtimestamp(moment, UTC).isoformat()}
            body = json.dumps(shot, separators=(",", ":")).encode()
            out.append(Outgoing(self.camera_topic(event.camera, "last_shot"), body, True, self.qos))
            out.append(
                Outgoing(
                    self.camera_topic(event.camera, "image"),
                    retain=True,
                    qos=self.qos,
                    file=event.path,
                )
            )
        return out

    def command(self, topic: str, payload: bytes) -> Command | None:
        """The command a message on a command topic asks for (None: not a command, or bad)."""
        if not any(matches(topic, f) for f in self.command_filters):
            return None
        parts = topic.split("/")
        name, leaf = parts[-2], parts[-1]
        if leaf == "shot":
            camera = next((c for c in self.cameras if level(c) == name), None)
            return Command(CommandKind.SHOT, camera) if camera is not None else None
        recorder = next((r for r in self.recorders if level(r) == name), None)
        action = payload.decode("utf-8", errors="replace").strip().lower()
        if recorder is None or action not in RECORDER_ACTIONS:
            return None
        return Command(CommandKind.RECORDER, recorder, action)

    def is_command_topic(self, topic: str) -> bool:
        return any(matches(topic, f) for f in self.command_filters)

    def update(self, recorders: Iterable[str], cameras: Iterable[str]) -> list[Outgoing]:
        """Rules reloaded: new entities are announced, gone ones removed from Home Assistant."""
        self.recorders = list(recorders)
        self.cameras = list(cameras)
        return self.discovery_messages()

    # -- Home Assistant discovery --------------------------------------------

    def discovery_messages(self) -> list[Outgoing]:
        if self.discovery is None:
            return []
        configs = dict(self._discovery_configs())
        out = [
            Outgoing(topic, json.dumps(body, separators=(",", ":")).encode(), True, self.qos)
            for topic, body in configs.items()
        ]
        # An empty retained config removes an entity whose recorder or camera is gone.
        out.extend(Outgoing(t, b"", True, self.qos) for t in sorted(self._announced - set(configs)))
        self._announced = set(configs)
        return out

    def _discovery_configs(self) -> Iterable[tuple[str, dict[str, Any]]]:
        assert self.discovery is not None
        discovery_prefix = self.discovery.prefix
        node = level(f"cuecap_{self.instance}").replace(".", "_")
        device = {
            "identifiers": [node],
            "name": f"cuecap {self.instance}",
            "manufacturer": "cuecap",
        }

        def config(component: str, obj: str, **fields: Any) -> tuple[str, dict[str, Any]]:
            object_id = level(obj).replace(".", "_")
            body = {
                "unique_id": f"{node}_{object_id}",
                # Home Assistant 2025.10 replaced object_id with this (object_id is gone in 2026.4)
                "default_entity_id": f"{component}.{node}_{object_id}",
                "availability_topic": self.availability,
                "device": device,
                **fields,
            }
            return join(discovery_prefix, component, node, object_id, "config"), body

        for name in self.recorders:
            yield config(
                "binary_sensor", f"{name}_recording", name=f"{name} recording",
                state_topic=self.recorder_topic(name, "state"),
                payload_on=RECORDING.decode(), payload_off=IDLE.decode(),
            )  # fmt: skip
            for action in ("start", "stop"):
                yield config(
                    "button", f"{name}_{action}", name=f"{name} {action}",
                    command_topic=self.recorder_topic(name, "set"), payload_press=action,
                )  # fmt: skip
        for name in self.cameras:
            yield config(
                "sensor", f"{name}_last_shot", name=f"{name} last shot",
                state_topic=self.camera_topic(name, "last_shot"),
                value_template="{{ value_json.iso }}", device_class="timestamp",
                json_attributes_topic=self.camera_topic(name, "last_shot"),
            )  # fmt: skip
            yield config(
                "image", f"{name}_image", name=f"{name}",
                image_topic=self.camera_topic(name, "image"), content_type="image/jpeg",
            )  # fmt: skip
            yield config(
                "button", f"{name}_shot", name=f"{name} take shot",
                command_topic=self.camera_topic(name, "shot"), payload_press="PRESS",
            )  # fmt: skip
