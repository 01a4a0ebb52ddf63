"""The pure core of the shot saver: queue, limits, retry policy, paths, JPEG checks; files."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.templates import PathEscapeError, TemplateError, safe_join
from engine.shots.config import OnExists
from engine.shots.files import ShotFile, write_atomic
from engine.shots.jpeg import jpeg_problem, jpeg_problem_thorough
from engine.shots.paths import MAX_CANDIDATES, PlannedPath, plan_path, render_path, temp_path
from engine.shots.policy import CameraGate, InlineWrites, RetryPolicy, plan_time
from engine.shots.queue import Outcome, ShotQueue, ShotTask
from engine.shots.status import ShotStatus, StatusUpdate, status
from engine.shots.testing import make_jpeg


def task(guid: str, camera: str = "cam", at: float = 0.0, tries: int = 2) -> ShotTask:
    return ShotTask(
        guid=guid,
        camera=camera,
        created=at,
        not_before=at,
        shot_time=at,
        live=True,
        path=None,
        max_tries=tries,
        timeout=1.0,
    )


def queue(pool: int = 2, rand: float = 0.5) -> ShotQueue:
    return ShotQueue(pool_size=pool, retry=RetryPolicy(1.0, 2.0, 10.0, 0.5), random=lambda: rand)


# -- retry policy ------------------------------------------------------------


def test_backoff_grows_exponentially_up_to_the_cap_with_bounded_jitter() -> None:
    policy = RetryPolicy(backoff=0.5, factor=2.0, cap=3.0, jitter=0.0)
    assert [policy.delay(n, 0.9) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = RetryPolicy(backoff=1.0, factor=2.0, cap=30.0, jitter=0.5)
    assert jittered.delay(1, 0.0) == pytest.approx(0.5)
    assert jittered.delay(1, 0.999999) == pytest.approx(1.5, rel=1e-5)
    draws = {round(jittered.delay(2, random.Random(i).random()), 6) for i in range(20)}
    assert len(draws) > 10 and all(1.0 <= d <= 3.0 for d in draws)


# -- per-camera gates and time planning -------------------------------------


def test_gate_delay_admits_everything_and_spaces_starts() -> None:
    gate = CameraGate(max_in_flight=1, min_interval=2.0, throttle="delay")
    assert gate.can_start(0.0)
    gate.started(0.0)
    assert not gate.can_start(0.5)  # in flight
    gate.finished()
    assert not gate.can_start(1.9)  # interval
    assert gate.start_at() == 2.0 and gate.can_start(2.0)


def test_plan_time_live_future_and_archive() -> None:
    assert plan_time(None, 100.0, 0.5, 2.0) == (100.0, True, 100.5)
    assert plan_time(103.0, 100.0, 0.0, 2.0) == (103.0, True, 103.0)  # future: wait, then live
    assert plan_time(99.0, 100.0, 0.0, 2.0) == (99.0, True, 100.0)  # just past: live
    assert plan_time(90.0, 100.0, 1.0, 2.0) == (90.0, False, 101.0)  # archive


# -- the queue ---------------------------------------------------------------


def test_queue_never_starts_more_than_pool_size_and_keeps_request_order() -> None:
    q = queue(pool=2)
    for i, cam in enumerate(["x", "y", "x", "z"]):
        q.add(task(str(i), cam))
    first = q.take(0.0)
    assert [t.guid for t in first] == ["0", "1"] and q.in_flight == 2
    assert q.take(0.0) == []
    assert q.done(first[0], 0.1, None) == (Outcome.success, 0.1)
    assert [t.guid for t in q.take(0.1)] == ["2"]
    assert q.max_in_flight == 2


def test_a_busy_camera_does_not_block_the_others() -> None:
    q = queue(pool=3)
    q.gate("slow").max_in_flight = 1
    for i in range(3):
        q.add(task(f"s{i}", "slow"))
    q.add(task("f", "fast"))
    started = [t.guid for t in q.take(0.0)]
    assert started == ["s0", "f"]


def test_buffered_tasks_wait_and_next_wake_says_when() -> None:
    q = queue()
    t = task("a")
    t.not_before = 5.0
    q.add(t)
    assert q.take(4.999) == []
    assert q.next_wake(4.999) == 5.0
    assert [x.guid for x in q.take(5.0)] == ["a"]


def test_failed_try_is_retried_after_backoff_then_fails_for_good() -> None:
    q = queue(rand=0.5)
    q.add(task("a", tries=2))
    (t,) = q.take(0.0)
    outcome, at = q.done(t, 1.0, "HTTP 500")
    assert outcome is Outcome.retry and at == pytest.approx(2.0)
    assert t.state is ShotStatus.in_queue and q.waiting == 1
    assert q.take(1.5) == []
    (t2,) = q.take(2.0)
    assert t2 is t and t.tries == 2
    assert q.done(t, 2.5, "HTTP 500") == (Outcome.error, 2.5)
    assert t.state is ShotStatus.error and t.reason == "HTTP 500" and q.waiting == 0


def test_permanent_failures_are_not_retried() -> None:
    q = queue()
    q.add(task("a", tries=5))
    (t,) = q.take(0.0)
    assert q.done(t, 0.0, "HTTP 401", retryable=False)[0] is Outcome.error


def test_throttle_delay_spaces_starts_and_wakes_for_them() -> None:
    q = queue(pool=5)
    gate = q.gate("gate")
    gate.min_interval, gate.throttle = 10.0, "delay"
    q.add(task("a", "gate"))
    q.add(task("b", "gate"))
    (a,) = q.take(0.0)
    q.done(a, 0.2, None)
    assert q.take(0.2) == []
    assert q.next_wake(0.2) == 10.0
    assert [t.guid for t in q.take(10.0)] == ["b"]


def test_remove_waiting_returns_every_unstarted_task_in_order() -> None:
    q = queue(pool=1)
    for name in "abc":
        q.add(task(name))
    q.take(0.0)
    assert [t.guid for t in q.remove_waiting()] == ["b", "c"]
    assert q.waiting == 0 and q.take(1.0) == []


@settings(max_examples=60, deadline=None)
@given(
    pool=st.integers(1, 4),
    ops=st.lists(
        st.tuples(st.sampled_from(["add", "ok", "fail", "tick"]), st.integers(0, 2)), max_size=80
    ),
)
def test_queue_invariants_under_any_sequence(pool: int, ops: list[tuple[str, int]]) -> None:
    q = queue(pool=pool, rand=0.0)
    q.gate("c1").max_in_flight = 1
    now = 0.0
    running: list[ShotTask] = []
    finals: dict[str, int] = {}
    made = 0
    for op, arg in ops:
        if op == "add":
            made += 1
            q.add(task(f"t{made}", f"c{arg}", now, tries=2))
        elif op in ("ok", "fail") and running:
            t = running.pop(arg % len(running))
            outcome, _ = q.done(t, now, None if op == "ok" else "boom")
            if outcome is not Outcome.retry:
                finals[t.guid] = finals.get(t.guid, 0) + 1
        else:
            now += 1.0
        running.extend(q.take(now))
        assert q.in_flight == len(running) <= pool
        assert sum(1 for t in running if t.camera == "c1") <= 1
    while running or q.waiting:
        now += 1.0
        running.extend(q.take(now))
        t = running.pop()
        outcome, _ = q.done(t, now, None)
        finals[t.guid] = finals.get(t.guid, 0) + 1
    assert len(finals) == made and set(finals.values()) <= {1}


# -- status values -----------------------------------------------------------


def test_status_updates_compare_like_the_seed_and_carry_details() -> None:
    update = StatusUpdate(
        ShotStatus.error, task="g", camera="c", path=None, try_number=2, reason="HTTP 500", time=1.0
    )
    assert update == status.error and update != status.success
    assert update.reason == "HTTP 500" and update.final and update.status is ShotStatus.error
    assert [s.value for s in status] == ["in_queue", "saving", "success", "error"]


# -- paths -------------------------------------------------------------------

WHEN = datetime(2026, 3, 4, 5, 6, 7, 890123)


def test_render_path_fills_fields_then_dates_and_stays_inside_root(tmp_path: Path) -> None:
    path = render_path(
        tmp_path,
        "{server}/%Y.%m.%d/{camera}",
        "{camera} (%H-%M-%S.%f).jpg",
        {"camera": "Gate|1", "server": "srv"},
        WHEN,
    )
    assert path == tmp_path / "srv" / "2026.03.04" / "Gate_1" / "Gate_1 (05-06-07.890123).jpg"
    assert render_path(tmp_path, "", "x.jpg", {}, WHEN) == tmp_path / "x.jpg"
    with pytest.raises(PathEscapeError):
        render_path(tmp_path, "../..", "x.jpg", {}, WHEN)


@given(
    sub=st.text(alphabet="ab. /\\:|", max_size=6),
    name=st.text(alphabet="ab. /\\:|C", max_size=6),
)
def test_render_path_is_safe_join_of_folder_and_name(sub: str, name: str) -> None:
    """The one-component shortcut gives what safe_join gives, refusals included."""
    root = Path("/shots/root")
    try:
        expected: Path | type[Exception] = safe_join(root, f"{sub}/{name}" if sub else name)
    except PathEscapeError:
        expected = PathEscapeError
    try:
        got: Path | type[Exception] = render_path(root, sub, name, {}, WHEN)
    except PathEscapeError:
        got = PathEscapeError
    assert got == expected


ROOT = "/shots"
STAMP = datetime(2026, 3, 4, 5, 6, 7, 890123).timestamp()  # local time
NAME = "{camera} (%H-%M-%S.%f).jpg"


@pytest.mark.parametrize(
    ("file_name", "folder", "on_exists", "taken", "start", "expected"),
    [
        # free names are used as they are, whatever on_exists says
        (NAME, "", OnExists.unique, set(), {}, ("cam (05-06-07.890123).jpg", 1, False)),
        ("x.jpg", "{camera}/%Y", OnExists.error, set(), {}, ("cam/2026/x.jpg", 1, False)),
        # a taken name: numbered before the extension, the first free number
        ("x.jpg", "", OnExists.unique, {"x.jpg"}, {}, ("x (2).jpg", 2, False)),
        ("x.jpg", "", OnExists.unique, {"x.jpg", "x (2).jpg"}, {}, ("x (3).jpg", 3, False)),
        ("x", "", OnExists.unique, {"x"}, {}, ("x (2)", 2, False)),
        ("a.tar.gz", "", OnExists.unique, {"a.tar.gz"}, {}, ("a.tar (2).gz", 2, False)),
        ("{seq}.jpg", "d", OnExists.unique, {"d/7.jpg"}, {}, ("d/7 (2).jpg", 2, False)),
        # numbering starts where the last shot of that name stopped
        ("x.jpg", "", OnExists.unique, {"x.jpg"}, {"/shots/x.jpg": 9}, ("x (9).jpg", 9, False)),
        ("x.jpg", "", OnExists.unique, set(), {"/shots/x.jpg": 9}, ("x.jpg", 1, False)),
        # replace never asks; error refuses the taken name
        ("x.jpg", "", OnExists.replace, {"x.jpg"}, {}, ("x.jpg", 1, False)),
        ("x.jpg", "", OnExists.error, {"x.jpg"}, {}, ("x.jpg", 1, True)),
    ],
)
def test_plan_path(
    file_name: str,
    folder: str,
    on_exists: OnExists,
    taken: set[str],
    start: dict[str, int],
    expected: tuple[str, int, bool],
) -> None:
    asked: list[str] = []

    def is_taken(path: str) -> bool:
        asked.append(path)
        return path[len(ROOT) + 1 :] in taken

    planned = plan_path(
        root=ROOT,
        folder=folder,
        file_name=file_name,
        values={"camera": "cam", "seq": 7},
        when=STAMP,
        tz=None,
        on_exists=on_exists,
        taken=is_taken,
        start=start,
    )
    name, number, clash = expected
    assert (planned.path, planned.number, planned.clash) == (Path(ROOT, name), number, clash)
    assert planned.wanted == Path(ROOT, name) if number == 1 else planned.wanted != planned.path
    assert asked == [] if on_exists is OnExists.replace else asked[-1] == str(planned.path)


def test_plan_path_dates_follow_the_zone_and_bad_names_raise() -> None:
    from zoneinfo import ZoneInfo

    def plan(**kw: object) -> PlannedPath:
        args: dict[str, object] = {
            "root": ROOT,
            "folder": "",
            "file_name": "%Y-%m-%d %H.jpg",
            "values": {},
            "when": 0.0,
            "tz": ZoneInfo("UTC"),
            "on_exists": OnExists.unique,
            "taken": lambda path: False,
        }
        return plan_path(**{**args, **kw})  # type: ignore[arg-type]

    assert plan().path.name == "1970-01-01 00.jpg"
    assert plan(tz=ZoneInfo("Asia/Tokyo")).path.name == "1970-01-01 09.jpg"
    with pytest.raises(PathEscapeError):
        plan(folder="../..")
    with pytest.raises(TemplateError):
        plan(file_name="{camera.__class__}.jpg")
    everything = plan(file_name="x.jpg", taken=lambda path: True)
    assert everything.clash and everything.path == Path(ROOT, "x.jpg")
    tried: list[str] = []
    plan(file_name="x.jpg", taken=lambda path: tried.append(path) or True)
    assert len(tried) == 1 + MAX_CANDIDATES  # bounded: the name, then that many numbers


def test_write_atomic_leaves_only_the_final_file(tmp_path: Path) -> None:
    final = tmp_path / "d" / "shot.jpg"
    write_atomic(final, b"data", "abcdef")
    assert final.read_bytes() == b"data"
    assert sorted(p.name for p in final.parent.iterdir()) == ["shot.jpg"]
    assert temp_path(final, "abcdef").name == ".shot.jpg.abcdef.part"
    write_atomic(final, b"more", "abcdef")  # replace (the default) writes over it
    assert final.read_bytes() == b"more"


@pytest.mark.parametrize("replace", [False, True])
def test_shot_file_created_early_then_committed_or_discarded(tmp_path: Path, replace: bool) -> None:
    kept = ShotFile(tmp_path / "new" / "a.jpg", "t1", replace=replace)
    dropped = ShotFile(tmp_path / "b.jpg", "t2", replace=replace)
    kept.create()  # the folder is made when missing
    dropped.create()
    hidden = sorted(p.name for p in tmp_path.rglob("*.part"))
    # replace: hidden temporaries beside the names; else anonymous files, no name at all
    assert hidden == ([".a.jpg.t1.part", ".b.jpg.t2.part"] if replace else [])
    assert kept.anonymous == dropped.anonymous == (not replace)
    kept.commit(b"data")
    dropped.discard()
    kept.discard()  # nothing once committed
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "new/a.jpg"
    ]
    assert (tmp_path / "new" / "a.jpg").read_bytes() == b"data"


def test_a_shot_file_never_writes_over_another_unless_told(tmp_path: Path) -> None:
    final = tmp_path / "shot.jpg"
    final.write_bytes(b"first")
    early = ShotFile(final, "t1", replace=False)
    early.create()
    with pytest.raises(FileExistsError):
        early.commit(b"second")
    with pytest.raises(FileExistsError):
        write_atomic(final, b"third", "t2", replace=False)
    assert final.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.jpg"]
    write_atomic(final, b"fourth", "t3", replace=True)
    assert final.read_bytes() == b"fourth"


def test_a_shot_file_falls_back_to_a_named_temporary_where_links_of_descriptors_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No /proc (or a file system without O_TMPFILE): hidden name, linked, then removed."""
    import engine.shots.files as files

    monkeypatch.setattr(files, "_anonymous", True)
    monkeypatch.setattr(files, "_proc_fd", None)
    monkeypatch.setattr(files.os, "open", _refusing_proc(files.os.open))
    write_atomic(tmp_path / "a.jpg", b"data", "t1", replace=False)
    assert not files._anonymous  # found out once, remembered
    write_atomic(tmp_path / "b.jpg", b"data", "t2", replace=False)
    with pytest.raises(FileExistsError):
        write_atomic(tmp_path / "b.jpg", b"other", "t3", replace=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "b.jpg"]
    assert (tmp_path / "b.jpg").read_bytes() == b"data"


def _refusing_proc(real: Callable[..., int]) -> Callable[..., int]:
    def fake(path: str, flags: int, *args: int, **kw: int) -> int:
        if path == "/proc/self/fd":
            raise FileNotFoundError(2, "No such file or directory", path)
        return real(path, flags, *args, **kw)

    return fake


@pytest.mark.parametrize("replace", [False, True])
def test_write_atomic_failure_leaves_nothing(tmp_path: Path, replace: bool) -> None:
    final = tmp_path / "shot.jpg"
    final.mkdir()  # rename or link onto a folder fails
    with pytest.raises(OSError):
        write_atomic(final, b"data", "abc", replace=replace)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.jpg"]
    assert final.is_dir()


# -- where files are written -------------------------------------------------


def test_inline_writes_for_small_files_until_a_write_is_slow() -> None:
    w = InlineWrites(max_bytes=1000, slow=0.05, pause=5.0, max_pause=12.0)
    assert w.inline(1000, 0.0) and not w.inline(1001, 0.0)
    assert w.took(0.01, 0.0) is None and w.inline(10, 0.0)
    assert w.took(0.2, 100.0) == 5.0  # slow: worker threads for 5 s
    assert not w.inline(10, 104.9) and w.inline(10, 105.0)
    assert w.took(0.2, 105.0) == 10.0  # slow again at once: twice as long
    assert w.took(0.2, 115.0) == 12.0  # up to max_pause
    assert not w.inline(10, 126.9) and w.inline(10, 127.0)
    assert w.took(0.001, 127.0) is None  # a quick write: back to the short pause
    assert w.took(0.2, 200.0) == 5.0


# -- JPEG checks -------------------------------------------------------------


def test_jpeg_checks_catch_html_truncation_and_corruption() -> None:
    good = make_jpeg()
    assert jpeg_problem(good) is None and jpeg_problem_thorough(good) is None
    assert jpeg_problem(good + b"\x00\x00") is None  # padding after EOI
    assert "HTML page" in (jpeg_problem(b"<!DOCTYPE html><html>login</html>") or "")
    assert "incomplete JPEG" in (jpeg_problem(good[:-10]) or "")
    assert "empty" in (jpeg_problem(b"") or "")
    corrupt = good[:200] + b"\x00" * (len(good) - 202) + b"\xff\xd9"
    assert jpeg_problem(corrupt) is None
    assert jpeg_problem_thorough(corrupt) is not None
