"""Simple example: the current shot of a camera, standard name, screenshots folder.

Set CUECAP_CAMERA_URL to your camera's snapshot URL; without it a stand-in
camera runs on 127.0.0.1. Shots still queued when the script ends are
finished before it exits.
"""

from engine.shots import ShotSaver
from engine.shots.testing import demo_camera

ss = ShotSaver(cameras={"gate": demo_camera()})

task_guid, path = ss.save("gate")
print(f"saving to {path}")
