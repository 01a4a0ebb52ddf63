"""What a valid rule set will still fail at on first use: warnings for ``cuecap check`` and ``run``.

The loader proves a rule file means something; it cannot know the machine it
will run on. A camera password read from an environment variable that is not
set, or ``ffmpeg`` missing from ``PATH``, only fails at the first shot,
perhaps at 3 a.m. These checks look at the environment and ``PATH`` now and
say so up front. The environment and the ``PATH`` lookup are passed in (tests
give their own); a program named by its path is looked at on disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from engine.rules.errors import Location, RuleError
from engine.rules.loader import RuleSet
from engine.rules.model import RunAction
from engine.shots.config import StreamCameraConfig

Which = Callable[[str], str | None]  # shutil.which

# What to install when a well-known program is missing (Debian/Ubuntu package names).
PACKAGES = {"ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "curl": "curl", "gphoto2": "gphoto2"}


def _secrets(config: Any) -> Iterator[tuple[str, str]]:
    """``(what, VARIABLE)`` for each secret a camera reads from the environment."""
    auth = getattr(config, "auth", None)
    if auth is not None and getattr(auth, "password_env", None):
        yield "password", auth.password_env
    for field, variable in (getattr(config, "secret_env", None) or {}).items():
        yield f"{{{field}}}", variable


def _program_problem(program: str, which: Which) -> str | None:
    if "{" in program:
        return None  # a template: known only when it runs
    if os.sep in program:
        path = Path(program).expanduser()
        if not path.is_file():
            return f"program {program} does not exist"
        if not os.access(path, os.X_OK):
            return f"program {program} is not executable"
        return None
    if which(program) is None:
        package = PACKAGES.get(program)
        hint = f" (install it, e.g. apt-get install {package})" if package else ""
        return f"program {program!r} is not on PATH{hint}"
    return None


def warnings(rules: RuleSet, env: Mapping[str, str], which: Which) -> list[RuleError]:
    """Every problem that will make a camera or an action fail when first used."""
    out: list[RuleError] = []

    def where(section: str, name: str) -> Location:
        origin = rules.origins.get((section, name))
        return origin.location if origin is not None else Location(section)

    for name, config in rules.cameras.items():
        for what, variable in _secrets(config):
            value = env.get(variable)
            if value is None or not value.strip():
                state = "not set" if value is None else "empty"
                out.append(
                    RuleError(
                        where("cameras", name),
                        f"camera {name!r}: its {what} comes from ${variable}, which is {state}; "
                        "every shot will fail until it is set",
                    )
                )
        source = (
            rules.sources.get(config.source) if isinstance(config, StreamCameraConfig) else None
        )
        if isinstance(config, StreamCameraConfig) and getattr(source, "fps", None) == 0:
            out.append(
                RuleError(
                    where("cameras", name),
                    f"camera {name!r}: its source {config.source!r} is a simulator with fps: 0, "
                    "which sends no camera frames; every shot will fail",
                )
            )
        for key in ("argv", "archive_argv"):
            argv = getattr(config, key, None)
            problem = _program_problem(argv[0], which) if argv else None
            if problem:
                out.append(RuleError(where("cameras", name), f"camera {name!r}: {problem}"))
    for name, rule in rules.rules.items():
        for action in rule.do:
            if isinstance(action, RunAction):
                program = action.argv[0]
                if action.cwd and os.sep in program and not os.path.isabs(program):
                    program = os.path.join(action.cwd, program)
                problem = _program_problem(program, which)
                if problem:
                    out.append(RuleError(where("rules", name), f"rule {name!r}: run: {problem}"))
    return out
