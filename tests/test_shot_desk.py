"""ShotDesk: what a shot request gets back at once, decided without a loop, a disk or a clock."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from engine.shots import CameraCommon, PythonCamera, ShotsConfig
from engine.shots.config import OnExists
from engine.shots.desk import ShotDesk, ShotRequest
from engine.shots.status import QueueFull, SaverClosed, Throttled, UnknownCamera


def desk(on_disk: set[str] | None = None, **settings: object) -> ShotDesk:
    ids = (f"{n:032x}" for n in itertools.count(1))
    d = ShotDesk(
        ShotsConfig(folder="/shots", **settings),  # type: ignore[arg-type]
        server="srv",
        exists=(on_disk if on_disk is not None else set()).__contains__,
        cwd=lambda: "/work",
        guid=lambda: next(ids),
    )
    d.register("cam", PythonCamera("cam", lambda r: b""))
    return d


def named(name: str, **kw: object) -> ShotRequest:
    return ShotRequest(file_name=name, **kw)  # type: ignore[arg-type]


def test_names_taken_by_files_or_by_shots_in_flight_get_numbers() -> None:
    d = desk(on_disk={"/shots/x.jpg"})
    first, second = (d.decide("cam", named("x.jpg"), 0.0) for _ in range(2))
    assert (first.path, second.path) == (Path("/shots/x (2).jpg"), Path("/shots/x (3).jpg"))
    d.release(first)  # x (2).jpg is free again: the next gets it
    assert d.decide("cam", named("y.jpg"), 0.0).path == Path("/shots/y.jpg")
    assert d.decide("cam", named("x.jpg"), 0.0).path == Path("/shots/x (4).jpg")  # from the hint


def test_on_exists_from_the_request_the_camera_or_the_settings() -> None:
    d = desk(on_disk={"/shots/x.jpg"}, on_exists="error")
    refused = d.decide("cam", named("x.jpg"), 0.0)
    assert refused.clash and refused.reason == "/shots/x.jpg exists (on_exists: error)"
    replaced = d.decide("cam", named("x.jpg", on_exists=OnExists.replace), 0.0)
    assert replaced.path == Path("/shots/x.jpg") and replaced.replace and not replaced.clash
    d.register("own", PythonCamera("own", lambda r: b"", CameraCommon(on_exists=OnExists.unique)))
    assert d.decide("own", named("x.jpg"), 0.0).path == Path("/shots/x (2).jpg")
    busy = d.decide("own", named("z.jpg"), 0.0)
    clash = d.decide("cam", named("z.jpg"), 0.0)
    assert (
        clash.clash and clash.reason == "another shot is saving to /shots/z.jpg (on_exists: error)"
    )
    assert busy.path == Path("/shots/z.jpg") and clash.path == busy.path
    d.release(clash)  # a clash reserved nothing: the name stays the first shot's
    assert d.taken("/shots/z.jpg")


def test_unfinished_shots_are_bounded_by_pool_plus_queue() -> None:
    asked: list[str] = []

    def exists(path: str) -> bool:
        asked.append(path)
        return False

    d = desk(pool_size=1, queue_size=2)
    d._exists = exists
    tasks = [d.decide("cam", named("{seq}.jpg"), 0.0) for _ in range(3)]
    with pytest.raises(QueueFull, match=r"queue is full .*pool_size=1 \+ queue_size=2"):
        d.decide("cam", named("{seq}.jpg"), 0.0, context=None)
    assert len(asked) == 3  # a refused flood costs no name and no question to the disk
    assert (d.admitted, d.rejected, d.unfinished) == (3, 1, 3)
    d.release(tasks[0])
    assert d.decide("cam", named("{seq}.jpg"), 0.0).path == Path("/shots/4.jpg")  # seq not spent


def test_skip_throttle_refuses_inside_min_interval_without_spending_it() -> None:
    d = desk()
    d.register("gate", PythonCamera("gate", lambda r: b"", CameraCommon(min_interval=5.0)))
    d.decide("gate", named("{seq}.jpg"), 100.0)
    with pytest.raises(Throttled, match="min_interval=5"):
        d.decide("gate", named("{seq}.jpg"), 104.9)
    assert d.decide("gate", named("{seq}.jpg"), 105.0).seq == 2
    d.register(
        "slow", PythonCamera("slow", lambda r: b"", CameraCommon(min_interval=5, throttle="delay"))
    )
    assert [d.decide("slow", named("a.jpg"), 0.0).seq for _ in range(2)] == [1, 2]


def test_refusals_keep_nothing() -> None:
    d = desk()
    with pytest.raises(UnknownCamera, match="no camera named 'nope' \\(known: cam\\)"):
        d.decide("nope", ShotRequest(), 0.0)
    kept = d.decide("cam", named("a.jpg", task_guid="g1"), 0.0)
    with pytest.raises(ValueError, match="already in use"):
        d.decide("cam", named("b.jpg", task_guid="g1"), 0.0)
    assert not d.taken("/shots/b.jpg")
    d.release(kept)
    assert d.decide("cam", named("b.jpg", task_guid="g1"), 0.0).guid == "g1"
    d.closed = True
    with pytest.raises(SaverClosed):
        d.decide("cam", ShotRequest(), 0.0)


def test_paths_fields_and_the_working_directory() -> None:
    d = desk(subfolder="{server}/{camera}", file_name="{rule}-{seq:03d}.jpg")
    task = d.decide("cam", ShotRequest(fields={"rule": "motion", "other": "x"}), 0.0)
    assert task.path == Path("/shots/srv/cam/motion-001.jpg")
    rel = d.decide("cam", ShotRequest(root="out", folder=""), 0.0)
    assert rel.path == Path("/work/out/_-002.jpg")  # an empty field is "_"
    assert d.decide("cam", ShotRequest(to_file=False), 0.0).path is None
