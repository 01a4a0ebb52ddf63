"""Builders of small, realistic PurpleDrop recordings for the log tool tests.

Events are built with the generated protobuf classes and written with the
real ``RecordingWriter``, so the files are exactly what ``cuecap record``
writes. Camera frames are tiny real JPEGs at irregular intervals.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from engine.core.frame import Gap, peek_kind
from engine.proto.purpledrop_pb2 import PurpleDropEvent
from engine.recording.writer import RecordingWriter

T0 = 1_714_557_600.0  # 2024-05-01 10:00:00 UTC


def _stamp(message, t: float) -> None:  # type: ignore[no-untyped-def]
    seconds = int(t)
    message.timestamp.seconds = seconds
    message.timestamp.nanos = round((t - seconds) * 1e9)


def jpeg(i: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small JPEG that differs from frame to frame (a moving square)."""
    img = Image.new("RGB", size, (20, 20, 40))
    draw = ImageDraw.Draw(img)
    x = (i * 5) % max(size[0] - 10, 1)
    draw.rectangle([x, 10, x + 10, 20], fill=(250, 200, 40))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


def image(t: float, data: bytes) -> bytes:
    ev = PurpleDropEvent()
    _stamp(ev.image, t)
    ev.image.image_data = data
    return ev.SerializeToString()


def image_transform(t: float, width: int = 64, height: int = 48) -> bytes:
    ev = PurpleDropEvent()
    _stamp(ev.image_transform, t)
    ev.image_transform.transform.extend([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    ev.image_transform.image_width = width
    ev.image_transform.image_height = height
    return ev.SerializeToString()


def active(t: float, calibrated: float, baseline: float = 1.5) -> bytes:
    ev = PurpleDropEvent()
    msg = ev.active_capacitance
    _stamp(msg, t)
    msg.baseline = baseline
    msg.measurement = baseline + calibrated
    msg.calibrated = calibrated
    return ev.SerializeToString()


def group(t: float, values: Sequence[float]) -> bytes:
    ev = PurpleDropEvent()
    _stamp(ev.group_capacitance, t)
    ev.group_capacitance.measurements.extend(values)
    ev.group_capacitance.raw_measurements.extend(v * 10 for v in values)
    return ev.SerializeToString()


def scan(t: float, values: Sequence[float]) -> bytes:
    ev = PurpleDropEvent()
    _stamp(ev.scan_capacitance, t)
    for v in values:
        ev.scan_capacitance.measurements.add(capacitance=v, drop_present=v > 1.0, raw=v * 100)
    return ev.SerializeToString()


def temperature(t: float, temps: Sequence[float]) -> bytes:
    ev = PurpleDropEvent()
    _stamp(ev.temperature_control, t)
    ev.temperature_control.temperatures.extend(temps)
    ev.temperature_control.duty_cycles.extend(0.25 for _ in temps)
    return ev.SerializeToString()


def hv(t: float, voltage: float) -> bytes:
    ev = PurpleDropEvent()
    _stamp(ev.hv_regulator, t)
    ev.hv_regulator.voltage = voltage
    ev.hv_regulator.v_target_out = 1.25
    return ev.SerializeToString()


def electrodes(on: Iterable[int], n: int = 16) -> bytes:
    """An ``electrode_state`` (no timestamp on the wire, like real servers)."""
    ev = PurpleDropEvent()
    active_set = set(on)
    drive = ev.electrode_state.drive_groups.add(setting=200)
    drive.electrodes.extend(i in active_set for i in range(n))
    ev.electrode_state.drive_groups.add(setting=0).electrodes.extend(False for _ in range(n))
    return ev.SerializeToString()


def device_info() -> bytes:
    ev = PurpleDropEvent()
    ev.device_info.connected = True
    ev.device_info.serial_number = "PD-TEST-1"
    ev.device_info.software_version = "0.5.1"
    return ev.SerializeToString()


def write_recording(
    path: Path,
    records: Iterable[tuple[float, bytes]],
    gaps: Iterable[tuple[float, float]] = (),
    activity: Iterable[float] = (),
) -> Path:
    """Write ``(receive time, raw)`` pairs as a recording with index and manifest."""
    records = list(records)
    first = records[0][0] if records else T0
    writer = RecordingWriter(
        path, recorder="test", source="ws://127.0.0.1:7001", opened_at=first, start_reason="test"
    )
    for t, raw in records:
        writer.write(raw, t)
    for start, end in gaps:
        writer.note_gap(Gap("test", start, end, "reconnect"))
    for t in activity:
        writer.note_activity(t)
    writer.close(stop_reason="test done", closed_at=records[-1][0] if records else first)
    return path


def session(
    seconds: float = 8.0, seed: int = 1, images: bool = True, fps: float = 6.0
) -> list[tuple[float, bytes]]:
    """A realistic mix: background at fixed rates, camera frames at irregular
    intervals (server timestamp a little before receive), two droplet moves."""
    rng = random.Random(seed)
    out: list[tuple[float, bytes]] = []
    lag = 0.004  # receive time is a little after the server's timestamp
    t = 0.0
    while t < seconds:  # active capacitance at 20 Hz, with steps after moves
        level = 0.2 + (1.0 if 2.0 <= t < 5.0 else 0.0) + (0.5 if t >= 6.0 else 0.0)
        out.append((T0 + t + lag, active(T0 + t, round(level + rng.uniform(-0.01, 0.01), 4))))
        t += 0.05
    for k in range(int(seconds)):
        out.append(
            (T0 + k + 0.01 + lag, scan(T0 + k + 0.01, [rng.uniform(0, 2) for _ in range(8)]))
        )
        out.append((T0 + k + 0.02 + lag, hv(T0 + k + 0.02, 100 + rng.uniform(-1, 1))))
    t = 0.0
    while t < seconds:
        out.append((T0 + t + 0.03 + lag, temperature(T0 + t + 0.03, [25 + t / 10, 24.5 + t / 20])))
        t += 0.25
    for move_at in (m for m in (2.0, 6.0) if m < seconds):
        for j in range(4):
            out.append((T0 + move_at + 0.04 * j + lag, electrodes([j, j + 1])))
    if images:
        t, i = 0.1, 0
        while t < seconds:
            ts = T0 + t
            out.append((ts + lag, image_transform(ts)))
            out.append((ts + lag + 0.002, image(ts, jpeg(i))))
            i += 1
            t += rng.choice([0.5, 1.0, 1.5]) / fps + rng.uniform(0.0, 0.05)
    out.append((T0 + lag / 2, device_info()))
    out.sort(key=lambda item: item[0])
    return out


def image_times(records: Iterable[tuple[float, bytes]]) -> list[float]:
    """Receive times of the ``image`` records."""
    return [t for t, raw in records if peek_kind(raw) == "image"]


def sim_session(
    seconds: float = 6.0, seed: int = 7, fps: float = 12.0
) -> list[tuple[float, bytes]]:
    """The simulator's stream with receive times as a real network gives them.

    Each message arrives 1-40 ms after the server built it; a third of the
    camera frames are lost (a stalled camera), so frames come at irregular
    intervals. Sorted by receive time, like a recorder writes them.
    """
    from engine.sim.world import SimWorld

    world = SimWorld(seed, fps=fps, image_size=(64, 48), idle=(1.0, 2.0), first_burst_delay=0.5)
    rng = random.Random(seed)
    out: list[tuple[float, bytes]] = []
    drop_next_image = False
    for t, raw in world.events(T0, T0 + seconds):
        kind = peek_kind(raw)
        if kind == "image_transform":
            drop_next_image = rng.random() < 1 / 3
        if drop_next_image and kind in ("image_transform", "image"):
            continue
        out.append((t + rng.uniform(0.001, 0.040), raw))
    out.sort(key=lambda item: item[0])
    return out
