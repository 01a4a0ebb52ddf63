"""Building blocks for recorder tests: frames of chosen types, sizes and receive times."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from engine.core.frame import Frame
from engine.proto.purpledrop_pb2 import PurpleDropEvent
from engine.recording.reader import RecordingReader
from engine.recording.writer import Manifest


def event_bytes(kind: str, value: float = 0.0, size: int = 0) -> bytes:
    """A serialized event of ``kind``; ``value`` lands in its main number, ``size`` pads images."""
    event = PurpleDropEvent()
    message = getattr(event, kind)
    message.SetInParent()
    if kind == "active_capacitance":
        message.calibrated = value
    elif kind == "temperature_control":
        message.temperatures.append(value)
    elif kind == "hv_regulator":
        message.voltage = value
    elif kind == "electrode_state":
        group = message.drive_groups.add()
        group.electrodes.extend([i == int(value) for i in range(8)])
    elif kind == "image":
        message.image_data = bytes(size)
    return event.SerializeToString()


def frame(
    kind: str, t: float, seq: int, value: float = 0.0, size: int = 0, source: str = "pd"
) -> Frame:
    return Frame(event_bytes(kind, value, size), t, seq, source)


def read_segments(manifests: Iterable[Manifest]) -> list[list[Frame]]:
    """The frames of each segment file, read back from disk."""
    return [list(RecordingReader(Path(m.path))) for m in manifests]


def seqs_by_time(frames: Sequence[Frame], segments: Sequence[Sequence[Frame]]) -> list[list[int]]:
    """Map the frames read back to the stream's sequence numbers, by (time, bytes) in order."""
    out: list[list[int]] = []
    position = 0
    for segment in segments:
        found: list[int] = []
        for read in segment:
            while position < len(frames) and (
                frames[position].time != read.time or frames[position].raw != read.raw
            ):
                position += 1
            assert position < len(frames), (
                f"record at {read.time} is not in the stream (or out of order)"
            )
            found.append(frames[position].seq)
            position += 1
        out.append(found)
    return out
