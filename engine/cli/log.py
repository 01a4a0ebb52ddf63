"""``cuecap log``: inspect, dump, cut, merge, export, plot, repair recordings, and make videos.

A thin layer over ``engine.logtools``: parse options, show progress on a
terminal, print results, turn errors into messages and exit codes. Exit
codes: 0 done; 2 bad input (missing file, not a recording, nothing in range,
records left out because the file is cut short or damaged: the output is
still written from what was readable); 3 an optional library or encoder is
missing.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TextIO, TypeVar

import click

from engine.cli.common import EXIT_USAGE, error, warning
from engine.logtools.errors import LogToolError
from engine.logtools.timerange import HELP as TIME_HELP
from engine.logtools.timerange import TimeSpec, TimeSpecError, parse_time

if TYPE_CHECKING:  # loaded by the commands that use it: `--help` stays fast
    from engine.logtools.inputs import LogInput
    from engine.logtools.timing import Clock

F = TypeVar("F", bound=Callable[..., object])
_P = ParamSpec("_P")
_R = TypeVar("_R")
EXIT_BAD_INPUT = EXIT_USAGE
MAX_PLAYABLE_FPS = 60  # faster than this, players drop frames: the video does not show them


# -- shared plumbing -------------------------------------------------------------------


def _time_option(value: str | None, name: str) -> TimeSpec | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except TimeSpecError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


def range_options(func: F) -> F:
    """``--from`` and ``--to``: a half-open range of receive times."""
    func = click.option(
        "--to",
        "to_",
        metavar="TIME",
        callback=lambda ctx, param, v: _time_option(v, "--to"),
        help="End of the range (not included).",
    )(func)
    return click.option(
        "--from",
        "from_",
        metavar="TIME",
        callback=lambda ctx, param, v: _time_option(v, "--from"),
        help=f"Start of the range: {TIME_HELP}.",
    )(func)


force_option = click.option("-f", "--force", is_flag=True, help="Replace existing output files.")
utc_option = click.option("--utc", is_flag=True, help="Show and name times in UTC, not local time.")
recording_argument = click.argument(
    "file", type=click.Path(path_type=Path, dir_okay=True, exists=False)
)


def handles_errors(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn tool errors into ``cuecap: error: ...`` on stderr and their exit code."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except LogToolError as exc:
            error(str(exc))
            sys.exit(exc.exit_code)
        except BrokenPipeError:  # `cuecap log dump ... | head`
            with contextlib.suppress(OSError):
                sys.stdout = open(  # noqa: SIM115 - quiet the interpreter's final flush
                    "/dev/null", "w", encoding="utf-8"
                )
            sys.exit(0)

    return wrapper


@contextlib.contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar over ``total`` bytes, only on a terminal and only for big inputs."""
    if not sys.stderr.isatty() or total < (8 << 20):
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def open_log(path: Path) -> LogInput:
    from engine.logtools.inputs import LogInput

    return LogInput(path)


def report_input(*logs: LogInput) -> None:
    """Say what was odd about the inputs; exit 2 if records were left out."""
    problems: list[str] = []
    for log in logs:
        for note in log.notes():
            warning(note)
        problems.extend(log.problems())
    for problem in problems:
        error(problem)
    if problems:
        sys.exit(EXIT_BAD_INPUT)


def say(message: str) -> None:
    """A result line, on stderr so that stdout can carry data."""
    click.echo(message, err=True)


# -- the group ---------------------------------------------------------------------------


@click.group("log", short_help="Inspect, cut, merge, export, plot, repair recordings; videos.")
def log() -> None:
    """Inspect, dump, cut, merge, export, plot and repair recordings; make videos.

    TIME values for --from/--to: seconds from the start (90, 1:30, 2m30s),
    seconds before the end (-30), an ISO datetime (local time unless it has
    an offset) or an epoch time (@1714557600). Ranges include --from and
    exclude --to.
    """


@log.command(short_help="Summarise a recording: counts per type, span, gaps, problems.")
@recording_argument
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@utc_option
@handles_errors
def info(file: Path, as_json: bool, utc: bool) -> None:
    """Summarise a recording: counts per type, time span, index, tail, manifest, gaps."""
    from engine.logtools.info import format_info, summarize

    log_input = open_log(file)
    with progress_bar("reading", log_input.size) as progress:
        facts = summarize(log_input, progress)
    if as_json:
        click.echo(json.dumps(facts.to_dict(), indent=2))
    else:
        click.echo(format_info(facts, utc))
    if facts.problems:
        sys.exit(EXIT_BAD_INPUT)


@log.command(short_help="Print records as JSON lines.")
@recording_argument
@click.option(
    "-t", "--type", "types", multiple=True, metavar="TYPE",
    help="Only this message type (repeat or comma-separate for more).",
)  # fmt: skip
@range_options
@click.option("-n", "--limit", type=click.IntRange(min=0), help="Stop after this many rows.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write here, not stdout.",
)
@force_option
@handles_errors
def dump(
    file: Path,
    types: tuple[str, ...],
    from_: TimeSpec | None,
    to_: TimeSpec | None,
    limit: int | None,
    output: Path | None,
    force: bool,
) -> None:
    """Print records as JSON lines: receive time, seq, type, timestamp, decoded fields."""
    import itertools

    from engine.logtools.dump import dump_rows, write_jsonl
    from engine.logtools.inputs import check_kinds

    log_input = open_log(file)
    kinds = check_kinds(
        [k.strip() for t in types for k in t.split(",") if k.strip()], log_input.schema
    )
    time_range = log_input.resolve(from_, to_)
    rows = dump_rows(log_input, log_input.frames(kinds, time_range))
    if limit is not None:
        rows = itertools.islice(rows, limit)
    if output is None:
        write_jsonl(rows, sys.stdout)
        sys.stdout.flush()
    else:
        with _output_text(output, force) as out:
            n = write_jsonl(rows, out)
        say(f"{n} rows written to {output}")
    if limit is None:
        report_input(log_input)


@contextlib.contextmanager
def _output_text(path: Path, force: bool) -> Iterator[TextIO]:
    """A text file written beside ``path`` and renamed over it when complete."""
    import os

    if path.exists() and not force:
        raise LogToolError(f"{path}: already exists (use --force to replace it)")
    tmp = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(tmp, path)
    except OSError as exc:
        raise LogToolError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@log.command(short_help="Turn the camera frames into an H.264 video (true frame times).")
@recording_argument
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The video file (.mp4, .mov, .mkv).")  # fmt: skip
@range_options
@click.option("--speed", type=click.FloatRange(0.001, 1000), default=1.0, show_default=True,
              help="Play this many times faster (0.5: slower); 0.001 to 1000.")  # fmt: skip
@click.option("--overlay", "--timestamp", "overlay", is_flag=True,
              help="Draw each frame's date and time on it.")  # fmt: skip
@click.option("--clock", type=click.Choice(["receive", "timestamp"]), default="receive",
              show_default=True,
              help="Place frames by receive time or by the server's timestamp in the message.")  # fmt: skip
@click.option("--crf", type=click.IntRange(0, 51), default=23, show_default=True,
              help="H.264 quality (lower is better and bigger).")  # fmt: skip
@click.option(
    "--preset", default="medium", show_default=True,
    type=click.Choice(["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                       "slower", "veryslow"]),
    help="x264 speed/size trade-off.",
)  # fmt: skip
@click.option("--encoder", help="A specific FFmpeg H.264 encoder (default: the first available).")
@utc_option
@force_option
@handles_errors
def video(
    file: Path,
    output: Path,
    from_: TimeSpec | None,
    to_: TimeSpec | None,
    speed: float,
    overlay: bool,
    clock: Clock,
    crf: int,
    preset: str,
    encoder: str | None,
    utc: bool,
    force: bool,
) -> None:
    """Turn the camera frames into an H.264 video, each frame at its own time."""
    from engine.logtools.video import VideoOptions, write_video

    log_input = open_log(file)
    options = VideoOptions(
        time_range=log_input.resolve(from_, to_),
        speed=speed,
        clock=clock,
        overlay=overlay,
        utc=utc,
        crf=crf,
        preset=preset,
        encoder=encoder,
    )
    with progress_bar("encoding", log_input.size) as progress:
        result = write_video(log_input, output, options, progress=progress, force=force)
    say(
        f"{result.frames} frames, {result.width}x{result.height}, {result.duration:.3f} s of video "
        f"({result.encoder}) written to {result.path}"
    )
    rate = result.frames / result.duration if result.duration > 0 else 0.0
    if rate > MAX_PLAYABLE_FPS:
        warning(
            f"at --speed {speed:g} the video runs {rate:.0f} frames per second on average; "
            f"players show at most about {MAX_PLAYABLE_FPS} and skip the rest: "
            f"--speed {speed * MAX_PLAYABLE_FPS / rate:.3g} or less shows them"
        )
    if result.adjusted:
        say(
            f"note: {result.adjusted} frame(s) shared a time with the one before; moved by 1/90000 s"
        )
    if result.missing_timestamps:
        say(f"note: {result.missing_timestamps} frame(s) had no timestamp; placed by receive time")
    if result.skipped:
        error(
            f"{result.skipped} frame(s) could not be decoded and were left out: "
            + "; ".join(result.errors)
        )
    report_input(log_input)
    if result.skipped:
        sys.exit(EXIT_BAD_INPUT)


@log.command(short_help="Write the camera frames as JPEG files named by time.")
@recording_argument
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The folder for the frames (created if needed).")  # fmt: skip
@range_options
@click.option("--name", default="%Y%m%d-%H%M%S.%f.jpg", show_default=True,
              help="File name template: strftime codes and {seq}, {index}, {offset}.")  # fmt: skip
@click.option("--clock", type=click.Choice(["receive", "timestamp"]), default="receive",
              show_default=True, help="Name frames by receive time or by the server's timestamp.")  # fmt: skip
@utc_option
@force_option
@handles_errors
def frames(
    file: Path,
    output: Path,
    from_: TimeSpec | None,
    to_: TimeSpec | None,
    name: str,
    clock: Clock,
    utc: bool,
    force: bool,
) -> None:
    """Write the camera frames as JPEG files named by time (bytes as received)."""
    from engine.logtools.frames import export_frames, parse_name

    parse_name(name)
    log_input = open_log(file)
    with progress_bar("writing frames", log_input.size) as progress:
        result = export_frames(
            log_input,
            output,
            name=name,
            time_range=log_input.resolve(from_, to_),
            clock=clock,
            utc=utc,
            force=force,
            progress=progress,
        )
    say(f"{result.written} frames ({result.bytes} bytes) written to {result.folder}")
    report_input(log_input)


@log.command()
@recording_argument
@range_options
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The new recording (its .idx and .json are written beside it).")  # fmt: skip
@force_option
@handles_errors
def cut(
    file: Path, from_: TimeSpec | None, to_: TimeSpec | None, output: Path, force: bool
) -> None:
    """Copy a time range of a recording into a new recording."""
    from engine.logtools.cutmerge import cut as cut_recording

    if from_ is None and to_ is None:
        raise click.UsageError("give --from, --to or both")
    log_input = open_log(file)
    time_range = log_input.resolve(from_, to_)
    with progress_bar("cutting", log_input.size) as progress:
        manifest = cut_recording(log_input, output, time_range, progress, force=force)
    say(f"{manifest.records} records ({manifest.bytes} bytes) written to {output}")
    report_input(log_input)


@log.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The merged recording.")  # fmt: skip
@click.option("--interleave", is_flag=True,
              help="Allow overlapping inputs: merge record by record by receive time.")  # fmt: skip
@force_option
@handles_errors
def merge(files: tuple[Path, ...], output: Path, interleave: bool, force: bool) -> None:
    """Join recordings into one, in receive-time order."""
    from engine.logtools.cutmerge import merge as merge_recordings

    logs = [open_log(f) for f in files]
    with progress_bar("merging", sum(log_input.size for log_input in logs)) as progress:
        manifest = merge_recordings(
            logs, output, interleave=interleave, progress=progress, force=force
        )
    say(f"{manifest.records} records from {len(logs)} recordings written to {output}")
    report_input(*logs)


@log.command(short_help="Write the numeric fields of one message type as CSV.")
@recording_argument
@click.option("-t", "--type", "kind", required=True, metavar="TYPE",
              help="The message type, e.g. active_capacitance, temperature_control.")  # fmt: skip
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The CSV file ('-' for stdout).")  # fmt: skip
@range_options
@force_option
@handles_errors
def export(
    file: Path, kind: str, output: Path, from_: TimeSpec | None, to_: TimeSpec | None, force: bool
) -> None:
    """Write the numeric fields of one message type as CSV (time, seq, timestamp, fields)."""
    from engine.logtools.export import export_csv
    from engine.logtools.inputs import check_kinds

    log_input = open_log(file)
    check_kinds([kind], log_input.schema)
    time_range = log_input.resolve(from_, to_)
    if str(output) == "-":
        result = export_csv(log_input, kind, sys.stdout, time_range)
    else:
        with (
            _output_text(output, force) as out,
            progress_bar("exporting", log_input.size) as bar,
        ):
            result = export_csv(log_input, kind, out, time_range, bar)
        say(f"{result.rows} rows x {len(result.columns)} columns written to {output}")
    report_input(log_input)


@log.command(short_help="Draw the time line: rates, capacitance, temperature, activity.")
@recording_argument
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The picture (.png, .svg, .pdf).")  # fmt: skip
@range_options
@click.option("--width", type=click.FloatRange(4, 60), default=12.0, show_default=True,
              help="Width in inches.")  # fmt: skip
@utc_option
@force_option
@handles_errors
def plot(
    file: Path,
    output: Path,
    from_: TimeSpec | None,
    to_: TimeSpec | None,
    width: float,
    utc: bool,
    force: bool,
) -> None:
    """Draw the time line: message rates, capacitance, temperature, activity, gaps."""
    from engine.logtools.plot import plot as plot_recording

    log_input = open_log(file)
    time_range = log_input.resolve(from_, to_)
    with progress_bar("reading", log_input.size) as progress:
        result = plot_recording(
            log_input, output, time_range=time_range, utc=utc, width=width, force=force,
            progress=progress,
        )  # fmt: skip
    say(f"{', '.join(result.panels)} ({result.records} records) drawn to {result.path}")
    report_input(log_input)


@log.command(short_help="Fix a cut-short last record; rebuild a missing index.")
@recording_argument
@click.option("-n", "--dry-run", is_flag=True, help="Only say what would be done.")
@click.option(
    "--force", is_flag=True, help="Repair even if the file looks like it is being recorded."
)
@handles_errors
def repair(file: Path, dry_run: bool, force: bool) -> None:
    """Fix a cut-short last record (kept in FILE.tail.bak), rebuild the index and manifest."""
    from engine.logtools.repair import repair as repair_recording

    size = file.stat().st_size if file.is_file() else 0
    with progress_bar("checking", size) as progress:
        report = repair_recording(
            file, time.time(), dry_run=dry_run, force=force, progress=progress
        )
    if not report.changed:
        say(f"{file}: {report.records} records, nothing to repair")
        return
    verb = "would be done" if dry_run else "done"
    say(f"{file}: {report.records} records; {verb}:")
    for action in report.actions:
        say(f"  - {action}")
    if report.index_backup:
        say(f"  old index kept as {report.index_backup.name}")
    if report.manifest_backup:
        say(f"  old manifest kept as {report.manifest_backup.name}")
    if report.invalid:
        warning(f"{report.invalid} record(s) are not PurpleDrop events (kept as they are)")


@log.command(short_help="Turn a recording into MCAP (for Foxglove and other viewers), and back.")
@recording_argument
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--compression", type=click.Choice(["zstd", "lz4", "none"]), default="zstd",
              show_default=True, help="How MCAP chunks are compressed.")  # fmt: skip
@click.option("--chunk-size", default="1MiB", show_default=True,
              help="Largest MCAP chunk (readers load a whole chunk at once).")  # fmt: skip
@click.option("--schema", "schema_name", metavar="NAME",
              help="An MCAP input with several protobuf schemas: read this one's channels.")  # fmt: skip
@force_option
@handles_errors
def convert(
    file: Path,
    output: Path,
    compression: str,
    chunk_size: str,
    schema_name: str | None,
    force: bool,
) -> None:
    """Write FILE as OUTPUT: to MCAP when OUTPUT ends in .mcap, else from MCAP to a recording.

    Records keep their bytes and receive times both ways; the manifest travels
    inside the MCAP file, so converting back gives the same recording.
    """
    from engine.core.units import parse_size
    from engine.logtools.convert import convert as convert_recording
    from engine.logtools.inputs import LogInput
    from engine.recording.mcap import MAX_CHUNK_SIZE, Compression

    try:
        size = int(parse_size(chunk_size))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--chunk-size") from None
    if not 0 < size <= MAX_CHUNK_SIZE:
        raise click.BadParameter("must be between 1 B and 64 MiB", param_hint="--chunk-size")
    log_input = LogInput(file, schema_name=schema_name)
    with progress_bar("converting", log_input.size) as progress:
        result = convert_recording(
            log_input,
            output,
            compression=Compression(compression),
            chunk_size=size,
            force=force,
            progress=progress,
        )
    kind = "MCAP" if result.to_mcap else "recording"
    say(f"{result.records} records written to {output} ({kind}, {result.bytes} bytes)")
    kept, log_input.invalid = log_input.invalid, 0  # converted as they are: nothing left out
    if kept:
        warning(f"{file}: {kept} record(s) do not decode; converted as they are")
    report_input(log_input)
