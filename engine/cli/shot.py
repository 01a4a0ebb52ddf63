"""``cuecap shot CAMERA [RULES...]``: take one shot now, with the saver's checks and retries.

The camera comes from the rule files (``rules/`` by default), or ``--url``
makes an ad-hoc HTTP camera so the command works without any file. Exit
status: 0 saved, 1 the shot failed (the reason is printed), 2 bad input.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from engine.cli.common import (
    DURATION,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    error,
    fail,
    load_rules_or_exit,
)

if TYPE_CHECKING:  # loaded when the command runs: `cuecap --help` stays fast
    from engine.rules.loader import RuleSet
    from engine.rules.model import SourceConfig
    from engine.shots.config import CameraConfig, ShotsConfig


def _moment(text: str | None) -> float | None:
    """``--at``: epoch seconds (``@`` optional, as in ``cuecap log``) or an ISO date-time.

    An ISO date-time without a zone is local time.
    """
    if text is None:
        return None
    try:
        return float(text.removeprefix("@"))
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither epoch seconds (@1714557600) nor an ISO date-time "
            "(2026-03-04T05:06:07)",
            param_hint="--at",
        ) from None


def _from_rules(camera: str, rules: tuple[str, ...]) -> tuple[CameraConfig, ShotsConfig, RuleSet]:
    ruleset = load_rules_or_exit(rules)
    config = ruleset.cameras.get(camera)
    if config is None:
        import difflib

        known = ", ".join(sorted(ruleset.cameras)) or "none"
        close = difflib.get_close_matches(camera, list(ruleset.cameras), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        fail(f"no camera named {camera!r} in the rule files (known: {known}){hint}")
    return config, ruleset.shot_settings(), ruleset


def _ad_hoc(url: str, auth: str | None, user: str | None, password_env: str | None) -> CameraConfig:

    from engine.core.validation import InvalidSettings
    from engine.shots.backends import camera_config

    spec: dict[str, object] = {"type": "http", "url": url}
    if user or password_env:
        if not (user and password_env):
            raise click.UsageError("--user and --password-env go together")
        spec["auth"] = {"type": auth or "basic", "username": user, "password_env": password_env}
    try:
        return camera_config(spec)
    except InvalidSettings as exc:
        raise click.UsageError(f"--url: {str(exc).removeprefix('camera: ')}") from None


async def _take(
    camera: str,
    config: CameraConfig,
    settings: ShotsConfig,
    at: float | None,
    output: str | None,
    source: SourceConfig | None = None,
) -> int:
    from engine.shots.files import write_atomic
    from engine.shots.frame_cache import FrameCache
    from engine.shots.service import ShotService
    from engine.shots.status import ShotFailed

    cache = FrameCache()
    if source is not None:
        # A stream camera outside the engine: its source's first camera frame is "now".
        from engine.cli.probe import probe_source
        from engine.shots.config import StreamCameraConfig

        assert isinstance(config, StreamCameraConfig)  # only stream cameras have a source

        timeout = config.timeout if config.timeout is not None else settings.timeout_sec
        read = await probe_source(config.source, source, True, cache, timeout)
        if not read.ok:
            error(f"camera {camera!r}: source {config.source!r}: {read.detail}")
            return EXIT_FAILED
    service = ShotService({camera: config}, settings, frame_cache=cache)
    async with service:
        if output is None or Path(output).is_dir():
            result = await service.shoot(camera, dt=at, root=output)
            if result != "success":
                error(result.reason)
                return EXIT_FAILED
            click.echo(str(result.path))
            return EXIT_OK
        try:
            data = await service.grab(camera, dt=at)
        except ShotFailed as exc:
            error(exc.reason)
            return EXIT_FAILED
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return EXIT_OK
    target = Path(output).expanduser().absolute()
    try:
        await asyncio.to_thread(write_atomic, target, data, "cli")
    except OSError as exc:
        error(f"cannot write {target}: {exc.strerror or exc}")
        return EXIT_USAGE  # -o names a place that cannot be written: bad input
    click.echo(str(target))
    return EXIT_OK


@click.command("shot", short_help="Take one shot from a camera and print where it went.")
@click.argument("camera")
@click.argument("rules", nargs=-1, type=click.Path())
@click.option(
    "-o",
    "--output",
    help="File to write (- for stdout), or a folder; default: the screenshots folder and templates.",
)
@click.option("--url", help="Ad-hoc HTTP snapshot camera instead of rule files.")
@click.option("--auth", type=click.Choice(["basic", "digest"]), help="With --url: auth scheme.")
@click.option("--user", help="With --url: user name.")
@click.option("--password-env", help="With --url: environment variable holding the password.")
@click.option(
    "--at", "at", help="Moment to shoot (epoch seconds, @epoch or ISO date-time); default now."
)
@click.option("--timeout", type=DURATION, help="Per try: seconds, or 500ms, 1min.")
@click.option("--tries", type=click.IntRange(min=1), help="Tries before giving up.")
def shot(
    camera: str,
    rules: tuple[str, ...],
    output: str | None,
    url: str | None,
    auth: str | None,
    user: str | None,
    password_env: str | None,
    at: str | None,
    timeout: float | None,
    tries: int | None,
) -> None:
    """Take one shot from CAMERA (named in RULES, default rules/) and print where it went."""
    from engine.shots.config import ShotsConfig

    moment = _moment(at)
    ruleset = None
    if url is not None:
        if rules:
            raise click.UsageError("give either --url or rule files, not both")
        config, settings = _ad_hoc(url, auth, user, password_env), ShotsConfig()
    else:
        if auth or user or password_env:
            raise click.UsageError("--auth, --user and --password-env go with --url")
        config, settings, ruleset = _from_rules(camera, rules)
    settings = settings.model_copy(update={"retention": None})  # one shot: no clean-up run
    if timeout is not None:
        settings.timeout_sec = timeout
        config = config.model_copy(update={"timeout": None})
    if tries is not None:
        settings.max_tries = tries
        config = config.model_copy(update={"tries": None})
    source = None
    if config.type == "stream":
        if moment is None:
            assert ruleset is not None  # --url cameras are http cameras
            source = ruleset.sources[config.source]  # the loader checked it is declared
        elif not config.recordings:
            # outside the engine no past frame is in memory: only recordings have them
            fail(
                f"camera {camera!r} takes frames from source {config.source!r}; a past "
                "moment (--at) comes from recordings: give the camera a 'recordings:' folder"
            )
    sys.exit(asyncio.run(_take(camera, config, settings, moment, output, source)))
