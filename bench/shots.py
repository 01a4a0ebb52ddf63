"""Shot saver speed: ShotSaver against the seed's design, side by side, one run.

Two cameras: one that answers at once, one that takes 50 ms. For each:
saves per second with many shots queued, and per-shot overhead for shots
taken one at a time: the time from ``save()`` to the ``success`` callback
minus the time the camera itself took (measured inside the camera, so timer
slack of the stand-in camera is not counted against the saver). Creating the
file is part of the overhead of both designs; its cost on this disk alone is
printed too.

The baseline rebuilds the seed's design: ``pool_size`` threads take tasks from
an unbounded queue, ask the camera (the video server writes the file itself),
then check for the file once a second.

Targets: overhead under 1 ms at the median; never more than ``pool_size``
shots in flight while 10,000 requests are queued.

    python bench/shots.py            # about 30 s
"""

from __future__ import annotations

import asyncio
import os
import queue
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.shots import CaptureRequest, PythonCamera, ShotSaver, ShotsConfig, ShotService
from engine.shots.paths import write_atomic
from engine.shots.testing import make_jpeg

POOL = 10
JPEG = make_jpeg(640, 480, "gray", text="bench")
Save = Callable[[Callable[[str, str], None]], object]


class Camera:
    """Counts shots in flight and remembers how long the last one took at the camera."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.now = 0
        self.max = 0
        self.last = 0.0

    def enter(self) -> float:
        with self.lock:
            self.now += 1
            self.max = max(self.max, self.now)
        return time.perf_counter()

    def leave(self, started: float) -> None:
        self.last = time.perf_counter() - started
        with self.lock:
            self.now -= 1

    async def __call__(self, request: CaptureRequest) -> bytes:
        started = self.enter()
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            return JPEG
        finally:
            self.leave(started)


class SeedDesignSaver:
    """Threads + unbounded queue + "screenshot, then look for the file every second"."""

    def __init__(
        self, folder: Path, camera: Camera, pool_size: int = POOL, timeout_sec: int = 10
    ) -> None:
        self.folder = folder
        self.camera = camera
        self.timeout_sec = timeout_sec
        self.tasks: queue.Queue[tuple[str, Path, Callable[[str, str], None]]] = queue.Queue()
        for _ in range(pool_size):
            threading.Thread(target=self._worker, daemon=True).start()

    def _server_screenshot(self, path: Path) -> None:
        """The video server grabs the frame (``latency``), then writes the file itself."""
        started = self.camera.enter()

        def write() -> None:
            self.camera.leave(started)
            path.write_bytes(JPEG)

        threading.Timer(self.camera.latency, write).start()

    def save(self, callback: Callable[[str, str], None]) -> tuple[str, Path]:
        guid = uuid.uuid4().hex
        path = self.folder / f"{guid}.jpg"
        callback(guid, "in_queue")
        self.tasks.put((guid, path, callback))
        return guid, path

    def _worker(self) -> None:
        while True:
            guid, path, callback = self.tasks.get()
            callback(guid, "saving")
            self._server_screenshot(path)
            for _ in range(self.timeout_sec - 1):
                if path.exists():
                    callback(guid, "success")
                    break
                time.sleep(1)
            else:
                callback(guid, "error")


def throughput(save: Save, n: int) -> float:
    """Saves per second with ``n`` shots queued at once."""
    done = threading.Event()
    left = [n]
    lock = threading.Lock()

    def callback(guid: str, state: str) -> None:
        if state in ("success", "error"):
            with lock:
                left[0] -= 1
                if left[0] == 0:
                    done.set()

    start = time.perf_counter()
    for _ in range(n):
        save(callback)
    done.wait()
    return n / (time.perf_counter() - start)


def overheads(save: Save, n: int, camera: Camera) -> list[float]:
    """Per shot, one at a time: save() to final status, minus the camera's own time."""
    out: list[float] = []
    for _ in range(n):
        finished = threading.Event()
        end = [0.0]

        def callback(
            guid: str, state: str, end: list[float] = end, finished: threading.Event = finished
        ) -> None:
            if state in ("success", "error"):
                end[0] = time.perf_counter()
                finished.set()

        start = time.perf_counter()
        save(callback)
        finished.wait()
        out.append(end[0] - start - camera.last)
    return out


def ms(values: list[float], q: float = 0.5) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_saver(root: Path, latency: float, queued: int, singles: int) -> dict[str, float]:
    camera = Camera(latency)
    settings = ShotsConfig(
        folder=str(root), pool_size=POOL, queue_size=max(queued, 10), file_name="{seq}.jpg"
    )
    with ShotSaver(cameras={"cam": PythonCamera("cam", camera)}, settings=settings) as ss:

        def save(cb: Callable[[str, str], None]) -> object:
            return ss.save("cam", callback=cb)

        overheads(save, 20, camera)  # warm up
        lat = overheads(save, singles, camera)
        rate = throughput(save, queued)
        stats = ss.stats
    assert stats.succeeded == 20 + singles + queued, stats
    return {
        "rate": rate,
        "p50": ms(lat),
        "p95": ms(lat, 0.95),
        "max_in_flight": max(camera.max, stats.max_in_flight),
        "queued": queued,
    }


def run_service(root: Path, latency: float, singles: int) -> float:
    """Median overhead (ms) of ``ShotService`` inside a running loop, as the engine uses it."""
    camera = Camera(latency)
    settings = ShotsConfig(folder=str(root), pool_size=POOL, file_name="{seq}.jpg")

    async def measure() -> list[float]:
        out: list[float] = []
        async with ShotService({"cam": PythonCamera("cam", camera)}, settings) as service:
            for i in range(singles + 20):
                start = time.perf_counter()
                await service.shoot("cam")
                if i >= 20:
                    out.append(time.perf_counter() - start - camera.last)
        return out

    return ms(asyncio.run(measure()))


def run_seed(root: Path, latency: float, queued: int, singles: int) -> dict[str, float]:
    camera = Camera(latency)
    saver = SeedDesignSaver(root, camera)
    lat = overheads(saver.save, singles, camera)
    rate = throughput(saver.save, queued)
    return {
        "rate": rate,
        "p50": ms(lat),
        "p95": ms(lat, 0.95),
        "max_in_flight": camera.max,
        "queued": queued,
    }


def disk_create_ms(root: Path, n: int = 300) -> float:
    """Median time to create one shot file on this disk."""
    times: list[float] = []
    for i in range(n):
        start = time.perf_counter()
        write_atomic(root / f"{i}.jpg", JPEG, "disk")
        times.append(time.perf_counter() - start)
    return ms(times)


def main(argv: list[str] | None = None) -> int:
    print(
        f"shot saver bench: pool_size={POOL}, JPEG {len(JPEG)} bytes, "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    results: list[tuple[str, dict[str, float], dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="cuecap-bench-") as tmp:
        base = Path(tmp)
        disk = disk_create_ms(base / "disk")
        for label, latency, queued, singles, seed_queued, seed_singles in (
            ("instant camera", 0.0, 10_000, 300, 40, 4),
            ("50 ms camera", 0.05, 1_000, 60, 40, 4),
        ):
            ours = run_saver(base / f"ours-{latency}", latency, queued, singles)
            ours["service_p50"] = run_service(base / f"service-{latency}", latency, singles)
            (base / f"seed-{latency}").mkdir()
            seed = run_seed(base / f"seed-{latency}", latency, seed_queued, seed_singles)
            results.append((label, ours, seed))
    print()
    print(f"{'':16} {'':24} {'ShotSaver':>11} {'seed design':>12} {'ratio':>8}")
    ok = True
    for label, ours, seed in results:
        rows = (
            ("saves/s (queued)", ours["rate"], seed["rate"], ours["rate"] / seed["rate"]),
            ("overhead p50 ms", ours["p50"], seed["p50"], seed["p50"] / max(ours["p50"], 1e-6)),
            ("overhead p95 ms", ours["p95"], seed["p95"], seed["p95"] / max(ours["p95"], 1e-6)),
            ("overhead p50 ms, in loop", ours["service_p50"], seed["p50"], None),
            ("max in flight", ours["max_in_flight"], seed["max_in_flight"], None),
            ("shots queued", ours["queued"], seed["queued"], None),
        )
        for i, (name, a, b, ratio) in enumerate(rows):
            r = f"{ratio:7.1f}x" if ratio is not None else ""
            print(f"{label if i == 0 else '':16} {name:24} {a:11.2f} {b:12.2f} {r:>8}")
        ok &= ours["p50"] < 1.0 and ours["max_in_flight"] <= POOL
    print()
    print(f"creating one file on this disk (part of every overhead): {disk:.2f} ms median")
    print(
        "targets (ShotSaver overhead p50 < 1 ms, max in flight <= pool_size):",
        "met" if ok else "NOT MET",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
