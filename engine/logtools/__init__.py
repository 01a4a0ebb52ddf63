"""Tools over recordings: inspect, dump, cut, merge, export, plot, repair, video, frames.

Each tool is a plain function over a ``LogInput`` (a recording opened and
checked once); ``engine.cli.log`` is a thin command-line layer over them.
Optional libraries (PyAV for video, matplotlib for plots) are imported only
by the tools that need them.
"""

from engine.logtools.cutmerge import cut, merge
from engine.logtools.errors import LogToolError, MissingDependency
from engine.logtools.export import export_csv
from engine.logtools.frames import export_frames
from engine.logtools.info import LogInfo, format_info, summarize
from engine.logtools.inputs import LogInput
from engine.logtools.repair import RepairReport, repair
from engine.logtools.timerange import TimeRange, TimeSpec, parse_time
from engine.logtools.video import VideoOptions, VideoResult, write_video

__all__ = [
    "LogInfo",
    "LogInput",
    "LogToolError",
    "MissingDependency",
    "RepairReport",
    "TimeRange",
    "TimeSpec",
    "VideoOptions",
    "VideoResult",
    "cut",
    "export_csv",
    "export_frames",
    "format_info",
    "merge",
    "parse_time",
    "repair",
    "summarize",
    "write_video",
]
