"""What a recorder's flush_interval is counted in: receive time live, the wall clock in virtual time.

Live, a crash loses at most ``flush_interval`` seconds of records, because the
writer flushes as receive time (the wall clock) passes. In virtual time receive
time runs far ahead of the wall clock, so the writer flushes only when told and
the engine tells it every ``flush_interval`` of wall time: a replay flushes as
rarely as a live run, and a crash during it still loses at most that much.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

from recorder_streams import event_bytes

from engine.core.clock import FlushClock, ManualClock, SystemClock
from engine.core.frame import Frame
from engine.recorder.config import RecorderConfig
from engine.recorder.recorder import Recorder
from engine.rules.loader import load_rules
from engine.runtime.engine import Engine
from engine.runtime.timebase import LiveTime, VirtualTime

INTERVAL = 0.05  # seconds of receive time
# Seconds of wall time in the engine's test: long beside the time 100 frames take, so
# nothing is flushed before the test looks, yet little to wait.
WALL_INTERVAL = 0.3
RECORD = 4 + len(event_bytes("temperature_control"))  # header + message


def _recorder(root: Path, flushes: FlushClock) -> Recorder:
    config = RecorderConfig.model_validate(
        {"activity": [{"type": "message", "types": ["electrode_state"]}], "post_roll": 1000,
         "flush_interval": INTERVAL, "file_name": "{seq}.bin"}
    )  # fmt: skip
    return Recorder("rec", config, root=root, emit=lambda e: None, clock=ManualClock(0.0),
                    flushes=flushes)  # fmt: skip


def _feed(recorder: Recorder, times: list[float]) -> None:
    recorder.feed(Frame(event_bytes("electrode_state"), times[0], 0, "pd"))
    for seq, t in enumerate(times[1:], 1):
        recorder.feed(Frame(event_bytes("temperature_control"), t, seq, "pd"))


def _on_disk(recorder: Recorder) -> int:
    path = recorder.path
    assert path is not None
    return path.stat().st_size


def test_live_time_flushes_by_receive_time_and_virtual_time_when_told() -> None:
    assert LiveTime().flushes is FlushClock.RECEIVE_TIME
    assert VirtualTime(ManualClock(0.0)).flushes is FlushClock.WHEN_TOLD


def test_on_receive_time_a_crash_loses_at_most_the_interval(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path, FlushClock.RECEIVE_TIME)
    _feed(recorder, [10.0, 10.01, 10.02])
    written = _on_disk(recorder)
    _feed(recorder, [10.0 + INTERVAL + 0.01])  # the interval passed: flushed
    assert _on_disk(recorder) > written
    assert recorder.files.flush_interval == INTERVAL
    recorder.close()


def test_a_clock_stepped_back_still_flushes_on_the_next_tick(tmp_path: Path) -> None:
    """Live, receive time is the wall clock, which NTP may step back: the next tick
    flushes (it waited for the old time to come again: an hour's step, an hour unflushed)."""
    recorder = _recorder(tmp_path, FlushClock.RECEIVE_TIME)
    _feed(recorder, [10_000.0, 10_000.01])
    _feed(recorder, [6_400.0, 6_400.01])  # the clock stepped back an hour
    written = _on_disk(recorder)
    recorder.tick(6_400.02)
    assert _on_disk(recorder) > written
    recorder.close()


def test_when_told_receive_time_never_flushes_but_flush_does(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path, FlushClock.WHEN_TOLD)
    _feed(recorder, [10.0 + i for i in range(100)])  # 100 s of receive time: 2000 intervals
    before = _on_disk(recorder)
    recorder.tick(200.0)  # a tick flushes only what is due by receive time: nothing
    assert _on_disk(recorder) == before
    recorder.flush(200.0)
    assert _on_disk(recorder) >= before + 99 * RECORD  # every record reached the OS
    recorder.close()


class _Stalling:
    """Frames over 100 s of stream at once, then nothing until released (a slow disk read)."""

    def __init__(self) -> None:
        self.sent = asyncio.Event()
        self.release = asyncio.Event()

    def __aiter__(self) -> AsyncIterator[Frame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[Frame]:
        yield Frame(event_bytes("electrode_state"), 1000.0, 0, "pd")
        for seq in range(1, 100):
            yield Frame(event_bytes("temperature_control"), 1000.0 + seq, seq, "pd")
        self.sent.set()
        await self.release.wait()


async def test_a_virtual_run_flushes_on_the_wall_clock(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            settings: {{timezone: UTC, recordings: {tmp_path / "rec"}}}
            sources:
              pd: {{type: simulator}}
            recorders:
              moves:
                source: pd
                activity: [{{type: message, types: [electrode_state]}}]
                post_roll: 1000s
                flush_interval: {WALL_INTERVAL}s
                file_name: "{{seq}}.bin"
            """
        ),
        encoding="utf-8",
    )
    source = _Stalling()
    engine = Engine(load_rules([path], env={}), clock=ManualClock(1000.0), sources={"pd": source})
    run = asyncio.create_task(engine.run())
    await asyncio.wait_for(source.sent.wait(), 10)
    recorder = engine.recorders["moves"]
    assert recorder.flushes is FlushClock.WHEN_TOLD
    # 99 s of stream went by in no wall time: nothing was flushed for it.
    assert _on_disk(recorder) == 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while _on_disk(recorder) < 99 * RECORD and loop.time() < deadline:
        await asyncio.sleep(WALL_INTERVAL / 10)
    assert _on_disk(recorder) >= 99 * RECORD  # the wall clock's interval flushed it
    source.release.set()
    await asyncio.wait_for(run, 10)


def test_a_live_engine_leaves_flushing_to_receive_time(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        f"settings: {{recordings: {tmp_path}}}\nsources:\n  pd: {{type: simulator}}\n"
        "recorders:\n  moves: {activity: [{type: message, types: [electrode_state]}]}\n",
        encoding="utf-8",
    )
    engine = Engine(load_rules([path], env={}), clock=SystemClock())
    assert engine.time.flushes is FlushClock.RECEIVE_TIME
    assert engine._build_recorder("moves", engine.rules).flushes is FlushClock.RECEIVE_TIME


class _Told:
    """A recorder as the wall-clock flusher sees it: its interval, and when it was told."""

    def __init__(self, flush_interval: float) -> None:
        self.config = RecorderConfig.model_validate(
            {"activity": [{"type": "message", "types": ["electrode_state"]}],
             "flush_interval": flush_interval}
        )  # fmt: skip
        self.told = asyncio.Event()

    def flush(self, now: float) -> None:
        self.told.set()


async def test_a_reload_s_new_or_changed_recorder_is_flushed_without_waiting() -> None:
    """The flusher slept to the next due flush: a recorder a reload added (or changed,
    under the same name) waited for an old one's hour. It is flushed on sight now."""
    from engine.runtime.timebase import _flush_on_the_wall_clock

    current: dict[str, _Told] = {"slow": _Told(3600.0), "moves": _Told(3600.0)}
    looked = asyncio.Event()

    def recorders() -> dict[str, _Told]:
        looked.set()
        return current

    flusher = asyncio.create_task(_flush_on_the_wall_clock(recorders, lambda: 0.0, 0.01))
    await asyncio.wait_for(looked.wait(), 10)  # seen: both scheduled an hour on
    assert not current["moves"].told.is_set()
    added, changed = _Told(3600.0), _Told(3600.0)
    current["fast"] = added
    current["moves"] = changed
    await asyncio.wait_for(added.told.wait(), 10)
    await asyncio.wait_for(changed.told.wait(), 10)
    flusher.cancel()
