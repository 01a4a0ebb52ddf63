"""An engine on the simulator with its HTTP server on 127.0.0.1 and a free port, for tests.

``serving(tmp_path)`` runs it on its own loop in a thread (so a test may block on
HTTP or a browser) and stops it cleanly at the end; ``url`` is where it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.http.config import HttpOptions
from engine.http.server import HttpServer, bind
from engine.rules.loader import load_rules
from engine.runtime.engine import Engine

# Bursts of droplet moves every few seconds, small camera frames, one camera
# fed by the stream, a recorder of the moves and a rule per kind of trigger.
RULES = """\
settings:
  recordings: rec
  shots: {folder: shots}
sources:
  sim:
    type: simulator
    seed: 3
    fps: 2
    image_size: [160, 120]
    first_burst_delay: {first_burst}
    idle: [3, 4]
    moves_per_burst: [2, 3]
cameras:
  bench: {type: stream, source: sim}
recorders:
  moves:
    source: sim
    activity: [{type: message, types: [electrode_state], name: electrodes}]
    pre_roll: 0.5s
    post_roll: 5s
rules:
  hourly:
    description: A frame every hour.
    when: {type: schedule, every: 1h}
    do: {type: shot, cameras: bench}
  noted:
    when: {type: event, event: recording.started, recorder: moves}
    do: {type: log, message: "{recorder} started ({reason})"}
"""


@dataclass
class Served:
    engine: Engine
    server: HttpServer
    root: Path
    url: str = ""
    summary: Any = None
    errors: list[BaseException] = field(default_factory=list)


@contextlib.contextmanager
def serving(
    root: Path, *, token: str | None = None, first_burst: float = 1.0, rules: str | None = None
) -> Iterator[Served]:
    """The engine of ``RULES`` in ``root``, serving HTTP until the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "rules.yaml").write_text(
        rules if rules is not None else RULES.replace("{first_burst}", str(first_burst)),
        encoding="utf-8",
    )
    ruleset = load_rules([root / "rules.yaml"])
    sock = bind("127.0.0.1", 0)
    server = HttpServer(HttpOptions("127.0.0.1", sock.getsockname()[1], token, True), sock)
    engine = Engine(
        ruleset,
        recordings=root / "rec",
        shots_folder=root / "shots",
        adapters=[server],
    )
    served = Served(engine, server, root, url=server.url)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def main() -> None:
        ready.set()
        served.summary = await engine.run()

    def thread() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # reported by the test, not lost in the thread
            served.errors.append(exc)
        finally:
            ready.set()
            loop.close()

    worker = threading.Thread(target=thread, name="engine under test", daemon=True)
    worker.start()
    ready.wait(10)
    deadline = time.monotonic() + 20
    while not server.serving and not served.errors:
        if time.monotonic() > deadline:
            raise AssertionError("the engine did not start within 20 s")
        time.sleep(0.01)
    if served.errors:
        raise served.errors[0]
    try:
        yield served
    finally:
        with contextlib.suppress(RuntimeError):  # the loop may have ended already
            loop.call_soon_threadsafe(engine.request_stop, "test done")
        worker.join(30)
        if worker.is_alive():
            raise AssertionError("the engine did not stop within 30 s")
    if served.errors:
        raise served.errors[0]
