"""``cuecap sim``: a simulated PurpleDrop ``pdserver`` on a websocket, or a recording served back.

Runs until Ctrl-C (or SIGTERM), until ``--for`` (``--duration``) of stream has
been sent, or until a ``--replay`` has been served in full; then it closes
the clients' connections cleanly and prints a summary. The first line printed
is the URI to connect to, so scripts can read it (with ``--port 0``, any free
port).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from engine.cli.common import DURATION, EXIT_FAILED, fail

if TYPE_CHECKING:  # loaded when the command runs: `cuecap --help` stays fast
    from engine.sim.world import SimWorld

# Options that shape the simulated world; they mean nothing for --replay.
_WORLD_OPTIONS = ("seed", "fps", "image_size", "quality", "idle", "moves")


class Pair(click.ParamType[tuple[float, float]]):
    """Two numbers written ``A<sep>B`` (``1024x768``, ``5-20``); with ``single``, one means both."""

    def __init__(
        self,
        name: str,
        separator: str,
        cast: Callable[[str], float],
        *,
        single: bool,
        example: str,
    ) -> None:
        self.name = name
        self.separator = separator
        self.cast = cast
        self.single = single
        self.example = example

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[float, float]:
        if isinstance(value, tuple):
            return value
        parts = str(value).strip().lower().split(self.separator)
        if len(parts) == 1 and self.single:
            parts *= 2
        try:
            first, second = (self.cast(part.strip()) for part in parts)
        except ValueError:
            self.fail(f"{value!r} is not like {self.example}", param, ctx)
        if first < 0 or second < 0:
            self.fail(f"{value!r}: numbers must not be negative", param, ctx)
        if self.single and first > second:
            self.fail(f"{value!r}: the minimum is above the maximum", param, ctx)
        return first, second


IMAGE_SIZE = Pair("WxH", "x", int, single=False, example="1024x768")
SECONDS = Pair("MIN-MAX", "-", float, single=True, example="5-20 (or one number)")
COUNT = Pair("MIN-MAX", "-", int, single=True, example="2-6 (or one number)")


def _speed(ctx: click.Context, param: click.Parameter, value: str) -> float:
    text = value.strip().lower()
    if text in ("max", "inf", "unpaced"):
        return math.inf
    try:
        speed = float(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number (or 'max')") from None
    if not speed > 0:
        raise click.BadParameter(f"{value!r}: must be above 0 (or 'max')")
    return speed


@click.command(short_help="Serve a simulated PurpleDrop event stream on a websocket.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=7001,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0: any free port.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same stream.")
@click.option(
    "--fps",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0, 120),
    help="Camera frames per second (0: no camera).",
)
@click.option(
    "--image-size",
    default="1024x768",
    show_default=True,
    type=IMAGE_SIZE,
    help="Camera frame size.",
)
@click.option(
    "--quality", default=85, show_default=True, type=click.IntRange(1, 95), help="JPEG quality."
)
@click.option(
    "--idle",
    default="8-20",
    show_default=True,
    type=SECONDS,
    help="Seconds of quiet between bursts of moves.",
)
@click.option(
    "--moves",
    default="2-6",
    show_default=True,
    type=COUNT,
    help="Droplet moves per burst.",
)
@click.option(
    "--for",
    "--duration",
    "duration",
    type=DURATION,
    metavar="DURATION",
    help="Stop after this much stream: seconds, or 90s, 5min.",
)
@click.option(
    "--speed",
    default="1",
    show_default=True,
    callback=_speed,
    help="Times real time; 'max': as fast as clients read.",
)
@click.option(
    "--replay",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve this recording back instead of the simulator.",
)
@click.option(
    "--wait-for-clients",
    type=click.IntRange(0),
    help="Start the stream once this many clients are connected [default: 0; 1 with --replay].",
)
@click.pass_context
def sim(
    ctx: click.Context,
    host: str,
    port: int,
    seed: int,
    fps: float,
    image_size: tuple[int, int],
    quality: int,
    idle: tuple[float, float],
    moves: tuple[int, int],
    duration: float | None,
    speed: float,
    replay: Path | None,
    wait_for_clients: int | None,
) -> None:
    """Serve a simulated PurpleDrop event stream, like pdserver, on ws://HOST:PORT.

    Background events flow at realistic rates; bursts of droplet moves come
    between idle stretches; the camera sends real JPEGs of the board. With
    --replay FILE, a recording is served back with its original timing.
    """
    from engine.recording.format import RecordingError
    from engine.sim.world import SimConfigError, SimWorld

    if replay is not None:
        given = [
            f"--{name.replace('_', '-')}"
            for name in _WORLD_OPTIONS
            if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
        ]
        if given:
            raise click.UsageError(
                f"{', '.join(given)}: only for the simulated world, not with --replay"
            )
    try:
        world = None
        if replay is None:
            world = SimWorld(
                seed=seed,
                fps=fps,
                image_size=image_size,
                jpeg_quality=quality,
                idle=idle,
                moves_per_burst=moves,
            )
        code = asyncio.run(
            _serve(
                host,
                port,
                world=world,
                replay=replay,
                speed=speed,
                duration=duration,
                wait=wait_for_clients,
            )
        )
    except (SimConfigError, RecordingError) as exc:  # bad options or not a recording
        fail(str(exc))
    except OSError as exc:  # the port is taken, the interface does not exist
        fail(exc.strerror if exc.strerror and exc.filename is None else str(exc), EXIT_FAILED)
    except KeyboardInterrupt:  # where signal handlers are unavailable (Windows)
        click.echo("stopped")
        code = 0
    ctx.exit(code)


async def _serve(
    host: str,
    port: int,
    *,
    world: SimWorld | None,
    replay: Path | None,
    speed: float,
    duration: float | None,
    wait: int | None,
) -> int:
    from engine.sim.server import start_sim_server

    server = await start_sim_server(
        host,
        port,
        world=world,
        replay=replay,
        speed=speed,
        duration=duration,
        wait_for_clients=wait,
    )
    pace = "as fast as clients read" if math.isinf(speed) else f"{speed:g}x real time"
    if world is not None:
        c = world.config
        what = (
            f"simulated PurpleDrop, seed {world.seed}, camera "
            + (f"{c.fps:g} fps {c.image_size[0]}x{c.image_size[1]}" if c.fps else "off")
            + f", {pace}"
        )
    else:
        what = f"replaying {replay} ({pace})"
    click.echo(f"{server.uri}  {what}")
    if server.wait_for_clients:
        click.echo(
            f"waiting for {server.wait_for_clients} client(s) before streaming; Ctrl-C to stop"
        )
    else:
        click.echo("Ctrl-C to stop")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(
            NotImplementedError, RuntimeError, ValueError
        ):  # not on Windows / threads
            loop.add_signal_handler(sig, stop.set)
    done = asyncio.ensure_future(server.wait_done())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({done, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        done.cancel()
        stopped.cancel()
        await server.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
    why = "stopped" if stop.is_set() else "stream ended"
    click.echo(f"{why}: {server.summary()}")
    return 1 if server.error else 0
