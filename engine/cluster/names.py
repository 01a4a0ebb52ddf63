"""Subjects, stream and bucket names, message ids: what every engine of a site must agree on.

Pure functions of the site name and the rules, so engines started from the
same rule files meet on the same streams without talking first.
"""

from __future__ import annotations

import base64
import re

PREFIX = "cuecap"
ENGINE_HEADER = "Cuecap-Engine"  # the publishing engine's name on every event
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def token(name: str) -> str:
    """A rule or camera name as one subject token (names may hold dots, which NATS splits on)."""
    if _TOKEN.match(name):
        return name
    return "=" + base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def instant_text(instant: float) -> str:
    """An instant as engines write it into ids: the same float always gives the same text."""
    return f"{instant:.6f}"


class Names:
    """Every name one site uses on the server."""

    def __init__(self, site: str) -> None:
        self.site = site
        upper = site.upper().replace("-", "_")
        self.firing_stream = f"CUECAP_{upper}_FIRINGS"
        self.shot_stream = f"CUECAP_{upper}_SHOTS"
        self.rule_bucket = f"cuecap_{site}_rules"
        self.shot_bucket = f"cuecap_{site}_shots"
        self.engine_bucket = f"cuecap_{site}_engines"  # each engine's record of itself

    # -- firings ---------------------------------------------------------------

    @property
    def firings(self) -> str:
        return f"{PREFIX}.{self.site}.firings.>"

    def firing_subject(self, rule: str) -> str:
        return f"{PREFIX}.{self.site}.firings.{token(rule)}"

    def firing_consumer(self, rule: str) -> str:
        return f"firings-{token(rule)}"

    @staticmethod
    def firing_id(rule: str, instant: float) -> str:
        """``rule@instant``: every engine publishes a fire under this id; the server keeps one."""
        return f"{rule}@{instant_text(instant)}"

    # -- shots -----------------------------------------------------------------

    @property
    def shots(self) -> str:
        return f"{PREFIX}.{self.site}.shots.>"

    def shot_subject(self, camera: str) -> str:
        return f"{PREFIX}.{self.site}.shots.{token(camera)}"

    def shot_consumer(self, camera: str) -> str:
        return f"shots-{token(camera)}"

    def shot_status(self, shot: str) -> str:
        return f"{PREFIX}.{self.site}.shot-status.{token(shot)}"

    # -- events ----------------------------------------------------------------

    @property
    def events(self) -> str:
        return f"{PREFIX}.{self.site}.events.>"

    def event_subject(self, kind: str) -> str:
        """``cuecap.<site>.events.recording.started``: the kind's dots become subject tokens."""
        return f"{PREFIX}.{self.site}.events.{kind}"

    # -- streams fanned out (publish_to: / type: nats) --------------------------------

    @property
    def lease_bucket(self) -> str:
        """Who reads each published source: one key per source, held by one engine."""
        return f"cuecap_{self.site}_leases"

    def feed_stream(self, stream: str) -> str:
        """The JetStream stream of ``publish_to: stream`` (a name of letters, digits, _ and -)."""
        return f"CUECAP_{self.site.upper().replace('-', '_')}_FEED_{stream}"

    def feed_subject(self, stream: str) -> str:
        return f"{PREFIX}.{self.site}.feeds.{stream}"
