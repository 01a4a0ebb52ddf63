"""The MQTT adapter: runs the ``Bridge`` against a broker in the engine's loop.

It never blocks the engine: events become messages in a bounded buffer
(``settings.mqtt.buffer``; when full the oldest is dropped and counted) that
one task drains while the broker is there. When the broker is away, the
client reconnects with exponential backoff and jitter, and on each
connection says ``online``, announces Home Assistant entities, republishes
each recorder's state and subscribes again. Incoming messages are bounded in
size (``max_payload``); command topics become shots and recorder control,
everything else goes to the rules' ``mqtt`` triggers.

A reload that changes ``settings.mqtt`` starts a new adapter with
``start(engine, replacing=old)``: at the instant the new one subscribes to the
engine's events, the old one stops taking them and hands over what it had not
published yet (``hand_over``), so no event is lost or published twice by the
engine; the old one then says ``offline`` to its broker and disconnects. A
message the old one was handing to its broker at that instant may reach both
brokers: delivery is at least once, as QoS 1 is.

aiomqtt's errors are translated here, once: the rest of cuecap sees
``MqttUnavailable`` at most, and the engine never sees one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt

from engine.core.secrets import read_secret
from engine.errors import CuecapError
from engine.events import Event, ReloadApplied
from engine.mqtt.bridge import Bridge, Command, CommandKind, Outgoing
from engine.mqtt.config import MqttSettings
from engine.mqtt.topics import topic_problem
from engine.sources.backoff import Backoff

if TYPE_CHECKING:
    from engine.runtime.engine import Engine

log = logging.getLogger("engine.mqtt")

MAX_IMAGE_BYTES = 16 * 1024 * 1024  # a retained shot larger than this is not published
CLOSE_TIMEOUT = 2.0  # seconds a stop waits to hand the last messages to the broker
MAX_INCOMING = 1000  # incoming messages waiting to be handled
MAX_CONTROLS = 100  # commands (shots, recorder control) running at once; more are refused
CONNECT_WAIT = 2.0  # seconds start() waits for its first connection try (first events in order)


class MqttUnavailable(CuecapError, ConnectionError):
    """The broker cannot be reached or refused us (the adapter retries; this says why)."""


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    if not settings.uses_tls:
        return None
    tls = settings.tls if not isinstance(settings.tls, bool) else None
    context = ssl.create_default_context(cafile=tls.ca if tls else None)
    if tls is not None and tls.cert:
        context.load_cert_chain(tls.cert, tls.key)
    if tls is not None and tls.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class MqttAdapter:
    """``Engine(rules, adapters=[MqttAdapter(rules.settings.mqtt)])``."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        env: Mapping[str, str] | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._env = os.environ if env is None else env
        self._draw = draw
        hostname = socket.gethostname()
        self.instance = settings.instance_name(hostname)
        self.prefix = settings.topic_prefix(hostname)
        self.client_id = settings.client_id or f"cuecap-{self.instance}"
        self.backoff = Backoff(
            settings.reconnect_initial, max(settings.reconnect_max, settings.reconnect_initial)
        )
        self._buffer: deque[Outgoing] = deque()
        self._wake = asyncio.Event()
        self.dropped = 0  # messages lost to a full buffer (broker away too long)
        self.too_big = 0  # incoming messages over max_payload, ignored
        self.published = 0
        self.received = 0
        self.connections = 0
        self.handed_over = 0  # messages given to the client that replaced this one
        self.connected = asyncio.Event()
        self._first_try = asyncio.Event()  # set once the first connection try is over
        self.last_error: str | None = None
        self._engine: Engine | None = None
        self._bridge: Bridge | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: aiomqtt.Client | None = None
        self._subscribed: set[str] = set()
        self._controls: set[asyncio.Task[Any]] = set()
        self._closing = False

    @property
    def env(self) -> Mapping[str, str]:
        """Where the secrets are read (a client built for new settings reads them there too)."""
        return self._env

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def bridge(self) -> Bridge:
        assert self._bridge is not None, "the adapter is not started"
        return self._bridge

    # -- the Adapter protocol ---------------------------------------------------

    async def start(self, engine: Engine, *, replacing: MqttAdapter | None = None) -> None:
        """Connect (waiting up to ``CONNECT_WAIT`` for the first try); ``replacing``: the
        client of the settings before a reload, whose unpublished messages this one takes."""
        self._engine = engine
        self._bridge = Bridge(
            self.prefix,
            instance=self.instance,
            qos=self.settings.qos,
            events=self.settings.events,
            discovery=self.settings.discovery,
            recorders=engine.rules.recorders,
            cameras=engine.rules.cameras,
        )
        if replacing is not None:  # no await between: no event falls between the two
            replacing.hand_over(self)
        self._unsubscribe = engine.subscribe(self._on_event)
        engine.actions.mqtt = self
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt client")
        # A broker that is there gets the engine's first events in order; one that is
        # not (the first try failed) costs no wait: events queue until it comes.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_WAIT):
                await self._first_try.wait()

    def hand_over(self, successor: MqttAdapter) -> int:
        """Take no more events; what is not published yet goes to ``successor``. Returns how many.

        The successor's buffer bound holds (the oldest beyond it are dropped, counted).
        """
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        moved = list(self._buffer)
        self._buffer.clear()
        for message in moved:
            successor._enqueue(message)
        self.handed_over = len(moved)
        return len(moved)

    async def aclose(self) -> None:
        """Publish what is buffered and ``offline`` (up to ``CLOSE_TIMEOUT``), then disconnect.

        From here on, incoming messages fire nothing: after a reload the new client
        has subscribed already, and at a stop the rules take no more.
        """
        self._closing = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._engine is not None and getattr(self._engine.actions, "mqtt", None) is self:
            self._engine.actions.mqtt = None
        for control in list(self._controls):
            control.cancel()
        if self._bridge is not None:
            for message in self._bridge.closing():
                self._enqueue(message)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    while self._buffer and self.connected.is_set():
                        self._wake.set()
                        await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        lost = self.dropped + len(self._buffer)
        level = logging.WARNING if lost else logging.INFO
        log.log(level, "mqtt: %d messages published, %d received, %d lost while the broker "
                "was away", self.published, self.received, lost)  # fmt: skip

    # -- out --------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        """Called on the loop thread for every event: queue, never wait."""
        for message in self.bridge.on_event(event):
            self._enqueue(message)
        if isinstance(event, ReloadApplied) and self._engine is not None:
            rules = self._engine.rules
            for message in self.bridge.update(rules.recorders, rules.cameras):
                self._enqueue(message)
            self._wake.set()  # the sender also brings subscriptions up to date

    def _enqueue(self, message: Outgoing) -> None:
        if len(self._buffer) >= self.settings.buffer:
            self._buffer.popleft()
            self.dropped += 1
            if str(self.dropped).rstrip("0") == "1":  # 1, 10, 100...: said, not every time
                log.warning("mqtt: broker away, %d messages dropped so far", self.dropped)
        self._buffer.append(message)
        self._wake.set()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> None:
        """Queue a message (the ``publish`` action); sent when the broker is there.

        A topic no broker would take (a filled-in field made it empty, too long, or
        brought a wildcard) is refused here, with a warning, and never queued.
        """
        problem = topic_problem(topic)
        if problem:
            log.warning("mqtt: not published: %s", problem)
            return
        self._enqueue(Outgoing(topic, payload, retain, qos))

    # -- the connection -------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
                attempt = 0
            except asyncio.CancelledError:
                raise
            except (aiomqtt.MqttError, OSError, MqttUnavailable) as exc:
                self.last_error = str(exc)
                if attempt == 0 or str(attempt).rstrip("0") == "1":
                    log.warning("mqtt: %s:%s: %s; retrying", self.settings.host,
                                self.settings.port, exc)  # fmt: skip
            except Exception:
                log.exception("mqtt: the client failed; retrying")
            finally:
                self.connected.clear()
                self._client = None
                self._first_try.set()
            delay = self.backoff.delay(attempt, self._draw())
            attempt += 1
            await asyncio.sleep(delay)

    def _client_options(self) -> dict[str, Any]:
        s = self.settings
        try:
            username = read_secret(s.username_env, self._env) if s.username_env else None
            password = read_secret(s.password_env, self._env) if s.password_env else None
        except CuecapError as exc:
            raise MqttUnavailable(str(exc)) from None
        will = self.bridge.will()
        return {
            "hostname": s.host,
            "port": s.port,
            "username": username,
            "password": password,
            "identifier": self.client_id,
            "keepalive": s.keepalive,
            "will": aiomqtt.Will(will.topic, will.payload, will.qos, will.retain),
            "tls_context": tls_context(s),
            "timeout": 10.0,
            # Messages read but not yet handled: beyond this, aiomqtt drops (and logs) them.
            "max_queued_incoming_messages": MAX_INCOMING,
        }

    async def _session(self) -> None:
        assert self._engine is not None
        async with aiomqtt.Client(**self._client_options()) as client:
            self._client = client
            self._subscribed = set()
            self.connections += 1
            recording = {n: bool(getattr(r, "recording", False))
                         for n, r in self._engine.recorders.items()}  # fmt: skip
            # The connection's own messages go first: online before any event.
            for message in reversed(self.bridge.on_connect(recording)):
                self._buffer.appendleft(message)
            await self._sync_subscriptions(client)
            self.connected.set()
            self._first_try.set()
            log.info("mqtt: connected to %s:%s as %s", self.settings.host, self.settings.port,
                     self.client_id)  # fmt: skip
            receiver = asyncio.get_running_loop().create_task(self._receive(client))
            try:
                await self._send(client, receiver)
            finally:
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await receiver

    def _wanted_filters(self) -> set[str]:
        assert self._engine is not None
        return {*self.bridge.command_filters, *self._engine.core.rulebook.mqtt_filters}

    async def _sync_subscriptions(self, client: aiomqtt.Client) -> None:
        wanted = self._wanted_filters()
        for topic_filter in sorted(self._subscribed - wanted):
            await client.unsubscribe(topic_filter)
        for topic_filter in sorted(wanted - self._subscribed):
            await client.subscribe(topic_filter, qos=1)
        self._subscribed = wanted

    async def _send(self, client: aiomqtt.Client, receiver: asyncio.Task[None]) -> None:
        while True:
            if receiver.done():
                receiver.result()  # the link broke: raise its error
                raise MqttUnavailable("connection lost")
            if self._wanted_filters() != self._subscribed:
                await self._sync_subscriptions(client)
            while self._buffer:
                message = self._buffer[0]
                payload = message.payload
                if message.file is not None:
                    image = await asyncio.to_thread(_read_image, message.file)
                    if image is None:
                        self._take(message)
                        continue
                    payload = image
                try:
                    await client.publish(
                        message.topic, payload, qos=message.qos, retain=message.retain
                    )
                except ValueError as exc:  # paho refuses it (no broker would take it): drop it
                    log.warning("mqtt: %s not published: %s", message.topic[:200], exc)
                    self._take(message)
                    continue
                # Taken off only once handed over: a broken link keeps it for the next one.
                self._take(message)
                self.published += 1
            self._wake.clear()
            waiter = asyncio.get_running_loop().create_task(self._wake.wait())
            await asyncio.wait((waiter, receiver), return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()

    def _take(self, message: Outgoing) -> None:
        """Off the buffer, unless a full buffer already dropped it while we awaited."""
        if self._buffer and self._buffer[0] is message:
            self._buffer.popleft()

    # -- in -----------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if isinstance(payload, str):
                data = payload.encode()
            elif isinstance(payload, bytes | bytearray):
                data = bytes(payload)
            elif payload is None:
                data = b""
            else:
                data = str(payload).encode()
            self.received += 1
            if len(data) > self.settings.max_payload:
                self.too_big += 1
                log.warning("mqtt: message on %s has %d bytes (max_payload %d); ignored",
                            message.topic.value, len(data), self.settings.max_payload)  # fmt: skip
                continue
            self.handle(message.topic.value, data)

    def handle(self, topic: str, payload: bytes) -> None:
        """An incoming message: a command, else the rules' mqtt triggers."""
        engine = self._engine
        if engine is None or self._closing:
            return
        if self.bridge.is_command_topic(topic):
            command = self.bridge.command(topic, payload)
            if command is None:
                log.warning("mqtt: %s: not a command for a known camera or recorder", topic)
                return
            if len(self._controls) >= MAX_CONTROLS:
                log.warning("mqtt: %d commands still running; %s refused", MAX_CONTROLS, topic)
                return
            task = asyncio.get_running_loop().create_task(self._control(command))
            self._controls.add(task)
            task.add_done_callback(self._controls.discard)
            return
        engine.on_mqtt(topic, payload)

    async def _control(self, command: Command) -> None:
        engine = self._engine
        assert engine is not None
        try:
            if command.kind is CommandKind.SHOT:
                if engine.shots is None:
                    log.warning("mqtt: no shot service runs; shot from %s not taken", command.name)
                    return
                engine.shots.submit(command.name, fields={"rule": "mqtt", "event": "mqtt"})
                return
            recorder = engine.recorders.get(command.name)
            if recorder is None:
                return
            if command.action == "start":
                await recorder.start("mqtt")
            elif command.action == "stop":
                await recorder.stop("mqtt")
            elif command.action == "enable":
                recorder.enable()
            else:
                recorder.disable()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("mqtt: %s %s %s failed: %s", command.kind.value, command.name,
                        command.action, exc)  # fmt: skip


def _read_image(path: str) -> bytes | None:
    try:
        file = Path(path)
        if file.stat().st_size > MAX_IMAGE_BYTES:
            log.warning("mqtt: %s is over %d bytes; its image is not published", path,
                        MAX_IMAGE_BYTES)  # fmt: skip
            return None
        return file.read_bytes()
    except OSError as exc:
        log.warning("mqtt: cannot read shot %s: %s", path, exc.strerror or exc)
        return None
