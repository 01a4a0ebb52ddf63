"""ShotService inside a running loop: statuses, retries, limits, events, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.core.clock import ManualClock
from engine.core.templates import PathEscapeError, TemplateError
from engine.events import Event, EventKind
from engine.shots import (
    CameraCommon,
    CaptureError,
    CaptureRequest,
    PythonCamera,
    QueueFull,
    SaverClosed,
    ShotFailed,
    ShotsConfig,
    ShotService,
    Throttled,
    UnknownCamera,
)
from engine.shots.config import OnExists
from engine.shots.files import ShotFile
from engine.shots.testing import FlakyCamera, make_jpeg

JPEG = make_jpeg()
FAST = {"backoff": 0.001, "backoff_max": 0.01, "jitter": 0.5}


def settings(tmp_path: Path, **kw: Any) -> ShotsConfig:
    return ShotsConfig(folder=str(tmp_path), **{**FAST, **kw})


class Recorder:
    """Collects statuses per task and emitted events."""

    def __init__(self) -> None:
        self.statuses: dict[str, list[str]] = {}
        self.reasons: dict[str, str] = {}
        self.saving_reasons: dict[str, list[str]] = {}
        self.events: list[Event] = []

    def callback(self, guid: str, state: str) -> None:
        self.statuses.setdefault(guid, []).append(str(state))
        if state == "error":
            self.reasons[guid] = state.reason  # type: ignore[attr-defined]
        if state == "saving":  # a retry says why the previous try failed
            self.saving_reasons.setdefault(guid, []).append(state.reason)  # type: ignore[attr-defined]

    def emit(self, event: Event) -> None:
        self.events.append(event)


def camera(fn: Callable[..., Any], name: str = "cam", **limits: Any) -> PythonCamera:
    return PythonCamera(name, fn, CameraCommon(**limits))


async def ok(request: CaptureRequest) -> bytes:
    return JPEG


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_status_order_path_known_at_once_and_event_emitted(tmp_path: Path) -> None:
    rec = Recorder()
    async with ShotService({"cam": camera(ok)}, settings(tmp_path), emit=rec.emit) as service:
        guid, path = service.submit("cam", callback=rec.callback, fields={"rule": "r1"})
        assert rec.statuses[guid] == ["in_queue"]  # synchronously, before anything else
        assert path is not None and path.parent == tmp_path and not path.exists()
        assert path.name.startswith("cam (") and path.suffix == ".jpg"
        await service.drain()
    assert rec.statuses[guid] == ["in_queue", "saving", "success"]
    assert path.read_bytes() == JPEG
    kinds = [e.kind for e in rec.events]
    assert kinds == [EventKind.SHOT_QUEUED, EventKind.SHOT_SAVING, EventKind.SHOT_SUCCESS]
    assert {e.data["task"] for e in rec.events} == {guid}
    event = rec.events[-1]
    assert event.data["camera"] == "cam" and event.data["path"] == str(path)
    assert event.data["rule"] == "r1" and event.data["tries"] == 1


async def test_retries_with_backoff_then_error_with_reason_and_no_file(tmp_path: Path) -> None:
    calls: list[float] = []

    async def broken(request: CaptureRequest) -> bytes:
        calls.append(time.monotonic())
        raise CaptureError("HTTP 500 Internal Server Error")

    rec = Recorder()
    cfg = settings(tmp_path, max_tries=3, backoff=0.02, backoff_factor=2, backoff_max=1, jitter=0)
    async with ShotService({"cam": camera(broken)}, cfg, emit=rec.emit) as service:
        guid, path = service.submit("cam", callback=rec.callback)
        await service.drain()
    assert rec.statuses[guid] == ["in_queue", "saving", "saving", "saving", "error"]
    assert rec.reasons[guid] == "HTTP 500 Internal Server Error"
    failed = "HTTP 500 Internal Server Error"
    assert rec.saving_reasons[guid] == ["", failed, failed]
    assert len(calls) == 3 and calls[1] - calls[0] >= 0.019 and calls[2] - calls[1] >= 0.039
    assert files(tmp_path) == [] and path is not None and not path.exists()
    assert [e.data.get("tries") for e in rec.events if e.kind is EventKind.SHOT_SAVING] == [1, 2, 3]
    final = rec.events[-1]
    assert final.name == EventKind.SHOT_ERROR and final.data["reason"].startswith("HTTP 500")


async def test_camera_timeout_and_non_jpeg_are_errors(tmp_path: Path) -> None:
    async def hang(request: CaptureRequest) -> bytes:
        await asyncio.sleep(30)
        return JPEG

    async def html(request: CaptureRequest) -> bytes:
        return b"<html>login</html>"

    rec = Recorder()
    cams = {"hang": camera(hang, "hang", timeout=0.05), "html": camera(html, "html")}
    async with ShotService(cams, settings(tmp_path, max_tries=2), emit=rec.emit) as service:
        g1, _ = service.submit("hang", callback=rec.callback)
        g2, _ = service.submit("html", callback=rec.callback)
        await service.drain()
    assert rec.reasons[g1] == "camera 'hang' gave no shot within 0.05 s"
    assert "not a JPEG" in rec.reasons[g2] and "HTML page" in rec.reasons[g2]
    assert rec.statuses[g1].count("saving") == 2
    assert files(tmp_path) == []


async def test_unexpected_exception_is_logged_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def buggy(request: CaptureRequest) -> bytes:
        raise ZeroDivisionError("bug in camera code")

    rec = Recorder()
    async with ShotService({"cam": camera(buggy)}, settings(tmp_path, max_tries=1)) as service:
        guid, _ = service.submit("cam", callback=rec.callback)
        await service.drain()
    assert rec.reasons[guid] == "ZeroDivisionError: bug in camera code"
    assert any(r.exc_info and "failed unexpectedly" in r.getMessage() for r in caplog.records)


async def test_callback_exceptions_are_logged_with_traceback_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def bad(guid: str, state: str) -> None:
        seen.append(str(state))
        raise RuntimeError("callback bug")

    async with ShotService({"cam": camera(ok)}, settings(tmp_path)) as service:
        service.submit("cam", callback=bad)
        await service.drain()
        assert service.snapshot().callback_errors == 3
    assert seen == ["in_queue", "saving", "success"]  # a raising callback does not stop the shot
    logged = [r for r in caplog.records if "shot callback" in r.getMessage()]
    assert len(logged) == 3 and all(r.exc_info for r in logged)


async def test_async_callbacks_are_awaited(tmp_path: Path) -> None:
    seen: list[str] = []

    async def cb(guid: str, state: str) -> None:
        await asyncio.sleep(0)
        seen.append(str(state))

    async with ShotService({"cam": camera(ok)}, settings(tmp_path)) as service:
        service.submit("cam", callback=cb)
        await service.drain()
        await asyncio.sleep(0.01)
    assert seen == ["in_queue", "saving", "success"]


async def test_closing_lets_async_callbacks_of_final_statuses_end(tmp_path: Path) -> None:
    seen: list[str] = []

    async def slow_cb(guid: str, state: str) -> None:
        await asyncio.sleep(0.05)  # e.g. uploads the shot somewhere
        seen.append(str(state))

    async with ShotService({"cam": camera(ok)}, settings(tmp_path)) as service:
        service.submit("cam", callback=slow_cb)
        await service.drain()
    assert seen[-1] == "success"  # aclose waited for it rather than dropping it


async def test_bounded_queue_rejects_clearly_and_queues_nothing(tmp_path: Path) -> None:
    gate = asyncio.Event()

    async def slow(request: CaptureRequest) -> bytes:
        await gate.wait()
        return JPEG

    rec = Recorder()
    cfg = settings(tmp_path, pool_size=1, queue_size=2)
    async with ShotService({"cam": camera(slow)}, cfg) as service:
        service.submit("cam", callback=rec.callback)
        await asyncio.sleep(0.01)  # first one is now in flight
        service.submit("cam", callback=rec.callback)
        service.submit("cam", callback=rec.callback)
        with pytest.raises(QueueFull, match="queue is full"):
            service.submit("cam", callback=rec.callback, task_guid="refused")
        assert "refused" not in rec.statuses
        gate.set()
        await service.drain()
        assert service.snapshot().rejected == 1 and service.snapshot().succeeded == 3


async def test_unknown_camera_and_bad_templates_are_refused_at_submit(tmp_path: Path) -> None:
    async with ShotService({"cam": camera(ok)}, settings(tmp_path)) as service:
        with pytest.raises(UnknownCamera, match="no camera named 'nope' \\(known: cam\\)"):
            service.submit("nope")
        with pytest.raises(TemplateError, match="attribute"):
            service.submit("cam", file_name="{camera.__class__}.jpg")
        with pytest.raises(PathEscapeError):
            service.submit("cam", folder="../../etc")
        assert service.snapshot().submitted == 0


async def test_camera_names_cannot_escape_and_names_stay_unique(tmp_path: Path) -> None:
    bad = camera(ok, name="../../x|y")
    async with ShotService({}, settings(tmp_path, file_name="{camera}.jpg")) as service:
        _, p1 = service.submit(bad)
        _, p2 = service.submit(bad)
        await service.drain()
    assert p1 == tmp_path / ".._.._x_y.jpg"  # "/" and "|" replaced: one name, inside the folder
    assert p2 == tmp_path / ".._.._x_y (2).jpg"
    assert files(tmp_path) == sorted([p1, p2])


async def test_templates_with_rule_fields_folders_and_seq(tmp_path: Path) -> None:
    cfg = settings(tmp_path, subfolder="{server}/{camera}", file_name="{rule}-{seq:03d}.jpg")
    async with ShotService({"gate": camera(ok, "gate")}, cfg, server="srv1") as service:
        _, p1 = service.submit("gate", fields={"rule": "motion"})
        _, p2 = service.submit("gate", fields={"rule": "motion"}, folder="custom/%Y")
        _, p3 = service.submit("gate", root=tmp_path / "elsewhere", file_name="x.jpg")
        await service.drain()
    assert p1 == tmp_path / "srv1" / "gate" / "motion-001.jpg"
    assert (
        p2 is not None and p2.parent.parent == tmp_path / "custom" and p2.name == "motion-002.jpg"
    )
    assert p3 == tmp_path / "elsewhere" / "srv1" / "gate" / "x.jpg"  # root replaces the folder only
    assert all(p.exists() for p in (p1, p2, p3) if p)


async def test_pool_size_bounds_concurrency_across_cameras(tmp_path: Path) -> None:
    flaky = FlakyCamera(failure_rate=0.0, max_delay=0.002, seed=3)
    cams = {f"c{i}": PythonCamera(f"c{i}", flaky) for i in range(5)}
    async with ShotService(cams, settings(tmp_path, pool_size=3, queue_size=500)) as service:
        for i in range(200):
            service.submit(f"c{i % 5}", file_name="{camera}-{seq}.jpg")
        await service.drain()
        stats = service.snapshot()
    assert flaky.max_in_flight <= 3 and stats.max_in_flight == 3
    assert stats.succeeded == 200 and len(files(tmp_path)) == 200


async def test_per_camera_in_flight_limit(tmp_path: Path) -> None:
    flaky = FlakyCamera(failure_rate=0.0, max_delay=0.002, seed=4)
    async with ShotService(
        {"cam": PythonCamera("cam", flaky, CameraCommon(max_in_flight=2))},
        settings(tmp_path, pool_size=10),
    ) as service:
        for _ in range(30):
            service.submit("cam", file_name="{seq}.jpg")
        await service.drain()
    assert flaky.max_in_flight == 2


async def test_min_interval_skip_refuses_and_delay_spaces(tmp_path: Path) -> None:
    clock = ManualClock(1000.0)
    starts: list[float] = []

    async def stamp(request: CaptureRequest) -> bytes:
        starts.append(clock.time())
        return JPEG

    cams = {
        "skip": camera(stamp, "skip", min_interval=5),
        "delay": camera(stamp, "delay", min_interval=5, throttle="delay"),
    }
    async with ShotService(
        cams, settings(tmp_path, file_name="{camera}-{seq}.jpg"), clock=clock
    ) as service:
        service.submit("skip")
        clock.advance(1)
        with pytest.raises(Throttled, match="min_interval=5"):
            service.submit("skip")
        clock.advance(4)
        service.submit("skip")
        await service.drain()
        assert len(starts) == 2  # the refused request never reached the camera
        starts.clear()
        for _ in range(3):
            service.submit("delay")
        await asyncio.sleep(0.02)
        assert starts == [1005.0]
        clock.advance(5)
        service.poke()
        await asyncio.sleep(0.02)
        clock.advance(5)
        service.poke()
        await service.drain()
    assert starts == [1005.0, 1010.0, 1015.0]


async def test_buffer_ts_delays_the_start(tmp_path: Path) -> None:
    clock = ManualClock(50.0)
    rec = Recorder()
    async with ShotService(
        {"cam": camera(ok)}, settings(tmp_path, buffer_ts=3), clock=clock
    ) as service:
        guid, _ = service.submit("cam", callback=rec.callback)
        await asyncio.sleep(0.02)
        assert rec.statuses[guid] == ["in_queue"]
        clock.advance(3)
        service.poke()
        await service.drain()
    assert rec.statuses[guid] == ["in_queue", "saving", "success"]


async def test_dt_past_asks_the_archive_future_waits(tmp_path: Path) -> None:
    clock = ManualClock(10_000.0)
    requests: list[CaptureRequest] = []

    async def cam(request: CaptureRequest) -> bytes:
        requests.append(request)
        return JPEG

    async with ShotService(
        {"cam": camera(cam)}, settings(tmp_path, file_name="{seq}.jpg"), clock=clock
    ) as service:
        service.submit("cam", dt=9_000.0)
        service.submit("cam", dt=9_999.0)
        service.submit("cam", dt=10_005.0)
        await asyncio.sleep(0.02)
        assert [(r.time, r.live) for r in requests] == [(9_000.0, False), (9_999.0, True)]
        clock.advance(5)
        service.poke()
        await service.drain()
    assert (requests[2].time, requests[2].live) == (10_005.0, True)


async def test_grab_and_deliver_return_bytes_or_shot_failed(tmp_path: Path) -> None:
    async def broken(request: CaptureRequest) -> bytes:
        raise CaptureError("lens cap on", retryable=False)

    async with ShotService(
        {"cam": camera(ok), "bad": camera(broken, "bad")}, settings(tmp_path)
    ) as service:
        assert await service.grab("cam") == JPEG
        with pytest.raises(ShotFailed, match="lens cap on") as info:
            await service.grab("bad")
        assert info.value.camera == "bad"
        result = await service.shoot("bad")
        assert result == "error" and result.reason == "lens cap on"
    assert files(tmp_path) == []  # grab writes nothing


async def test_sync_camera_functions_run_on_threads_bounded_by_pool(tmp_path: Path) -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def blocking(request: CaptureRequest) -> bytes:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.005)
        with lock:
            state["now"] -= 1
        return JPEG

    async with ShotService({"cam": camera(blocking)}, settings(tmp_path, pool_size=3)) as service:
        for _ in range(15):
            service.submit("cam", file_name="{seq}.jpg")
        await service.drain()
    assert state["max"] <= 3 and len(files(tmp_path)) == 15


async def test_hard_close_gives_every_shot_a_final_error(tmp_path: Path) -> None:
    async def slow(request: CaptureRequest) -> bytes:
        await asyncio.sleep(30)
        return JPEG

    rec = Recorder()
    service = ShotService({"cam": camera(slow)}, settings(tmp_path, pool_size=1))
    await service.start()
    guids = [service.submit("cam", callback=rec.callback)[0] for _ in range(3)]
    await asyncio.sleep(0.01)
    await service.aclose(graceful=False)
    for guid in guids:
        assert rec.statuses[guid][-1] == "error" and rec.statuses[guid].count("error") == 1
    assert "saver closed" in rec.reasons[guids[0]] and "saver closed" in rec.reasons[guids[2]]
    with pytest.raises(SaverClosed):
        service.submit("cam")
    assert files(tmp_path) == []


async def test_a_hard_close_before_tries_ran_their_first_step_still_ends_each(
    tmp_path: Path,
) -> None:
    rec = Recorder()
    service = ShotService({"cam": camera(ok)}, settings(tmp_path))
    await service.start()
    guids = [service.submit("cam", callback=rec.callback)[0] for _ in range(3)]
    await service.aclose(graceful=False)  # the tries were created, never stepped
    assert {g: rec.statuses[g] for g in guids} == {g: ["in_queue", "error"] for g in guids}
    assert service.snapshot().in_flight == 0 and files(tmp_path) == []


async def test_graceful_close_finishes_queued_shots(tmp_path: Path) -> None:
    service = ShotService({"cam": camera(ok)}, settings(tmp_path, pool_size=1))
    await service.start()
    for _ in range(5):
        service.submit("cam", file_name="{seq}.jpg")
    await service.aclose()
    assert len(files(tmp_path)) == 5


async def test_submit_before_start_runs_at_start(tmp_path: Path) -> None:
    service = ShotService({"cam": camera(ok)}, settings(tmp_path))
    _, path = service.submit("cam")
    await service.start()
    await service.drain()
    await service.aclose()
    assert path is not None and path.exists()


async def test_done_when_10000_flaky_requests(tmp_path: Path) -> None:
    """10,000 shots, random delays, 20 % failures: one final status each, files match."""
    flaky = FlakyCamera(failure_rate=0.2, max_delay=0.0003, seed=42)
    rec = Recorder()
    pool = 10
    cfg = settings(tmp_path, pool_size=pool, queue_size=10_000, max_tries=2, file_name="{seq}.jpg")
    paths: dict[str, Path] = {}
    async with ShotService({"cam": PythonCamera("cam", flaky)}, cfg, emit=rec.emit) as service:
        for _ in range(10_000):
            guid, path = service.submit("cam", callback=rec.callback)
            assert path is not None
            paths[guid] = path
        await service.drain()
        stats = service.snapshot()
    assert len(rec.statuses) == 10_000
    successes = errors = 0
    for guid, history in rec.statuses.items():
        final = [s for s in history if s in ("success", "error")]
        assert len(final) == 1 and history[-1] == final[0] and history[0] == "in_queue"
        assert history.count("in_queue") == 1 and 1 <= history.count("saving") <= 2
        if final[0] == "success":
            successes += 1
            data = paths[guid].read_bytes()
            assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
        else:
            errors += 1
            assert not paths[guid].exists()
    assert successes + errors == 10_000 and 200 < errors < 700  # ~4 % fail twice
    assert flaky.max_in_flight <= pool and stats.max_in_flight <= pool
    assert len(files(tmp_path)) == successes
    finals = [e for e in rec.events if e.kind in (EventKind.SHOT_SUCCESS, EventKind.SHOT_ERROR)]
    assert len(finals) == 10_000 and len({e.data["task"] for e in finals}) == 10_000


async def test_small_files_are_written_in_place_large_or_after_a_slow_write_on_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from engine.shots.files import ShotFile

    real = ShotFile.commit
    threads: list[str] = []

    def recording(self: ShotFile, data: bytes) -> None:
        threads.append(threading.current_thread().name)
        real(self, data)

    monkeypatch.setattr(ShotFile, "commit", recording)
    caplog.set_level("WARNING", logger="engine.shots.service")
    async with ShotService({"cam": camera(ok)}, settings(tmp_path)) as service:
        service.inline_writes.max_bytes = len(JPEG)
        assert (await service.shoot("cam")) == "success"  # small: on the loop's thread
        service.inline_writes.max_bytes = len(JPEG) - 1
        assert (await service.shoot("cam")) == "success"  # large: on a worker
        service.inline_writes.max_bytes = len(JPEG)
        service.inline_writes.slow = -1.0  # every write counts as slow
        assert (await service.shoot("cam")) == "success"  # in place, found slow
        assert (await service.shoot("cam")) == "success"  # so on a worker
    loop_thread = threading.current_thread().name
    assert threads[0] == threads[2] == loop_thread
    assert threads[1].startswith("cuecap-shot-io") and threads[3].startswith("cuecap-shot-io")
    assert any("shot files go to worker threads" in r.getMessage() for r in caplog.records)
    assert len(files(tmp_path)) == 4


async def test_a_relative_folder_follows_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    cfg = ShotsConfig(folder="shots", file_name="{seq}.jpg")
    async with ShotService({"cam": camera(ok)}, cfg) as service:
        _, first = service.submit("cam")
        monkeypatch.chdir(tmp_path / "elsewhere")
        _, second = service.submit("cam")
        await service.drain()
    assert first == tmp_path / "shots" / "1.jpg" and first.exists()
    assert second == tmp_path / "elsewhere" / "shots" / "2.jpg" and second.exists()


def test_task_ids_are_unique_even_when_the_random_module_is_reseeded() -> None:
    import random

    from engine.shots.service import new_guid

    random.seed(1)
    first = new_guid()
    random.seed(1)
    assert new_guid() != first
    assert len(first) == 32 and int(first, 16) >= 0


async def test_the_file_is_created_while_the_camera_works_and_never_left_behind(
    tmp_path: Path,
) -> None:
    asked = asyncio.Event()
    answer: asyncio.Future[bytes] | None = None

    async def waiting(request: CaptureRequest) -> bytes:
        nonlocal answer
        answer = asyncio.get_running_loop().create_future()
        asked.set()
        return await answer

    made: list[ShotFile] = []
    real = ShotFile.create

    def create(self: ShotFile) -> None:
        made.append(self)
        real(self)

    cfg = settings(tmp_path, max_tries=1, file_name="{seq}.jpg", on_exists="replace")
    async with ShotService({"cam": camera(waiting)}, cfg) as service:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ShotFile, "create", create)
            for on_exists in (OnExists.replace, OnExists.unique):
                for outcome in (JPEG, CaptureError("no signal")):
                    asked.clear()
                    made.clear()
                    guid, path = service.submit("cam", on_exists=on_exists)
                    await asked.wait()
                    await asyncio.sleep(0)  # the camera waits: the file is being made meanwhile
                    assert path is not None and len(made) == 1 and made[0].fd is not None
                    hidden = [p.name for p in files(tmp_path) if p.name.startswith(".")]
                    if on_exists is OnExists.replace:  # a hidden temporary, renamed at the end
                        assert hidden == [f".{path.name}.{guid[:12]}.part"]
                    else:  # an anonymous file (O_TMPFILE), linked to its name at the end
                        assert hidden == [] and made[0].anonymous
                    assert answer is not None
                    if isinstance(outcome, bytes):
                        answer.set_result(outcome)
                    else:
                        answer.set_exception(outcome)
                    await service.drain()
    assert [p.name for p in files(tmp_path)] == ["1.jpg", "3.jpg"]
    assert (tmp_path / "1.jpg").read_bytes() == JPEG == (tmp_path / "3.jpg").read_bytes()


class Numbered:
    """A camera whose every shot is a different JPEG, so a file tells which shot it holds."""

    def __init__(self) -> None:
        self.shots: list[bytes] = []

    async def __call__(self, request: CaptureRequest) -> bytes:
        data = make_jpeg(text=str(len(self.shots)))
        self.shots.append(data)
        return data


async def shots_to_one_name(
    tmp_path: Path, configured: str, n: int = 3, **submit: Any
) -> tuple[Recorder, list[tuple[str, Path]], Numbered]:
    cam, rec = Numbered(), Recorder()
    cfg = settings(tmp_path, file_name="same.jpg", on_exists=configured, max_tries=1)
    async with ShotService({"cam": camera(cam)}, cfg, emit=rec.emit) as service:
        made = [service.submit("cam", callback=rec.callback, **submit) for _ in range(n)]
        await service.drain()
    return rec, [(g, p) for g, p in made if p is not None], cam


async def test_saves_to_one_name_never_overwrite_each_other(tmp_path: Path) -> None:
    (tmp_path / "same.jpg").write_bytes(b"kept")  # from an earlier run
    rec, made, cam = await shots_to_one_name(tmp_path, "unique")
    names = ["same (2).jpg", "same (3).jpg", "same (4).jpg"]
    assert [p for _, p in made] == [tmp_path / n for n in names]
    assert (tmp_path / "same.jpg").read_bytes() == b"kept"
    by_content = {p.read_bytes(): p for p in files(tmp_path)}
    assert len(by_content) == 4 and all(shot in by_content for shot in cam.shots)
    saved = {e.data["task"]: e.data["path"] for e in rec.events if e.kind is EventKind.SHOT_SUCCESS}
    for guid, path in made:  # the path told is the file that holds that shot
        assert rec.statuses[guid] == ["in_queue", "saving", "success"]
        assert cam.shots.index(path.read_bytes()) == made.index((guid, path))
        assert saved[guid] == str(path)


async def test_on_exists_replace_writes_over_and_error_fails_the_shot(tmp_path: Path) -> None:
    rec, made, cam = await shots_to_one_name(tmp_path / "r", "replace")
    assert {p for _, p in made} == {tmp_path / "r" / "same.jpg"} and len(cam.shots) == 3
    assert files(tmp_path / "r") == [tmp_path / "r" / "same.jpg"]
    assert (tmp_path / "r" / "same.jpg").read_bytes() in cam.shots

    rec, made, cam = await shots_to_one_name(tmp_path / "e", "error")
    (first, path), *others = made
    assert rec.statuses[first][-1] == "success" and len(cam.shots) == 1
    assert path.read_bytes() == cam.shots[0] and files(tmp_path / "e") == [path]
    for guid, other in others:  # the name was taken by the first, still in flight: no try
        assert other == path and rec.statuses[guid] == ["in_queue", "error"]
        assert rec.reasons[guid] == f"another shot is saving to {path} (on_exists: error)"
    rec, made, cam = await shots_to_one_name(tmp_path / "e", "error", n=1)
    assert rec.reasons[made[0][0]] == f"{path} exists (on_exists: error)" and cam.shots == []

    rec, made, _ = await shots_to_one_name(tmp_path / "e", "error", n=1, on_exists=OnExists.unique)
    assert made[0][1] == tmp_path / "e" / "same (2).jpg" and made[0][1].exists()


async def test_a_file_made_by_another_program_after_planning_is_not_overwritten(
    tmp_path: Path,
) -> None:
    target = tmp_path / "same.jpg"

    async def intruder(request: CaptureRequest) -> bytes:
        target.write_bytes(b"someone else's")  # while the camera works
        return JPEG

    rec = Recorder()
    cfg = settings(tmp_path, file_name="same.jpg", max_tries=2)
    async with ShotService({"cam": camera(intruder)}, cfg) as service:
        guid, path = service.submit("cam", callback=rec.callback)
        await service.drain()
    assert path == target and target.read_bytes() == b"someone else's"
    assert rec.statuses[guid] == ["in_queue", "saving", "error"]  # not retried: it cannot help
    assert (
        "created by something else after the shot was planned; not overwritten"
        in (rec.reasons[guid])
    )
    assert files(tmp_path) == [target]


class AwaitableCamera:
    """A camera object whose ``capture`` returns a plain future, not a coroutine."""

    name = "future"
    config = CameraCommon()

    def capture(self, request: CaptureRequest) -> asyncio.Future[bytes]:
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.001, future.set_result, JPEG)
        return future

    async def aclose(self) -> None:
        return None


async def test_cameras_that_answer_at_once_wait_a_little_or_are_not_coroutines(
    tmp_path: Path,
) -> None:
    async def yields_twice(request: CaptureRequest) -> bytes:
        await asyncio.sleep(0)
        await asyncio.sleep(0.001)
        return JPEG

    async def raises_at_once(request: CaptureRequest) -> bytes:
        raise CaptureError("lens cap on", retryable=False)

    async def too_slow(request: CaptureRequest) -> bytes:
        await asyncio.sleep(0)
        await asyncio.sleep(30)
        return JPEG

    cams = {
        "now": camera(ok, "now"),
        "later": camera(yields_twice, "later"),
        "broken": camera(raises_at_once, "broken"),
        "slow": camera(too_slow, "slow", timeout=0.02, tries=1),
    }
    async with ShotService(cams, settings(tmp_path, file_name="{camera}.jpg")) as service:
        results = {name: await service.shoot(name) for name in cams}
        results["future"] = await service.shoot(AwaitableCamera())  # type: ignore[arg-type]
    assert {n: str(r) for n, r in results.items()} == {
        "now": "success",
        "later": "success",
        "broken": "error",
        "slow": "error",
        "future": "success",
    }
    assert results["broken"].reason == "lens cap on"
    assert results["slow"].reason == "camera 'slow' gave no shot within 0.02 s"
    assert sorted(p.name for p in files(tmp_path)) == ["future.jpg", "later.jpg", "now.jpg"]


async def test_a_write_on_a_worker_that_fails_fails_the_shot_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "blocked").write_text("a file where the folder should be")
    rec = Recorder()
    cfg = settings(tmp_path, max_tries=1, file_name="{seq}.jpg")
    async with ShotService({"cam": camera(ok)}, cfg) as service:
        service.inline_writes.max_bytes = 0  # every file goes to a worker thread
        good, good_path = service.submit("cam", callback=rec.callback)
        bad, _ = service.submit("cam", callback=rec.callback, folder="blocked/sub")
        await service.drain()
    assert rec.statuses[good] == ["in_queue", "saving", "success"] and good_path is not None
    assert good_path.read_bytes() == JPEG
    assert rec.statuses[bad] == ["in_queue", "saving", "error"]
    assert rec.reasons[bad].startswith("cannot write ") and "blocked/sub/2.jpg" in rec.reasons[bad]
    assert files(tmp_path) == sorted([good_path, tmp_path / "blocked"])
