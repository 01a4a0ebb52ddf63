"""A whole site on this machine, for the failover tests and the chaos bench.

``LocalSite`` runs a real nats-server (JetStream, 127.0.0.1, a free port, a
store in the given folder), a real HTTP camera that counts the shots it
serves at once, and N engines as real ``cuecap run`` processes on one rule
file: several rules on a 1 s schedule, each taking a shot from that camera.
It listens to the site's events and ``report`` says, from what the engines
published and what the camera and the shots folder saw, how many fires ran
twice or never, how many shots were lost, the most shots at once and how
long a killed engine's fire took to run elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from engine.cluster.devserver import NatsServer
from engine.cluster.errors import ClusterError
from engine.cluster.names import instant_text
from engine.cluster.payload import loads
from engine.shots.testing import HttpCameraServer

SITE = "chaos"


@dataclass(frozen=True, slots=True)
class Seen:
    """One event as the listener got it."""

    received: float
    kind: str
    engine: str
    body: dict[str, Any]


@dataclass
class Report:
    expected: int  # (rule, instant) pairs due in the window
    fired: int
    double_fires: int
    missed_fires: int
    lost_shots: int
    failed_shots: int
    doubled_shots: int
    max_in_flight: int
    limit: int
    failovers: list[float] = field(default_factory=list)  # seconds, kill to the run elsewhere
    redelivered: int = 0
    missed: list[str] = field(default_factory=list)  # rule@instant of the missed fires

    def lines(self) -> list[str]:
        worst = f"{max(self.failovers):.2f} s" if self.failovers else "n/a (no fire was cut)"
        return [
            f"fires due: {self.expected}, ran: {self.fired}",
            f"double fires: {self.double_fires}",
            f"missed fires: {self.missed_fires}"
            + (f" ({', '.join(self.missed[:5])})" if self.missed else ""),
            f"lost shots: {self.lost_shots} (doubled: {self.doubled_shots}, "
            f"failed after every try: {self.failed_shots})",
            f"max in flight at the camera: {self.max_in_flight} (limit {self.limit})",
            f"failover time: {worst} over {len(self.failovers)} cut fire(s); "
            f"{self.redelivered} fire(s) run again elsewhere",
        ]


async def _quiet(exc: Exception) -> None:
    """The listener reconnects by itself across server restarts; nothing to say."""


class LocalSite:
    """``async with LocalSite(folder) as site: site.start_engine(0) ...; site.report(a, b)``."""

    def __init__(
        self,
        folder: Path,
        *,
        rules: int = 3,
        every: float = 1.0,
        camera_delay: float = 0.4,
        max_in_flight: int = 2,
        ack_wait: float = 1.5,
        flaky: int = 2,
    ) -> None:
        self.folder = folder
        self.rule_names = [f"r{i}" for i in range(rules)]
        self.every = every
        self.limit = max_in_flight
        self.ack_wait = ack_wait
        self.nats = NatsServer(folder / "nats")
        self.camera = HttpCameraServer(delay=camera_delay, flaky_failures=flaky)
        # A killed engine leaves its request's answer nowhere to go: no traceback for that.
        self.camera._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.engines: dict[int, subprocess.Popen[bytes]] = {}
        self.names: dict[str, int] = {}  # engine name -> index
        self.seen: list[Seen] = []
        self.kills: list[tuple[float, str]] = []  # (when, engine name)
        self._nc: Client | None = None
        self._logs: list[IO[bytes]] = []
        self.rules_file = folder / "site.yaml"

    async def __aenter__(self) -> LocalSite:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.nats.start()
        self._write_rules()
        self._nc = await nats.connect(self.nats.url, max_reconnect_attempts=-1,
                                      reconnect_time_wait=0.2, error_cb=_quiet)  # fmt: skip
        await self._nc.subscribe(f"cuecap.{SITE}.events.>", cb=self._on_event)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_all()
        if self._nc is not None:
            await self._nc.close()
        self.nats.stop()
        self.camera.close()
        for log in self._logs:
            log.close()

    def _write_rules(self) -> None:
        shots = self.folder / "shots"
        lines = [
            "settings:",
            "  timezone: UTC",
            "  stop_timeout: 2",
            f"  shots: {{folder: {shots}, file_name: '{{task}}.jpg', backoff: 0.1, jitter: 0,"
            " max_tries: 4}",
            f"  cluster: {{nats: {self.nats.url}, name: {SITE}, ack_wait: {self.ack_wait}}}",
            "cameras:",
            f"  cam: {{type: http, url: '{self.camera.url('/flaky')}',"
            f" max_in_flight: {self.limit}}}",
            "rules:",
        ]
        for name in self.rule_names:
            # queued: a run slowed by a failover (its shot waits for the camera) is never a
            # reason to drop the next fire; single's drop is the decision tests' business.
            lines += [
                f"  {name}:",
                "    mode: queued",
                f"    when: {{type: schedule, every: {self.every}}}",
                "    do: {type: shot, cameras: cam}",
            ]
        self.rules_file.write_text("\n".join(lines) + "\n")

    async def _on_event(self, msg: Msg) -> None:
        try:
            body = loads(msg.data)
        except ValueError:
            return
        engine = (msg.headers or {}).get("Cuecap-Engine", "")
        self.seen.append(Seen(time.time(), str(body.get("kind")), engine, body))

    # -- engines ------------------------------------------------------------------

    def start_engine(self, index: int) -> None:
        log = (self.folder / f"engine-{index}.log").open("ab")
        self._logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "-v", "run", "--no-watch", str(self.rules_file)],
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.engines[index] = process
        self.names[f"{os.uname().nodename}-{process.pid}"] = index

    async def wait_started(self, indexes: list[int], timeout: float = 30.0) -> None:
        wanted = {name for name, i in self.names.items() if i in indexes
                  and self.engines[i].poll() is None}  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = {s.engine for s in self.seen if s.kind == "engine.started"}
            if wanted <= started:
                return
            await asyncio.sleep(0.05)
        raise ClusterError(f"engines {sorted(wanted)} did not start within {timeout:g} s")

    def _name(self, index: int) -> str:
        return next(n for n, i in self.names.items() if i == index and
                    self.engines[index].pid == int(n.rsplit("-", 1)[1]))  # fmt: skip

    async def kill_mid_fire(self, candidates: list[int], timeout: float = 10.0) -> int:
        """SIGKILL the first of ``candidates`` seen starting a fire (its actions are running)."""
        names = {self._name(i): i for i in candidates if self.engines[i].poll() is None}
        start = len(self.seen)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for seen in self.seen[start:]:
                if seen.kind == "rule.fired" and seen.engine in names:
                    index = names[seen.engine]
                    self.engines[index].send_signal(signal.SIGKILL)
                    self.engines[index].wait()
                    self.kills.append((time.time(), seen.engine))
                    return index
            await asyncio.sleep(0.005)
        raise ClusterError("no engine started a fire to be killed in")

    def kill(self, index: int) -> None:
        process = self.engines[index]
        if process.poll() is None:
            name = self._name(index)
            process.send_signal(signal.SIGKILL)
            process.wait()
            self.kills.append((time.time(), name))

    async def terminate(self, index: int, timeout: float = 20.0) -> int:
        """SIGTERM: a clean stop (running actions finish); returns the exit code."""
        process = self.engines[index]
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
            await asyncio.sleep(0.05)
        return process.returncode

    async def stop_all(self) -> None:
        for index, process in self.engines.items():
            if process.poll() is None:
                await self.terminate(index)

    def alive(self) -> list[int]:
        return [i for i, p in self.engines.items() if p.poll() is None]

    # -- what happened ----------------------------------------------------------------

    def due(self, start: float, end: float) -> list[tuple[str, float]]:
        """(rule, instant) of every fire due in [start, end]."""
        first = (int(start / self.every) + 1) * self.every
        out = []
        t = first
        while t <= end:
            out += [(rule, t) for rule in self.rule_names]
            t = round(t + self.every, 6)
        return out

    def report(self, start: float, end: float) -> Report:
        """What ran of the fires due in [start, end] (wall-clock seconds)."""
        due = self.due(start, end)
        runs: dict[tuple[str, str], list[int]] = defaultdict(list)  # -> delivery numbers
        fired_at: dict[tuple[str, str], list[Seen]] = defaultdict(list)
        for seen in self.seen:
            if seen.kind == "rule.fired":
                key = (str(seen.body["rule"]), instant_text(float(seen.body["time"])))
                detail = str(seen.body.get("detail", ""))
                delivery = (
                    int(detail.rsplit("delivery ", 1)[1].rstrip(")"))
                    if "delivery " in detail
                    else 1
                )
                runs[key].append(delivery)
                fired_at[key].append(seen)
        finals: Counter[str] = Counter()
        failed = 0
        for seen in self.seen:
            if seen.kind in ("shot.success", "shot.error"):
                finals[str(seen.body["task"])] += 1
                failed += seen.kind == "shot.error"
        keys = [(rule, instant_text(t)) for rule, t in due]
        files = Counter(p.name.split(".jpg")[0] for p in (self.folder / "shots").glob("*.jpg"))
        # Events reach this listener at most once (core NATS): one that reconnects after a
        # server restart misses those sent meanwhile. A fire's shot file is the ground truth.
        saved = {key for key in keys if files[f"{key[0]}@{key[1]}-0-cam"]}
        fired = [k for k in keys if k in runs or k in saved]
        doubles = sum(1 for k in fired if runs[k].count(1) > 1)
        missed = len(keys) - len(fired)
        lost = sum(
            1 for rule, t in fired if not finals[f"{rule}@{t}-0-cam"] and (rule, t) not in saved
        )
        doubled = sum(1 for n in finals.values() if n > 1) + sum(
            1
            for name in files
            if not name.endswith("-cam")  # a second file: name-1.jpg...
        )
        failovers = []
        for when, engine in self.kills:
            cut = [k for k, seen in fired_at.items() if any(s.engine == engine and
                   s.received <= when for s in seen) and any(d > 1 for d in runs[k])]  # fmt: skip
            for key in cut:
                again = [s.received for s in fired_at[key] if s.received > when]
                if again:
                    failovers.append(min(again) - when)
        return Report(
            expected=len(keys),
            fired=len(fired),
            double_fires=doubles,
            missed_fires=missed,
            lost_shots=lost,
            failed_shots=failed,
            doubled_shots=doubled,
            max_in_flight=self.camera.max_in_flight,
            limit=self.limit,
            failovers=failovers,
            redelivered=sum(1 for d in runs.values() if any(x > 1 for x in d)),
            missed=[f"{rule}@{t}" for rule, t in keys if (rule, t) not in fired],
        )
