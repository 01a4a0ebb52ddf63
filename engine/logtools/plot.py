"""``log plot``: a picture of a recording's time line.

Panels share one time axis: message rates per type, then the capacitance,
temperature and high-voltage series (mean line, min-max band per bin) when
the recording has them. Bins with electrode activity (``electrode_state``
messages: droplet moves) are shaded in every panel, and the source's gaps
from the manifest are hatched, so "what happened when" reads at a glance.

matplotlib is an optional extra (``pip install 'cuecap[plot]'``), imported
only here, with the non-interactive Agg backend.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from engine.logtools.errors import LogToolError, MissingDependency
from engine.logtools.info import format_duration
from engine.logtools.inputs import LogInput, Progress
from engine.logtools.timeline import ACTIVITY_KIND, Timeline
from engine.logtools.timerange import EVERYTHING, TimeRange

if TYPE_CHECKING:  # matplotlib is optional: imported where used
    from matplotlib.figure import Figure

FORMATS = (".png", ".svg", ".pdf")
PANEL_TITLES = {
    "capacitance": "capacitance",
    "temperature": "temperature (°C)",
    "voltage": "high voltage (V)",
}


@dataclass
class PlotResult:
    path: Path
    records: int
    bins: int
    bin_width: float
    panels: list[str]
    activity_spans: int


def require_pyplot() -> None:
    """Select matplotlib's file-only Agg backend, or ``MissingDependency`` saying how to install it.

    After it, ``import matplotlib.pyplot`` draws without a display.
    """
    try:
        import matplotlib
    except ImportError:
        raise MissingDependency(
            "plotting needs matplotlib, which is not installed: pip install 'cuecap[plot]'"
        ) from None
    matplotlib.use("Agg", force=True)


def collect(
    log: LogInput,
    time_range: TimeRange = EVERYTHING,
    progress: Progress | None = None,
    max_bins: int = 1500,
) -> Timeline:
    """Stream ``log`` into a ``Timeline``."""
    timeline = Timeline(max_bins=max_bins)
    for frame in log.frames(time_range=time_range, progress=progress):
        timeline.add(frame)
    return timeline


def plot(
    log: LogInput,
    out: str | os.PathLike[str],
    *,
    time_range: TimeRange = EVERYTHING,
    utc: bool = False,
    width: float = 12.0,
    force: bool = False,
    progress: Progress | None = None,
) -> PlotResult:
    """Draw the time line of ``log`` to ``out`` (PNG, SVG or PDF, by suffix)."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise LogToolError(f"{out}: unknown picture type; use one of {', '.join(FORMATS)}")
    if out.exists() and not force:
        raise LogToolError(f"{out}: already exists (use --force to replace it)")
    require_pyplot()
    import matplotlib.pyplot as plt

    timeline = collect(log, time_range, progress)
    if timeline.start is None:
        where = "" if time_range.is_open else f" in {log.describe(time_range)}"
        raise LogToolError(f"{log.path}: no records{where}; nothing to plot")
    figure = _draw(log, timeline, utc, width)
    tmp = out.with_name(f".{out.name}.partial{out.suffix}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(tmp, dpi=110)
        os.replace(tmp, out)
    except OSError as exc:
        raise LogToolError(f"{out}: cannot write: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return PlotResult(
        path=out,
        records=sum(sum(c) for c in timeline.counts.values()),
        bins=timeline.bins,
        bin_width=timeline.width,
        panels=_panel_names(timeline),
        activity_spans=len(timeline.activity_spans()),
    )


def axis_zone(utc: bool) -> tzinfo:
    """The zone of the time axis: UTC, or this machine's zone with its DST rules.

    Not today's UTC offset: a summer recording plotted in winter would be drawn
    an hour off.
    """
    if utc:
        return UTC
    from tzlocal import get_localzone

    return get_localzone()


def _draw(log: LogInput, timeline: Timeline, utc: bool, width: float) -> Figure:
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    tz = axis_zone(utc)
    panels = timeline.panels()
    names = _panel_names(timeline)
    heights = [1.4 if n == "rates" else 1.0 for n in names]
    figure, grid = plt.subplots(
        len(names),
        1,
        sharex=True,
        figsize=(width, 1.1 + 2.1 * sum(heights)),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    axes = [row[0] for row in grid]
    start = timeline.start
    assert start is not None

    def when(t: float) -> datetime:
        return datetime.fromtimestamp(t, tz=tz)

    rates_ax = axes[0]
    step = timeline.rate_step()
    for kind in sorted(timeline.counts, key=lambda k: -sum(timeline.counts[k])):
        starts, rates = timeline.rates(kind, step)
        starts.append(starts[-1] + step * timeline.width)  # so the last window is drawn too
        rates.append(rates[-1])
        rates_ax.step(
            [when(t) for t in starts],
            rates,
            where="post",
            linewidth=1.6 if kind == ACTIVITY_KIND else 1.0,
            label=f"{kind} ({sum(timeline.counts[kind])})",
        )
    rates_ax.set_ylabel(f"messages/s\n(per {_seconds(timeline.width * step)})")
    rates_ax.set_yscale("symlog", linthresh=1.0)
    rates_ax.set_ylim(bottom=0)
    rates_ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)

    for ax, name in zip(axes[1:], names[1:], strict=True):
        for label in panels[name]:
            times, means, lows, highs = timeline.points(name, label)
            stamps = [when(t) for t in times]
            (line,) = ax.plot(stamps, means, linewidth=1.0, label=label)
            ax.fill_between(stamps, lows, highs, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_ylabel(PANEL_TITLES.get(name, name))
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)

    spans = timeline.activity_spans()
    gaps = [
        (g["start"], g["end"])
        for g in (log.manifest or {}).get("gaps") or []
        if isinstance(g.get("start"), int | float) and isinstance(g.get("end"), int | float)
    ]
    duration = (timeline.end or start) - start
    least = duration / 300  # a burst of a few ms still shows as a visible band
    for ax in axes:
        for begin, end in spans:
            pad = max(0.0, (least - (end - begin)) / 2)
            ax.axvspan(
                when(begin - pad), when(end + pad), color="tab:orange", alpha=0.3, linewidth=0
            )
        for begin, end in gaps:
            ax.axvspan(
                when(begin), when(end), facecolor="none", edgecolor="0.4", hatch="///", linewidth=0
            )
        ax.grid(True, alpha=0.3)
    locator = mdates.AutoDateLocator(tz=tz)
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tz))
    axes[-1].set_xlim(when(start), when(max(timeline.end or start, start + timeline.width)))

    legend_bits = [f"{len(spans)} activity span(s) shaded orange"]
    if gaps:
        legend_bits.append(f"{len(gaps)} source gap(s) hatched")
    figure.suptitle(
        f"{log.path.name}: {when(start).isoformat(sep=' ', timespec='seconds')}, "
        f"{format_duration(duration)}; bins of {_seconds(timeline.width)}; "
        + ", ".join(legend_bits),
        fontsize=10,
    )
    figure.tight_layout()
    return figure


def _panel_names(timeline: Timeline) -> list[str]:
    """Rates, PurpleDrop's panels in their order, then any other schema's (one per kind)."""
    present = timeline.panels()
    others = sorted(p for p in present if p not in PANEL_TITLES)
    return ["rates", *[p for p in PANEL_TITLES if p in present], *others]


def _seconds(width: float) -> str:
    if width < 1:
        return f"{width * 1000:.0f} ms"
    if width < 120:
        return f"{width:.3g} s"
    return f"{width / 60:.3g} min"
