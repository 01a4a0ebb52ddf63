"""Spam periods: how often a target may be sent to, overall and per camera. Pure.

After a message is accepted, the target takes nothing else for ``period``
seconds, and nothing else about the same camera for ``camera_period``
seconds. A message refused here is dropped at once (counted), never queued:
a burst of motion sends one e-mail, not fifty later ones. Time is passed in.
"""

from __future__ import annotations


class SpamPolicy:
    def __init__(self, period: float = 0.0, camera_period: float = 0.0) -> None:
        self.period = period
        self.camera_period = camera_period
        self._last: float | None = None
        self._last_by_camera: dict[str, float] = {}
        self.refused = 0

    def accepts(self, now: float, camera: str = "") -> bool:
        """Whether a message now may go; if so, it counts as sent from now on."""
        if self.period > 0 and self._last is not None and now - self._last < self.period:
            self.refused += 1
            return False
        if camera and self.camera_period > 0:
            last = self._last_by_camera.get(camera)
            if last is not None and now - last < self.camera_period:
                self.refused += 1
                return False
        self._last = now
        if camera:
            self._last_by_camera[camera] = now
        return True
