"""``cuecap record URI FILE``: PurpleDrop's ``pdrecord``, plus reconnects, index and manifest.

The file is created before connecting, so a wrong path fails at once rather
than after the experiment started. Ctrl-C and SIGTERM end the recording
cleanly (exit 0) with a summary; so do ``--for`` (``--duration``) and ``--count``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from engine.cli.common import (
    DURATION,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    SIZE,
    fail,
)
from engine.sources.backoff import DEFAULT_INITIAL, DEFAULT_MAXIMUM

if TYPE_CHECKING:  # loaded when the command runs: `cuecap --help` stays fast
    from engine.sources.session import RecordingSummary


@click.command()
@click.argument("uri")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--for",
    "--duration",
    "duration",
    type=DURATION,
    metavar="DURATION",
    help="Stop after this long: seconds, or 90s, 5min, 2h.",
)
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many records.")
@click.option(
    "--max-size",
    type=SIZE,
    default="16MiB",
    show_default=True,
    help="Largest message accepted (camera frames can exceed 1 MiB).",
)
@click.option(
    "--retry-initial",
    type=click.FloatRange(min=0),
    default=DEFAULT_INITIAL,
    show_default=True,
    help="First reconnect delay, seconds; doubles on each failure.",
)
@click.option(
    "--retry-max",
    type=click.FloatRange(min=0),
    default=DEFAULT_MAXIMUM,
    show_default=True,
    help="Longest reconnect delay, seconds.",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=None,
    help="Give up after this many failed connection attempts in a row (default: never).",
)
@click.option(
    "-f",
    "--force",
    "--overwrite",
    "overwrite",
    is_flag=True,
    help="Replace FILE (and its index and manifest) if it exists (as cuecap log's --force).",
)
@click.option(
    "--schema",
    "schema_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The stream's protobuf schema: a descriptor set, or a .proto file (default: PurpleDrop's).",
)
@click.option(
    "--message", metavar="NAME", help="With --schema: each frame's message, e.g. lab.Event."
)
@click.option(
    "--kind", "kind_field", metavar="FIELD", help="With --schema: an enum field naming the kind."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def record(
    uri: str,
    file: Path,
    duration: float | None,
    count: int | None,
    max_size: int,
    retry_initial: float,
    retry_max: float,
    max_retries: int | None,
    overwrite: bool,
    schema_file: Path | None,
    message: str | None,
    kind_field: str | None,
    as_json: bool,
) -> None:
    """Record the event stream at URI into FILE until Ctrl-C.

    URI is a websocket URI (ws://host:7001) or just a host (port 7001 is
    assumed). FILE gets PurpleDrop pdrecord records, readable by PurpleDrop's
    own tools; FILE.idx holds receive times and FILE.json a manifest
    (counts, gaps, why it stopped). A FILE ending in .mcap is written as MCAP.
    """
    import asyncio

    from engine.core.clock import SYSTEM_CLOCK
    from engine.core.schema import PURPLEDROP
    from engine.recording.format import RecordingError, remove_recording
    from engine.recording.mcap import MCAP_SUFFIX, McapRecordingWriter
    from engine.recording.writer import RecordingWriter
    from engine.sources.backoff import Backoff
    from engine.sources.session import record_stream
    from engine.sources.websocket import WebSocketSource, normalize_uri

    try:
        uri = normalize_uri(uri)
        backoff = Backoff(initial=retry_initial, maximum=max(retry_max, retry_initial))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    schema = PURPLEDROP
    if schema_file is not None or message is not None or kind_field is not None:
        if schema_file is None or message is None:
            raise click.UsageError("--schema and --message go together (and --kind needs them)")
        from engine.core.schema import SchemaError, SchemaSpec
        from engine.schema_files import load_schema

        proto = schema_file.suffix == ".proto"
        spec = SchemaSpec(
            message=message,
            descriptor_set=None if proto else str(schema_file),
            proto=(str(schema_file),) if proto else (),
            kind=kind_field,
        )
        try:
            schema = load_schema(spec)
        except SchemaError as exc:
            fail(f"--schema {schema_file}: {exc}")
    if overwrite:
        remove_recording(file)
    options: dict[str, Any] = {
        "recorder": "cuecap record",
        "source": uri,
        "opened_at": SYSTEM_CLOCK.time(),
        "start_reason": "command",
        "schema": schema,
    }
    try:
        writer: RecordingWriter | McapRecordingWriter = (
            McapRecordingWriter(file, **options)
            if file.suffix == MCAP_SUFFIX
            else RecordingWriter(file, **options)
        )
    except RecordingError as exc:
        fail(str(exc))

    source = WebSocketSource(
        uri, max_size=max_size, backoff=backoff, max_retries=max_retries, schema=schema
    )

    async def session() -> RecordingSummary:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            click.echo(f"{signal.Signals(signum).name}: stopping, closing {file}", err=True)
            stop.set()
            # A second Ctrl-C interrupts for real if closing ever hangs.
            loop.remove_signal_handler(signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            # Not on Windows, nor outside the main thread: Ctrl-C then interrupts.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, on_signal, signum)
        return await record_stream(
            source,
            writer,  # type: ignore[arg-type]  # the MCAP writer has the same calls
            duration=duration,
            max_records=count,
            stop=stop,
        )

    click.echo(f"recording {uri} to {file} (Ctrl-C to stop)", err=True)
    try:
        summary = asyncio.run(session())
    except KeyboardInterrupt:  # without signal handlers (Windows), or a second Ctrl-C
        click.echo(f"interrupted; {file} was closed", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        for line in summary.lines():
            click.echo(line)
    sys.exit(EXIT_OK if summary.ok else EXIT_FAILED)
