"""``ShotSaver`` as scripts written for the original class use it: cameras from rule files.

The original ran inside a video server that knew every channel, so its
scripts call ``ShotSaver()`` with no cameras. Here the cameras live in rule
files: without ``cameras=``, this saver takes the cameras and ``settings:
shots:`` of the default rule files (``$CUECAP_RULES``, else ``rules/``), and
``from_file`` reads one rule file meant for it. Everything else is
``engine.shots.saver.ShotSaver``, which knows nothing of rule files (the
rules package builds on the shots package, not the other way round).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.compat.rulefiles import SaverConfig, default_config, file_config
from engine.core.winpaths import check_path
from engine.errors import InvalidArgument
from engine.shots.config import ShotsConfig
from engine.shots.frame_cache import FrameCache
from engine.shots.saver import Channel
from engine.shots.saver import ShotSaver as _Saver
from engine.shots.service import StatusCallback, When


class ShotSaver(_Saver):
    """``engine.shots.ShotSaver`` that, without ``cameras=``, uses those of the rule files.

    Rule files with errors raise ``RuleFileError`` listing each at
    ``file:line:column``; an unknown camera's ``UnknownCamera`` says where
    cameras are configured. A Windows folder (``r"D:\\shots"``, ``r"shots\\day"``)
    as ``screenshots_folder``, ``file_path`` or ``file_name`` raises
    ``InvalidArgument`` on other systems (``engine.core.winpaths``), before
    anything is made.
    """

    def __init__(
        self,
        pool_size: int | None = None,
        callback: StatusCallback | None = None,
        *,
        cameras: Mapping[str, Any] | None = None,
        settings: ShotsConfig | None = None,
        **kwargs: Any,
    ) -> None:
        check_path(kwargs.get("screenshots_folder"), "screenshots_folder", cwd=os.getcwd())
        if "file_path" in kwargs:  # save()'s argument, easily put here when moving a script
            check_path(kwargs["file_path"], "file_path", cwd=os.getcwd())
            raise InvalidArgument(
                "ShotSaver() takes no file_path: that is save()'s folder for one shot; "
                "the saver's own folder is screenshots_folder= (or ss.screenshots_folder = ...)"
            )
        found = SaverConfig(dict(cameras)) if cameras is not None else default_config()
        chosen = settings if settings is not None else found.settings
        if chosen is not None and "screenshots_folder" not in kwargs:
            check_path(chosen.folder, "settings: shots: folder", cwd=os.getcwd())
        if cameras is None:
            # stream cameras of the rules: no engine feeds them, past frames come from recordings
            kwargs.setdefault("frame_cache", FrameCache())
        super().__init__(
            pool_size,
            callback,
            cameras=found.cameras,
            settings=chosen,
            **kwargs,
        )
        if cameras is None:
            self._unknown_hint = found.unknown_hint()

    @property
    def screenshots_folder(self) -> str:
        return _Saver.screenshots_folder.fget(self)  # type: ignore[attr-defined, no-any-return]

    @screenshots_folder.setter
    def screenshots_folder(self, value: str | Path) -> None:
        check_path(value, "screenshots_folder", cwd=os.getcwd())
        _Saver.screenshots_folder.fset(self, value)  # type: ignore[attr-defined]

    def save(
        self,
        channel_full_guid: Channel,
        dt: When = None,
        figures: bool = False,
        file_name: str | None = None,
        file_path: str | Path | None = None,
        callback: StatusCallback | None = None,
        task_guid: str | None = None,
    ) -> tuple[str, Path]:
        """As ``engine.shots.ShotSaver.save``; a Windows ``file_path``/``file_name`` is refused."""
        check_path(file_path, "file_path", cwd=os.getcwd())
        check_path(file_name, "file_name", what="file", cwd=os.getcwd())
        return super().save(
            channel_full_guid, dt, figures, file_name, file_path, callback, task_guid
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> ShotSaver:
        """A saver with the ``cameras:`` and ``settings: shots:`` of one rule file.

        Read as ``cuecap`` reads rule files (``${ENV}``, ``file:line:column``
        errors); raises ``RuleFileError`` with every problem, including a
        section or setting the saver would not use.
        """
        found = file_config(path)
        saver = cls(cameras=found.cameras, settings=found.settings, **kwargs)
        saver._unknown_hint = found.unknown_hint()
        return saver
