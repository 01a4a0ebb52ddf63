"""A recording's time line in bounded memory: rates, series and activity per time bin.

Pure: frames go in, binned numbers come out; ``log plot`` draws them. Bins
start 10 ms wide; whenever there would be more than ``max_bins``, neighbours
are merged and the width doubles. So a 5-second test recording and a
two-day experiment both end up with a few hundred to ``max_bins`` bins, and
memory never depends on the file's size. Series keep sum, count, min and
max per bin: the plot shows the mean and the range, so a 50 Hz spike
survives a 10-minute bin.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from engine.core.frame import Frame
from engine.core.schema import PURPLEDROP
from engine.errors import InvalidArgument
from engine.proto.purpledrop_pb2 import (
    ActiveCapacitance,
    GroupCapacitance,
    HvRegulator,
    TemperatureControl,
)

_T = TypeVar("_T")

ACTIVITY_KIND = "electrode_state"
_NICE_WINDOWS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


@dataclass
class SeriesBins:
    """Per-bin sum, count, min and max of one numeric series."""

    sums: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    mins: list[float] = field(default_factory=list)
    maxs: list[float] = field(default_factory=list)

    def add(self, i: int, value: float) -> None:
        missing = i + 1 - len(self.sums)
        if missing > 0:
            self.sums.extend([0.0] * missing)
            self.counts.extend([0] * missing)
            self.mins.extend([math.inf] * missing)
            self.maxs.extend([-math.inf] * missing)
        self.sums[i] += value
        self.counts[i] += 1
        if value < self.mins[i]:
            self.mins[i] = value
        if value > self.maxs[i]:
            self.maxs[i] = value

    def halve(self) -> None:
        self.sums = _pairs(self.sums, sum)
        self.counts = _pairs(self.counts, sum)
        self.mins = _pairs(self.mins, min)
        self.maxs = _pairs(self.maxs, max)

    def means(self) -> list[float]:
        return [s / n if n else math.nan for s, n in zip(self.sums, self.counts, strict=True)]


def _pairs(values: list[_T], combine: Callable[[list[_T]], _T]) -> list[_T]:
    return [combine(values[i : i + 2]) for i in range(0, len(values), 2)]


def _series_of(message: Message | None) -> Iterable[tuple[str, str, float]]:
    """The plotted numbers of one message, as (panel, series label, value)."""
    if isinstance(message, ActiveCapacitance):
        yield "capacitance", "active (calibrated)", message.calibrated
    elif isinstance(message, GroupCapacitance):
        for i, value in enumerate(message.measurements):
            yield "capacitance", f"group {i}", value
    elif isinstance(message, TemperatureControl):
        for i, value in enumerate(message.temperatures):
            yield "temperature", f"sensor {i}", value
    elif isinstance(message, HvRegulator):
        yield "voltage", "HV output", message.voltage


_NUMBER_TYPES = frozenset(
    {
        FieldDescriptor.CPPTYPE_INT32,
        FieldDescriptor.CPPTYPE_INT64,
        FieldDescriptor.CPPTYPE_UINT32,
        FieldDescriptor.CPPTYPE_UINT64,
        FieldDescriptor.CPPTYPE_FLOAT,
        FieldDescriptor.CPPTYPE_DOUBLE,
    }
)
MAX_GENERIC_SERIES = 8  # numbers plotted per kind of another schema


def _numbers_of(kind: str, message: object) -> Iterable[tuple[str, str, float]]:
    """Another schema's message: its top-level single numbers, one panel per kind."""
    if not isinstance(message, Message):
        return
    n = 0
    for f in message.DESCRIPTOR.fields:
        if f.cpp_type in _NUMBER_TYPES and not f.is_repeated:
            yield kind, f.name, float(getattr(message, f.name))
            n += 1
            if n >= MAX_GENERIC_SERIES:
                return


SERIES_KINDS = frozenset(
    {"active_capacitance", "group_capacitance", "temperature_control", "hv_regulator"}
)


class Timeline:
    """Accumulates frames into adaptive time bins (see the module docstring)."""

    def __init__(self, width: float = 0.01, max_bins: int = 2000) -> None:
        if max_bins < 2:
            raise InvalidArgument("max_bins must be at least 2")
        self.start: float | None = None
        self.end: float | None = None
        self.width = width
        self.max_bins = max_bins
        self.counts: dict[str, list[int]] = {}
        self.series: dict[tuple[str, str], SeriesBins] = {}
        self.bins = 0

    def add(self, frame: Frame) -> None:
        kind = frame.kind
        if kind is None:
            return
        values: list[tuple[str, str, float]] = []
        if frame.schema is not PURPLEDROP:
            try:
                values = list(_numbers_of(kind, frame.message))
            except ValueError:
                values = []
        elif kind in SERIES_KINDS:
            try:
                values = list(_series_of(frame.message))
            except ValueError:  # does not decode: counted as a record, no values
                values = []
        self.add_values(frame.time, kind, values)

    def add_values(
        self, t: float, kind: str, values: Iterable[tuple[str, str, float]] = ()
    ) -> None:
        """One message of ``kind`` at time ``t`` with its series values."""
        if self.start is None:
            self.start = t
        self.end = t if self.end is None else max(self.end, t)
        i = max(0, int((t - self.start) / self.width))
        while i >= self.max_bins:
            self._coarsen()
            i = max(0, int((t - self.start) / self.width))
        if i >= self.bins:
            self.bins = i + 1
        counts = self.counts.get(kind)
        if counts is None:
            counts = self.counts[kind] = []
        if len(counts) <= i:
            counts.extend([0] * (i + 1 - len(counts)))
        counts[i] += 1
        for panel, label, value in values:
            if math.isfinite(value):
                key = (panel, label)
                series = self.series.get(key)
                if series is None:
                    series = self.series[key] = SeriesBins()
                series.add(i, value)

    def _coarsen(self) -> None:
        self.width *= 2
        self.bins = (self.bins + 1) // 2
        self.counts = {k: _pairs(v, sum) for k, v in self.counts.items()}
        for series in self.series.values():
            series.halve()

    # -- read out ----------------------------------------------------------------

    def rate_step(self, min_window: float = 1.0, max_points: int = 300) -> int:
        """How many bins to add up for a rate that does not flicker between 0 and 1/width.

        A rate needs a window longer than the gaps between messages: at least
        ``min_window`` seconds, no more than ``max_points`` windows in all,
        rounded up to a round number of seconds or minutes.
        """
        want = max(min_window, self.bins * self.width / max_points)
        window = next((n for n in _NICE_WINDOWS if n >= want), want)
        return max(1, math.ceil(window / self.width - 1e-9))

    def rates(self, kind: str, step: int = 1) -> tuple[list[float], list[float]]:
        """Window start times and messages per second of ``kind``, ``step`` bins per window."""
        assert self.start is not None
        counts = self.counts.get(kind, [])
        counts = counts + [0] * (self.bins - len(counts))
        window = self.width * step
        starts = [self.start + i * self.width for i in range(0, self.bins, step)]
        return starts, [sum(counts[i : i + step]) / window for i in range(0, self.bins, step)]

    def points(
        self, panel: str, label: str
    ) -> tuple[list[float], list[float], list[float], list[float]]:
        """Bin mid times, means, mins and maxes of one series, only where it has values.

        Where the series pauses for more than ten times its usual spacing, a
        NaN point is put in so a plotted line breaks instead of bridging it.
        """
        assert self.start is not None
        series = self.series[(panel, label)]
        filled = [i for i, n in enumerate(series.counts) if n]
        spacing = sorted(b - a for a, b in itertools.pairwise(filled))
        usual = spacing[len(spacing) // 2] if spacing else 1
        times: list[float] = []
        means: list[float] = []
        lows: list[float] = []
        highs: list[float] = []
        previous: int | None = None
        for i in filled:
            if previous is not None and i - previous > 10 * usual:
                for column in (means, lows, highs):
                    column.append(math.nan)
                times.append(self.start + (previous + 1) * self.width)
            times.append(self.start + (i + 0.5) * self.width)
            means.append(series.sums[i] / series.counts[i])
            lows.append(series.mins[i])
            highs.append(series.maxs[i])
            previous = i
        return times, means, lows, highs

    def panels(self) -> dict[str, list[str]]:
        """Panel name -> series labels, in the order they first appeared."""
        out: dict[str, list[str]] = {}
        for panel, label in self.series:
            out.setdefault(panel, []).append(label)
        return out

    def activity_spans(self) -> list[tuple[float, float]]:
        """Time spans of the bins that hold ``electrode_state`` messages, neighbours joined."""
        counts = self.counts.get(ACTIVITY_KIND, [])
        runs: list[list[int]] = []  # [first bin, last bin]
        for i, n in enumerate(counts):
            if not n:
                continue
            if runs and runs[-1][1] == i - 1:
                runs[-1][1] = i
            else:
                runs.append([i, i])
        start = self.start or 0.0
        return [(start + a * self.width, start + (b + 1) * self.width) for a, b in runs]
