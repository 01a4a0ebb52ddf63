"""Shots bounded site-wide: a work queue per camera, tries handed out one at a time.

A rule's shot becomes a request on the camera's subject of the site's shot
stream. The camera's durable consumer has ``max_ack_pending`` = the camera's
``max_in_flight``: however many engines pull, the server hands out no more
tries at once than that. A try runs on the local shot service (one try per
delivery, its own retries off); a failed try is nak'ed with the saver's
backoff delay so the next try may run on any engine, and after the camera's
last try the shot is final. A camera's ``min_interval`` holds site-wide through
the time of its last start in a KV bucket, taken with compare-and-set.

The asking engine hears the statuses (``in_queue``, ``saving`` per try, one
``success`` or ``error``) on a subject of its own, in order, and exactly one
final; the final status is also kept in a KV bucket, so an engine that asks
again for the same shot (a firing redelivered after its engine died) neither
takes it twice nor waits forever. Ids are deterministic for schedule
firings: ``rule@instant-N-camera``, so the duplicate window drops a second
request of a redelivered firing.

The engine that finishes a shot emits its ``shot.success``/``shot.error``
event (its rules react, once per site) and publishes it with the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg

from engine.cluster.link import Link
from engine.cluster.names import token
from engine.cluster.payload import loads
from engine.events import Event, ShotErrored, ShotSaved
from engine.shots.policy import RetryPolicy
from engine.shots.service import ShotService, new_guid, to_epoch
from engine.shots.status import ShotStatus, StatusUpdate, Throttled, UnknownCamera

log = logging.getLogger("engine.cluster")

StatusCallback = Callable[[str, Any], Any]
FINAL_PATIENCE = 60.0  # seconds a finished shot waits for the server to record its end


@dataclass
class FiringScope:
    """The schedule firing whose actions run now: shot ids derive from it."""

    firing_id: str
    shots: int = 0


current_firing: contextvars.ContextVar[FiringScope | None] = contextvars.ContextVar(
    "cuecap_cluster_firing", default=None
)


@dataclass
class ShotStats:
    requested: int = 0
    duplicates: int = 0  # requests the site had already (a redelivered firing asking again)
    unavailable: int = 0  # refused: the server was away
    tries: int = 0  # tries run here
    succeeded: int = 0  # finished here
    failed: int = 0
    throttled: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    lost_status: int = 0  # asked here, no final status within the bound
    stale: int = 0  # deliveries another engine held the lease of (not tried)
    finals: dict[str, str] = field(default_factory=dict)


def _update(state: ShotStatus, guid: str, camera: str, *, tries: int = 0, reason: str = "",
            path: str | None = None, now: float = 0.0) -> StatusUpdate:  # fmt: skip
    return StatusUpdate(
        state,
        task=guid,
        camera=camera,
        path=Path(path) if path else None,
        try_number=tries,
        reason=reason,
        time=now,
    )


class ClusterShots:
    """Stands in for the engine's shot service: the same ``submit``, served by the site."""

    def __init__(
        self,
        link: Link,
        cameras: Mapping[str, Any],
        local: ShotService,
        *,
        emit: Callable[[Event], None],
        now: Callable[[], float],
        retry: RetryPolicy,
        max_tries: int,
        timeout: float,
        pool_size: int,
    ) -> None:
        self.link = link
        self.cameras = dict(cameras)
        self.local = local
        self.emit = emit
        self.now = now
        self.retry = retry
        self.max_tries = max_tries
        self.timeout = timeout
        self.pool_size = pool_size
        self.stats = ShotStats()
        self._callbacks: dict[str, _Tracker] = {}
        self._asks: set[asyncio.Task[Any]] = set()  # waiting for the statuses of shots asked here
        self._tasks: set[asyncio.Task[Any]] = set()  # tries running here
        self._loops: list[asyncio.Task[None]] = []
        self._status_sub: Any = None
        self._stopping = False
        self._inbox = f"{link.names.shot_status(link.engine_name)}"

    # -- asking ------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._asks.add(task)
        task.add_done_callback(self._asks.discard)

    def tries_of(self, camera: str) -> int:
        config = self.cameras[camera]
        return int(getattr(config, "tries", None) or self.max_tries)

    def submit(
        self,
        camera: str,
        *,
        dt: Any = None,
        file_name: str | None = None,
        folder: str | None = None,
        fields: Mapping[str, Any] | None = None,
        callback: StatusCallback | None = None,
        task_guid: str | None = None,
        **_: Any,
    ) -> tuple[str, Path | None]:
        """Queue a shot on the site; returns ``(task_guid, None)``: the taker picks the path."""
        if camera not in self.cameras:
            known = ", ".join(sorted(self.cameras)) or "none configured"
            raise UnknownCamera(f"no camera named {camera!r} (known: {known})")
        scope = current_firing.get()
        if task_guid is None:
            if scope is not None:
                task_guid = f"{scope.firing_id}-{scope.shots}-{camera}"
                scope.shots += 1
            else:
                task_guid = new_guid()
        guid = task_guid
        request = {
            "guid": guid,
            "camera": camera,
            "dt": to_epoch(dt),
            "file_name": file_name,
            "folder": folder,
            "fields": {k: v for k, v in (fields or {}).items() if isinstance(v, str | int | float)},
            "reply": self._inbox,
            "asked": self.now(),
        }
        tracker = _Tracker(guid, camera, callback)
        self._callbacks[guid] = tracker
        self.stats.requested += 1
        self._spawn(self._ask(tracker, request))
        return guid, None

    async def _ask(self, tracker: _Tracker, request: dict[str, Any]) -> None:
        names = self.link.names
        guid, camera = tracker.guid, tracker.camera
        if not self.link.connected.is_set():
            self.stats.unavailable += 1
            tracker.final(_update(ShotStatus.error, guid, camera, reason="cluster server away",
                                  now=self.now()))  # fmt: skip
            self._callbacks.pop(guid, None)
            return
        try:
            ack = await self.link.js.publish(
                names.shot_subject(camera),
                json.dumps(request).encode(),
                headers={"Nats-Msg-Id": guid},
                timeout=2.0,
            )
        except (nats.errors.Error, OSError) as exc:
            self.stats.unavailable += 1
            tracker.final(_update(ShotStatus.error, guid, camera,
                                  reason=f"cluster refused the shot: {exc}", now=self.now()))  # fmt: skip
            self._callbacks.pop(guid, None)
            return
        tracker.tell(_update(ShotStatus.in_queue, guid, camera, now=self.now()))
        # Bounded: every try with its timeout and the longest backoff, and slack for queues.
        tries = self.tries_of(camera)
        bound = tries * (self.timeout + self.retry.cap) + 4 * self.link.config.ack_wait + 30
        if ack.duplicate:
            self.stats.duplicates += 1
        try:
            async with asyncio.timeout(bound):
                while not tracker.done:
                    # Asked before (or the status went elsewhere): the site's record says.
                    stored = await self._stored_final(guid)
                    if stored is not None:
                        tracker.final(stored)
                        break
                    await tracker.wait(1.0 if ack.duplicate else 5.0)
        except TimeoutError:
            self.stats.lost_status += 1
            tracker.final(_update(ShotStatus.error, guid, camera,
                                  reason="no final status from the cluster", now=self.now()))  # fmt: skip
        finally:
            self._callbacks.pop(guid, None)

    async def _stored_final(self, guid: str) -> StatusUpdate | None:
        kv = self.link.shot_state
        assert kv is not None
        with contextlib.suppress(nats.js.errors.KeyNotFoundError, nats.errors.Error):
            entry = await kv.get(token(guid))
            record = loads(entry.value)
            if record.get("state") in ("success", "error"):
                return _status_from(record, self.now())
        return None

    async def _status_in(self, msg: Msg) -> None:
        try:
            record = loads(msg.data)
            tracker = self._callbacks.get(str(record["guid"]))
        except (ValueError, KeyError, TypeError):
            return
        if tracker is None:
            return
        update = _status_from(record, self.now())
        if update.final:
            tracker.final(update)
        else:
            tracker.tell(update)

    # -- taking ------------------------------------------------------------------------

    async def start(self) -> None:
        assert self.link.nc is not None
        self._status_sub = await self.link.nc.subscribe(self._inbox, cb=self._status_in)
        for camera in self.cameras:
            await self._consume(camera)

    def limit(self, camera: str) -> int:
        return int(getattr(self.cameras[camera], "max_in_flight", None) or self.pool_size)

    async def _consume(self, camera: str) -> None:
        names = self.link.names
        durable = names.shot_consumer(camera)
        await self.link.work_queue(
            names.shot_stream,
            durable,
            names.shot_subject(camera),
            in_flight=self.limit(camera),
            max_deliver=-1,  # tries are counted here, not by deliveries
        )
        sub = await self.link.js.pull_subscribe_bind(durable=durable, stream=names.shot_stream)
        self._loops.append(
            asyncio.get_running_loop().create_task(self._loop(camera, sub), name=f"shots {camera}")
        )

    async def _loop(self, camera: str, sub: Any) -> None:
        running: set[asyncio.Task[None]] = set()
        limit = self.limit(camera)
        while not self._stopping:
            if len(running) >= min(limit, self.pool_size):
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                messages: list[Msg] = await sub.fetch(1, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("shots %s: fetch failed (%s)", camera, exc)
                await asyncio.sleep(0.25)
                continue
            for msg in messages:
                task = asyncio.get_running_loop().create_task(self._take_safely(camera, msg))
                running.add(task)
                task.add_done_callback(running.discard)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _take_safely(self, camera: str, msg: Msg) -> None:
        try:
            await self._take(camera, msg)
        except (nats.errors.Error, OSError) as exc:
            # The server went away mid-way: the shot comes back after ack_wait, its
            # record (and lease) says where it stood.
            log.debug("shots %s: a try was interrupted (%s)", camera, exc)

    async def _take(self, camera: str, msg: Msg) -> None:
        try:
            request = loads(msg.data)
            guid = str(request["guid"])
        except (ValueError, KeyError, TypeError):
            await msg.term()
            return
        kv = self.link.shot_state
        assert kv is not None
        key = token(guid)
        record, revision = await _record(kv, key)
        if record.get("state") in ("success", "error"):
            await self._tell(request, record)  # done before: say so again, do not redo
            await msg.ack()
            return
        now = self.now()
        holder, until = record.get("engine"), record.get("until", 0.0)
        if (
            holder not in (None, self.link.engine_name)
            and isinstance(until, int | float)
            and (until > now)
        ):
            # Another engine holds this shot's lease: this delivery is stale (it sat in the
            # fetch queue past ack_wait and was handed out again). Left unacked, not retried.
            self.stats.stale += 1
            return
        tries = int(record.get("tries", 0)) + 1
        saving = {"guid": guid, "camera": camera, "state": "saving", "tries": tries,
                  "reason": str(record.get("reason", "")), "engine": self.link.engine_name,
                  "until": now + self.link.config.ack_wait}  # fmt: skip
        try:
            if revision is None:
                revision = await kv.create(key, json.dumps(saving).encode())
            else:
                revision = await kv.update(key, json.dumps(saving).encode(), last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            self.stats.stale += 1  # another engine took the lease a moment ago
            return
        wait = await self._interval(camera)
        if wait is not None:
            saving.update(tries=tries - 1, until=0.0)  # the lease goes back; no try was made
            with contextlib.suppress(nats.errors.Error):
                revision = await kv.put(key, json.dumps(saving).encode())
            if wait < 0:  # throttle: skip
                self.stats.throttled += 1
                record = {"guid": guid, "camera": camera, "state": "error", "tries": 0,
                          "reason": str(Throttled(f"camera {camera!r}: inside min_interval"))}  # fmt: skip
                await self._finish(msg, request, record, revision)
                return
            await msg.nak(delay=wait)
            return
        await self._tell(request, saving)
        beat = asyncio.get_running_loop().create_task(self._beat(msg, key, saving))
        self.stats.tries += 1
        self.stats.in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
        try:
            update = await self.local.shoot(
                camera,
                dt=request.get("dt"),
                file_name=request.get("file_name"),
                folder=request.get("folder"),
                fields=request.get("fields") or {},
                task_guid=guid,  # one try at a time per shot: the id is free again
            )
        except asyncio.CancelledError:
            beat.cancel()
            self.stats.in_flight -= 1
            with contextlib.suppress(Exception):
                await msg.nak()  # stopping: another engine tries
            raise
        except Exception as exc:
            update = _update(ShotStatus.error, guid, camera, tries=tries, reason=str(exc))
        finally:
            beat.cancel()
        self.stats.in_flight -= 1
        ok = update.status is ShotStatus.success
        if not ok and tries < self.tries_of(camera):
            delay = self.retry.delay(tries, random.random())
            saving.update(reason=update.reason, until=0.0)  # the lease goes back with the nak
            with contextlib.suppress(nats.errors.Error):
                await kv.put(key, json.dumps(saving).encode())
            await msg.nak(delay=delay)
            return
        final = {
            "guid": guid,
            "camera": camera,
            "state": "success" if ok else "error",
            "tries": tries,
            "reason": update.reason,
            "path": str(update.path) if update.path is not None else None,
            "engine": self.link.engine_name,
        }
        await self._finish(msg, request, final, revision)

    async def _finish(self, msg: Msg, request: Mapping[str, Any], record: dict[str, Any],
                      revision: int | None) -> None:  # fmt: skip
        kv = self.link.shot_state
        assert kv is not None
        # The final record is what stops a redelivery from taking the shot again: it must
        # reach the server, also when the server is away right now (it comes back soon,
        # or the engines have bigger trouble: then the shot may be taken twice, said here).
        value = json.dumps(record).encode()
        deadline = self.now() + FINAL_PATIENCE
        while True:
            try:
                await kv.put(token(record["guid"]), value)
                break
            except (nats.errors.Error, OSError) as exc:
                if self.now() > deadline:
                    log.error("shot %s: its final status could not be recorded (%s); another "
                              "engine may take it again", record["guid"], exc)  # fmt: skip
                    break
                await asyncio.sleep(0.2)
        with contextlib.suppress(nats.errors.Error):
            await msg.ack()
        await self._tell(request, record)
        ok = record["state"] == "success"
        if ok:
            self.stats.succeeded += 1
        else:
            self.stats.failed += 1
        fields = dict(request.get("fields") or {})
        now = self.now()
        event: Event
        if ok:
            event = ShotSaved(time=now, camera=record["camera"], task=record["guid"],
                              path=record.get("path"), extra=fields, tries=record["tries"],
                              shot_time=request.get("dt"))  # fmt: skip
        else:
            event = ShotErrored(time=now, camera=record["camera"], task=record["guid"],
                                extra=fields, reason=record.get("reason", ""),
                                tries=record["tries"], shot_time=request.get("dt"))  # fmt: skip
        try:
            self.emit(event)
        except Exception:
            log.exception("emitting the event of shot %s failed", record["guid"])

    async def _tell(self, request: Mapping[str, Any], record: Mapping[str, Any]) -> None:
        assert self.link.nc is not None
        reply = request.get("reply")
        if isinstance(reply, str):
            with contextlib.suppress(nats.errors.Error):
                await self.link.nc.publish(reply, json.dumps(record).encode())

    async def _interval(self, camera: str) -> float | None:
        """None: may start now (the start is recorded); >0: wait that long; <0: skip it."""
        config = self.cameras[camera]
        interval = float(getattr(config, "min_interval", 0.0) or 0.0)
        if interval <= 0:
            return None
        kv = self.link.rule_state
        assert kv is not None
        key = f"camera.{token(camera)}"
        for _ in range(10):
            record, revision = await _record(kv, key)
            now = self.now()
            last = record.get("last_start")
            if isinstance(last, int | float) and now - last < interval:
                if getattr(config, "throttle", "skip") == "skip":
                    return -1.0
                return interval - (now - last)
            value = json.dumps({"last_start": now}).encode()
            try:
                if revision is None:
                    await kv.create(key, value)
                else:
                    await kv.update(key, value, last=revision)
                return None
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
        return 0.05

    async def _beat(self, msg: Msg, key: str, lease: dict[str, Any]) -> None:
        """Keep the shot ours while its try runs: the server's ack timer and the KV lease."""
        kv = self.link.shot_state
        assert kv is not None
        every = max(0.1, self.link.config.ack_wait / 3)
        while True:
            await asyncio.sleep(every)
            lease["until"] = self.now() + self.link.config.ack_wait
            with contextlib.suppress(Exception):
                await msg.in_progress()
                await kv.put(key, json.dumps(lease).encode())

    def stop_taking(self) -> None:
        """Take no more tries (the engine is stopping); running ones go on."""
        self._stopping = True
        for task in self._loops:
            task.cancel()

    async def stop(self, timeout: float) -> None:
        """Tries running here finish (up to ``timeout``); waits for shots asked here end.

        A shot asked here and not finished stays in the site's queue for the
        other engines; the rule run that waited for it has ended already.
        """
        self.stop_taking()
        for task in self._asks:
            task.cancel()
        await asyncio.gather(*self._asks, return_exceptions=True)
        await asyncio.gather(*self._loops, return_exceptions=True)
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._status_sub is not None:
            with contextlib.suppress(Exception):
                await self._status_sub.unsubscribe()


class _Tracker:
    """One asked shot's statuses to its callback: in order, exactly one final."""

    def __init__(self, guid: str, camera: str, callback: StatusCallback | None) -> None:
        self.guid = guid
        self.camera = camera
        self.callback = callback
        self.done = False
        self._told: set[tuple[str, int]] = set()
        self._changed = asyncio.Event()

    def tell(self, update: StatusUpdate) -> None:
        key = (str(update), update.try_number if update.status is ShotStatus.saving else 0)
        if self.done or key in self._told:
            return
        if not self._told and update.status is not ShotStatus.in_queue:
            # A try's status overtook the queue's acknowledgement: in_queue still comes first.
            self.tell(_update(ShotStatus.in_queue, self.guid, self.camera, now=update.time))
        self._told.add(key)
        self._call(update)

    def final(self, update: StatusUpdate) -> None:
        if self.done:
            return
        if not self._told and update.try_number > 0:
            self.tell(_update(ShotStatus.in_queue, self.guid, self.camera, now=update.time))
        self.done = True
        self._call(update)
        self._changed.set()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()

    def _call(self, update: StatusUpdate) -> None:
        if self.callback is None:
            return
        try:
            self.callback(self.guid, update)
        except Exception:
            log.exception("shot callback for %s raised", self.guid)


def _status_from(record: Mapping[str, Any], now: float) -> StatusUpdate:
    state = ShotStatus(str(record.get("state", "error")))
    return _update(state, str(record.get("guid", "")), str(record.get("camera", "")),
                   tries=int(record.get("tries", 0)), reason=str(record.get("reason", "")),
                   path=record.get("path"), now=now)  # fmt: skip


async def _record(kv: Any, key: str) -> tuple[dict[str, Any], int | None]:
    try:
        entry = await kv.get(key)
    except nats.js.errors.KeyNotFoundError:
        return {}, None
    try:
        value = loads(entry.value)
    except ValueError:
        value = {}
    return (value if isinstance(value, dict) else {}), entry.revision
