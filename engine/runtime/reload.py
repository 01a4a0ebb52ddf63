"""Hot reload: rule files watched, valid changes applied, invalid ones reported.

The folders holding the rule files are watched rather than the files, because
editors save by writing a new file and renaming it over the old one, which a
watch on the old file never sees. Only rule files count: anything else in
the folder (the engine's own log, ``nohup.out``, an editor's swap file) is
filtered out before the watcher library sees it, and that library's logger
is kept quiet, so a log written into the rules folder cannot feed itself.
Changes are debounced, and a change that leaves every rule file's bytes as
they were (a ``touch``, a save without edits) reloads nothing. Each real
change reloads every rule file; a set that fails to load is reported with
all its errors and the engine goes on with the rules it has.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from engine.rules.errors import RuleFileError
from engine.rules.loader import RULE_SUFFIXES, RuleSet, load_rules, rule_files

Apply = Callable[[RuleSet], Awaitable[Mapping[str, Sequence[str]]]]

log = logging.getLogger("engine.reload")


def watch_targets(
    paths: Sequence[str | os.PathLike[str]],
) -> tuple[list[Path], Callable[[str], bool]]:
    """The folders to watch, and a test for the changed paths that matter."""
    folders: set[Path] = set()
    files: set[Path] = set()
    for item in paths:
        path = Path(item).resolve()
        if path.is_dir():
            folders.add(path)
        else:
            files.add(path)
    watched = sorted(folders | {f.parent for f in files})

    def relevant(changed: str) -> bool:
        p = Path(changed).resolve()
        if p in files:
            return True
        return p.parent in folders and p.suffix in RULE_SUFFIXES

    return watched, relevant


def fingerprint(paths: Sequence[str | os.PathLike[str]]) -> tuple[tuple[str, str], ...]:
    """The rule files and a digest of each one's bytes: equal when nothing changed."""
    out: list[tuple[str, str]] = []
    for path in rule_files(paths):
        try:
            digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
        except OSError as exc:
            digest = f"unreadable: {exc.errno}"
        out.append((str(path), digest))
    return tuple(out)


async def watch_rules(
    apply: Apply,
    paths: Sequence[str | os.PathLike[str]],
    *,
    stop: asyncio.Event,
    env: Mapping[str, str] | None = None,
    debounce_ms: int = 300,
    on_result: Callable[[object], None] | None = None,
) -> None:
    """Reload ``paths`` whenever a rule file changes and ``apply`` them, until ``stop`` is set.

    ``apply`` is the engine's (``Engine.apply``): it switches to the new rules and
    returns what changed.

    ``on_result`` gets each outcome: the changes applied, the ``RuleFileError``,
    or the exception that applying valid rules raised.
    """
    from watchfiles import awatch

    folders, relevant = watch_targets(paths)
    if not folders:
        return
    # Its "N changes detected" line per change would feed a log kept in the folder.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    seen = await asyncio.to_thread(fingerprint, paths)
    async for _changes in awatch(
        *folders,
        stop_event=stop,
        debounce=debounce_ms,
        step=50,
        recursive=False,
        watch_filter=lambda _change, path: relevant(path),
    ):
        now = await asyncio.to_thread(fingerprint, paths)
        if now == seen:
            continue  # touched, or saved as it was
        seen = now
        try:
            rules = await asyncio.to_thread(load_rules, paths, env)
        except RuleFileError as exc:
            log.error("rule files changed but cannot be used; the running rules stay:\n%s", exc)
            if on_result is not None:
                on_result(exc)
            continue
        try:
            applied = await apply(rules)
        except Exception as exc:  # e.g. a new recordings folder that cannot be created
            # The watcher must outlive one bad reload, or later edits are silently ignored.
            log.exception("rule files changed but applying them failed; edit them again to retry")
            if on_result is not None:
                on_result(exc)
            continue
        if applied:
            what = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in applied.items())
            log.info("rule files reloaded (%s)", what)
        else:
            log.info("rule files reloaded (nothing changed)")
        if on_result is not None:
            on_result(applied)
