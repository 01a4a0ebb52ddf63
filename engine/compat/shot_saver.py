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
from typing import Any

from engine.compat.rulefiles import SaverConfig, default_config, file_config
from engine.shots.config import ShotsConfig
from engine.shots.frame_cache import FrameCache
from engine.shots.saver import ShotSaver as _Saver
from engine.shots.service import StatusCallback


class ShotSaver(_Saver):
    """``engine.shots.ShotSaver`` that, without ``cameras=``, uses those of the rule files.

    Rule files with errors raise ``RuleFileError`` listing each at
    ``file:line:column``; an unknown camera's ``UnknownCamera`` says where
    cameras are configured.
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
        found = SaverConfig(dict(cameras)) if cameras is not None else default_config()
        if cameras is None:
            # stream cameras of the rules: no engine feeds them, past frames come from recordings
            kwargs.setdefault("frame_cache", FrameCache())
        super().__init__(
            pool_size,
            callback,
            cameras=found.cameras,
            settings=settings if settings is not None else found.settings,
            **kwargs,
        )
        if cameras is None:
            self._unknown_hint = found.unknown_hint()

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
