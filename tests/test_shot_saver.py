"""ShotSaver: the seed's synchronous interface, from plain code and from a running loop."""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from engine.compat import ShotSaver as CompatSaver
from engine.shots import (
    CaptureError,
    CaptureRequest,
    PythonCamera,
    QueueFull,
    SaverClosed,
    ShotFailed,
    ShotSaver,
    ShotsConfig,
    UnknownCamera,
    status,
)
from engine.shots.service import ShotService
from engine.shots.testing import HttpCameraServer, make_jpeg

JPEG = make_jpeg()


def ok(request: CaptureRequest) -> bytes:
    return JPEG


def broken(request: CaptureRequest) -> bytes:
    raise CaptureError("camera offline")


class Calls:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[str, str]] = []
        self.done = threading.Event()
        self.threads: set[str] = set()

    def __call__(self, guid: str, state: str) -> None:
        with self.lock:
            self.items.append((guid, str(state)))
            self.threads.add(threading.current_thread().name)
        if state in (status.success, status.error):
            self.done.set()

    def of(self, guid: str) -> list[str]:
        return [s for g, s in self.items if g == guid]


@pytest.fixture
def saver(tmp_path: Path) -> Any:
    settings = ShotsConfig(backoff=0.001, backoff_max=0.002)
    ss = ShotSaver(
        cameras={"cam": PythonCamera("cam", ok), "bad": PythonCamera("bad", broken)},
        settings=settings,
        screenshots_folder=tmp_path,
    )
    yield ss
    ss.close()


def test_seed_defaults_and_public_attributes(tmp_path: Path) -> None:
    with ShotSaver() as ss:
        assert (ss.pool_size, ss.timeout_sec, ss.buffer_ts, ss.max_tries, ss.callback) == (
            10,
            10,
            0,
            2,
            None,
        )
        assert Path(ss.screenshots_folder).is_absolute()
        ss.screenshots_folder = str(tmp_path)
        ss.timeout_sec, ss.max_tries, ss.buffer_ts, ss.pool_size = 3, 4, 0.5, 2
        assert ss.settings.folder == str(tmp_path)
        assert (ss.settings.timeout_sec, ss.settings.max_tries, ss.settings.buffer_ts) == (
            3,
            4,
            0.5,
        )
        assert ss.settings.pool_size == 2
        with pytest.raises(ValueError):
            ss.max_tries = 0
    assert ShotSaver(5).pool_size == 5


def test_save_returns_guid_and_path_at_once_and_statuses_arrive_in_order(saver: ShotSaver) -> None:
    calls = Calls()
    saver.callback = calls
    guid, path = saver.save("cam")
    assert isinstance(guid, str) and path.parent == Path(saver.screenshots_folder)
    assert calls.done.wait(5)
    assert calls.of(guid) == ["in_queue", "saving", "success"]
    assert path.read_bytes() == JPEG
    assert calls.threads == {"cuecap-shot-saver"}


def test_save_with_folder_name_dt_and_guid(saver: ShotSaver, tmp_path: Path) -> None:
    calls = Calls()
    midnight = datetime.datetime.combine(datetime.date(2026, 1, 2), datetime.time())
    guid, path = saver.save(
        "cam",
        dt=midnight,
        file_name="{camera} %Y-%m-%d %H%M.jpg",
        file_path=tmp_path / "other",
        callback=calls,
        task_guid="my-guid",
    )
    assert guid == "my-guid"
    assert path == tmp_path / "other" / "cam 2026-01-02 0000.jpg"
    assert calls.done.wait(5) and path.exists()


def test_errors_reach_the_callback_with_a_reason(saver: ShotSaver) -> None:
    reasons: list[str] = []
    calls = Calls()

    def cb(guid: str, state: str) -> None:
        calls(guid, state)
        if state == status.error:
            reasons.append(state.reason)  # type: ignore[attr-defined]

    guid, path = saver.save("bad", callback=cb)
    assert calls.done.wait(5)
    assert calls.of(guid) == ["in_queue", "saving", "saving", "error"]
    assert reasons == ["camera offline"] and not path.exists()


def test_get_delivers_bytes_or_shot_failed_and_writes_nothing(
    saver: ShotSaver, tmp_path: Path
) -> None:
    results: list[Any] = []
    got = threading.Event()

    def show(result: Any) -> None:
        results.append(result)
        got.set()

    saver.get("cam", callback=show)
    assert got.wait(5) and results == [JPEG]
    got.clear()
    saver.get("bad", callback=show)
    assert got.wait(5)
    assert isinstance(results[1], ShotFailed) and results[1].reason == "camera offline"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(EnvironmentError, match="needs a callback"):
        saver.get("cam")


def test_grab_blocks_for_bytes(saver: ShotSaver) -> None:
    assert saver.grab("cam") == JPEG
    with pytest.raises(ShotFailed, match="camera offline"):
        saver.grab("bad")


def test_rejections_are_raised_in_the_callers_thread(tmp_path: Path) -> None:
    release = threading.Event()

    def slow(request: CaptureRequest) -> bytes:
        release.wait(5)
        return JPEG

    ss = ShotSaver(
        1, cameras={"slow": PythonCamera("slow", slow)}, queue_size=2, screenshots_folder=tmp_path
    )
    try:
        with pytest.raises(UnknownCamera, match="no camera named 'nope'"):
            ss.save("nope")
        ss.save("slow", file_name="{seq}.jpg")
        ss.save("slow", file_name="{seq}.jpg")
        ss.save("slow", file_name="{seq}.jpg")  # one running, two waiting
        with pytest.raises(QueueFull):
            for _ in range(3):
                ss.save("slow", file_name="{seq}.jpg")
        release.set()
        assert ss.wait(5)
        assert ss.stats.succeeded == 3 and ss.stats.max_in_flight == 1
    finally:
        release.set()
        ss.close()
    with pytest.raises(SaverClosed):
        ss.save("slow")


def test_a_callback_may_save_again_without_deadlock(saver: ShotSaver) -> None:
    chain: list[str] = []
    done = threading.Event()

    def cb(guid: str, state: str) -> None:
        if state == status.success:
            chain.append(guid)
            if len(chain) < 3:
                saver.save("cam", callback=cb)
            else:
                done.set()

    saver.save("cam", callback=cb)
    assert done.wait(5) and len(chain) == 3


def test_raising_callback_is_logged_not_lost(
    saver: ShotSaver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="engine.shots.service")

    def cb(guid: str, state: str) -> None:
        raise ValueError(f"bad callback on {state}")

    saver.save("cam", callback=cb)
    assert saver.wait(5)
    messages = [r for r in caplog.records if "shot callback" in r.getMessage()]
    assert len(messages) == 3 and all(r.exc_info and r.exc_info[0] is ValueError for r in messages)


async def test_usable_from_inside_a_running_loop(saver: ShotSaver) -> None:
    _, path = saver.save("cam")
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, saver.wait, 5)
    assert path.exists()


def test_http_camera_by_url_and_from_file(tmp_path: Path) -> None:
    with HttpCameraServer() as cam:
        with ShotSaver(cameras={"door": cam.url()}, screenshots_folder=tmp_path) as ss:
            _, path = ss.save("door")
            assert ss.wait(5) and path.read_bytes() == cam.jpeg
        config = tmp_path / "cams.yaml"
        config.write_text(
            f"cameras:\n  door:\n    type: http\n    url: {cam.url()}\n"
            f"settings:\n  shots:\n    folder: {tmp_path / 'f'}\n    pool_size: 3\n"
        )
        with CompatSaver.from_file(config) as ss:
            assert ss.pool_size == 3
            _, path = ss.save("door")
            assert ss.wait(5) and path.parent == tmp_path / "f"


AT_EXIT = """
import time
from engine.shots import PythonCamera, ShotSaver, ShotsConfig
from engine.shots.testing import make_jpeg

settings = ShotsConfig(folder={folder!r}, timeout_sec=0.2, max_tries=1, backoff_max=0)
ss = ShotSaver(cameras={{"cam": PythonCamera("cam", lambda r: make_jpeg())}}, settings=settings)
report = lambda guid, state: state in ("success", "error") and print(guid, state, flush=True)
ss.save("cam", callback=report, task_guid="now", file_name="now.jpg")
ss.save("cam", dt=time.time() + 3600, callback=report, task_guid="later")
"""


def test_program_exit_finishes_queued_shots_and_abandons_far_future_ones(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    script = AT_EXIT.format(folder=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split("\n")[:2]) == ["later error", "now success"]
    assert (tmp_path / "now.jpg").read_bytes().startswith(b"\xff\xd8")


def test_a_saver_whose_loop_cannot_start_raises_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_start(self: ShotService) -> None:
        raise RuntimeError("cannot start")

    monkeypatch.setattr(ShotService, "start", broken_start)
    outcome: list[BaseException] = []

    def construct() -> None:
        try:
            ShotSaver(screenshots_folder=tmp_path)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=construct, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "ShotSaver() hung"
    assert len(outcome) == 1 and "cannot start" in str(outcome[0])


def test_saves_from_many_threads_keep_the_contract(tmp_path: Path) -> None:
    """Requests decided in the callers' threads: order, one final each, pool bound, files."""
    in_flight = [0, 0, 0]  # now, most, calls
    lock = threading.Lock()

    async def varying(request: CaptureRequest) -> bytes:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
            in_flight[2] += 1
            n = in_flight[2]
        try:
            await asyncio.sleep(0.0005 * (n % 3))
            if n % 5 == 0:
                raise CaptureError("flaky")
            return JPEG
        finally:
            with lock:
                in_flight[0] -= 1

    calls = Calls()
    settings = ShotsConfig(backoff=0.001, backoff_max=0.002, pool_size=3, queue_size=2000)
    paths: dict[str, Path] = {}
    rejected = [0]
    with ShotSaver(
        cameras={"cam": PythonCamera("cam", varying)},
        settings=settings,
        screenshots_folder=tmp_path,
        callback=calls,
    ) as ss:

        def burst() -> None:
            for _ in range(150):
                try:
                    guid, path = ss.save("cam", file_name="{seq}.jpg")
                except QueueFull:
                    rejected[0] += 1
                    continue
                with lock:
                    paths[guid] = path

        threads = [threading.Thread(target=burst) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert ss.wait(20)
        stats = ss.stats
    assert rejected[0] == 0 and len(paths) == 600 and len(set(paths.values())) == 600
    assert stats.max_in_flight <= 3 and in_flight[1] <= 3
    for guid, path in paths.items():
        history = calls.of(guid)
        finals = [s for s in history if s in ("success", "error")]
        assert history[0] == "in_queue" and history.count("in_queue") == 1
        assert len(finals) == 1 and history[-1] == finals[0]
        assert path.exists() == (finals[0] == "success")
    assert calls.threads == {"cuecap-shot-saver"}


def test_closing_while_other_threads_save_gives_every_accepted_shot_a_final_status(
    tmp_path: Path,
) -> None:
    calls = Calls()
    accepted: list[str] = []
    refused = threading.Event()

    async def slow(request: CaptureRequest) -> bytes:
        await asyncio.sleep(0.002)
        return JPEG

    ss = ShotSaver(
        2,
        cameras={"cam": PythonCamera("cam", slow)},
        screenshots_folder=tmp_path,
        queue_size=10_000,
        callback=calls,
    )

    def keep_saving() -> None:
        while True:
            try:
                accepted.append(ss.save("cam", file_name="{seq}.jpg")[0])
            except SaverClosed:
                refused.set()
                return

    saver_thread = threading.Thread(target=keep_saving)
    saver_thread.start()
    while len(accepted) < 50:
        threading.Event().wait(0.001)
    ss.close(graceful=False)
    saver_thread.join(10)
    assert refused.is_set() and not saver_thread.is_alive()
    finals = {g: [s for s in calls.of(g) if s in ("success", "error")] for g in accepted}
    assert all(len(f) == 1 for f in finals.values()), "a shot without exactly one final status"
    assert all(calls.of(g)[0] == "in_queue" for g in accepted)
    assert any(f == ["error"] for f in finals.values())  # most were still waiting


def test_three_saves_to_one_file_name_leave_three_files(tmp_path: Path) -> None:
    count = [0]
    lock = threading.Lock()

    def numbered(request: CaptureRequest) -> bytes:
        with lock:
            count[0] += 1
            return make_jpeg(text=request.task[:6])

    calls = Calls()
    with ShotSaver(
        cameras={"cam": PythonCamera("cam", numbered)}, screenshots_folder=tmp_path, callback=calls
    ) as ss:
        made = [ss.save("cam", file_name="snap.jpg") for _ in range(3)]
        assert ss.wait(5)
    assert [p.name for _, p in made] == ["snap.jpg", "snap (2).jpg", "snap (3).jpg"]
    for guid, path in made:  # each path holds that very shot
        assert calls.of(guid) == ["in_queue", "saving", "success"]
        assert path.read_bytes() == make_jpeg(text=guid[:6])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for _, p in made)


def test_saves_to_one_name_from_many_threads_each_get_their_own_file(tmp_path: Path) -> None:
    def numbered(request: CaptureRequest) -> bytes:
        return make_jpeg(text=request.task[:8])

    made: list[tuple[str, Path]] = []
    lock = threading.Lock()
    calls = Calls()
    with ShotSaver(
        3,
        cameras={"cam": PythonCamera("cam", numbered)},
        screenshots_folder=tmp_path,
        callback=calls,
    ) as ss:

        def burst() -> None:
            for _ in range(40):
                shot = ss.save("cam", file_name="same.jpg")
                with lock:
                    made.append(shot)

        threads = [threading.Thread(target=burst) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert ss.wait(20)
    names = {p.name for _, p in made}
    assert len(made) == len(names) == 160 and "same.jpg" in names and "same (160).jpg" in names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    for guid, path in made:
        assert calls.of(guid)[-1] == "success" and path.read_bytes() == make_jpeg(text=guid[:8])
