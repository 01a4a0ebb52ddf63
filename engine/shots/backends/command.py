"""Cameras whose shot comes from a program, typically ffmpeg grabbing one frame.

The program runs without a shell, in its own process group, so a timeout kills
it and anything it started. ``{output}`` in an argument is the file it must
write (in a private temporary folder); without ``{output}`` its standard
output is the image. Secrets come from environment variables
(``secret_env``) and are hidden in every reason.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from engine.processes import kill_tree, spawn_options
from engine.shots.backends.base import BaseCamera, CaptureError, CaptureRequest, fill, redact
from engine.shots.config import CommandCameraConfig, format_fields

_STDERR_TAIL = 400


def _tail(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last[-_STDERR_TAIL:]


class CommandCamera(BaseCamera):
    kind = "command"
    config: CommandCameraConfig

    def _secrets(self) -> dict[str, str]:
        secrets: dict[str, str] = {}
        for field, env in self.config.secret_env.items():
            value = self.environ.get(env)
            if value is None:
                raise CaptureError(
                    f"camera {self.name!r}: environment variable {env} (for {{{field}}}) is not set",
                    retryable=False,
                )
            secrets[field] = value
        return secrets

    async def capture(self, request: CaptureRequest) -> bytes:
        template = self.config.argv if request.live else self.config.archive_argv
        if template is None:
            raise self.no_archive(request, "archive_argv")
        secrets = self._secrets()
        to_file = any("output" in format_fields(arg) for arg in template)
        folder = tempfile.mkdtemp(prefix="cuecap-shot-") if to_file else None
        try:
            output = Path(folder, "shot.jpg") if folder else None
            values = {**request.format_values(self.clock.time()), **secrets, "output": str(output)}
            argv = [fill(arg, values) for arg in template]
            return await self._run(argv, output, secrets)
        finally:
            if folder is not None:
                await asyncio.to_thread(shutil.rmtree, folder, True)

    async def _run(self, argv: list[str], output: Path | None, secrets: dict[str, str]) -> bytes:
        program = self.config.argv[0]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if output is None else asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                **spawn_options(),
            )
        except FileNotFoundError:
            raise CaptureError(f"program not found: {program}", retryable=False) from None
        except PermissionError:
            raise CaptureError(f"program not executable: {program}", retryable=False) from None
        try:
            stdout, stderr = await proc.communicate()
        except BaseException:  # timeout (cancellation) or shutdown: leave no process behind
            await kill_tree(proc)
            raise
        if proc.returncode != 0:
            detail = redact(_tail(stderr), secrets)
            raise CaptureError(
                f"{program} exited with status {proc.returncode}"
                + (f": {detail}" if detail else "")
            )
        if output is None:
            return stdout
        try:
            return await asyncio.to_thread(output.read_bytes)
        except FileNotFoundError:
            detail = redact(_tail(stderr), secrets)
            raise CaptureError(
                f"{program} exited without writing the shot" + (f": {detail}" if detail else "")
            ) from None
