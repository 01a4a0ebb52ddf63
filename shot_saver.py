"""``from shot_saver import ShotSaver, status``: the original script's import, kept working.

Scripts written for the original ``ShotSaver`` (a video server's script
module) import it under this name; cuecap's saver keeps its interface. See
docs/coming-from-scripts.md.
"""

from engine.compat.shot_saver import ShotSaver
from engine.shots.status import ShotFailed, UnknownCamera, status

__all__ = ["ShotFailed", "ShotSaver", "UnknownCamera", "status"]
