"""Cameras and saver settings for the compatible ``ShotSaver``, read from rule files.

Scripts written for the original ``ShotSaver`` call ``ShotSaver()`` with no
cameras: the original ran inside a video server that knew every channel.
Here the cameras live in rule files, so a saver without ``cameras=`` takes
those of the default rule files (``$CUECAP_RULES``, else ``rules/``), read by
the same loader as ``cuecap run``: ``${ENV}`` expansion, ``file:line:column``
errors. ``ShotSaver.from_file`` reads one file the same way, and since it is
a file meant for the saver, a section or setting the saver does not use is
an error there rather than silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.rules.errors import RuleError, RuleFileError
from engine.rules.loader import RULES_ENV, RuleSet, default_rule_paths, load_rules
from engine.shots.config import ShotsConfig

# What a file for the saver alone may hold; the rest belongs to ``cuecap run``.
SAVER_SECTIONS = ("cameras", "sources")  # sources: what stream cameras read
SAVER_SETTINGS = ("shots", "timezone")


@dataclass
class SaverConfig:
    """Cameras and settings for a saver, and where they came from (for error hints)."""

    cameras: dict[str, Any] = field(default_factory=dict)
    settings: ShotsConfig | None = None
    where: str = ""  # "rules/", "$CUECAP_RULES (...)", a file name; "" when none

    def unknown_hint(self) -> str:
        """What to do about an unknown camera name, said where the cameras would be."""
        if self.where:
            return f"name it under 'cameras:' in {self.where}, or pass cameras= to ShotSaver"
        return (
            "no rule files here: create rules/cameras.yaml with a 'cameras:' section "
            f"(cuecap init writes one), set ${RULES_ENV}, or pass cameras= to ShotSaver"
        )


def default_config(env: Mapping[str, str] | None = None) -> SaverConfig:
    """The cameras and saver settings of the default rule files; none if there are none.

    Raises ``RuleFileError`` (every problem, with file:line:column) when the
    files exist but have errors: a script must not run on half a configuration.
    """
    env = os.environ if env is None else env
    paths = default_rule_paths(env)
    if not env.get(RULES_ENV, "").strip():
        if not Path(paths[0]).is_dir():
            return SaverConfig()
        where = f"a rule file in {paths[0]}/ (or ${RULES_ENV})"
    else:
        where = f"a rule file of ${RULES_ENV} ({env[RULES_ENV]})"
    rules = load_rules(paths, env=env)
    return SaverConfig(dict(rules.cameras), rules.shot_settings(), where)


def file_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> SaverConfig:
    """The cameras and ``settings: shots:`` of one rule file meant for the saver."""
    try:
        rules = load_rules([path], env=env)
    except RuleFileError as exc:
        raise RuleFileError(_hinted(e) for e in exc.errors) from None
    problems = unused(rules)
    if problems:
        raise RuleFileError(problems)
    return SaverConfig(dict(rules.cameras), rules.shot_settings(), str(path))


def unused(rules: RuleSet) -> list[RuleError]:
    """Every section and setting of ``rules`` that a saver would not use."""
    out = []
    for (section, name), origin in rules.origins.items():
        if section not in SAVER_SECTIONS:
            out.append(
                RuleError(
                    origin.location,
                    f"{section[:-1]} {name!r}: a file for ShotSaver holds 'cameras:' and "
                    "'settings: shots:' only; load the rules with cuecap run",
                )
            )
    for key, location in rules.setting_origins.items():
        if key not in SAVER_SETTINGS:
            out.append(
                RuleError(
                    location,
                    f"setting {key!r} is not used by ShotSaver "
                    f"(it uses: {', '.join(SAVER_SETTINGS)})",
                )
            )
    return out


def _hinted(error: RuleError) -> RuleError:
    """Files written for the earlier layout kept the saver's settings at the top (``shots:``)."""
    if error.message.startswith("unknown section 'shots'"):
        return RuleError(error.location, "the saver's settings go under 'settings: shots:'")
    return error
