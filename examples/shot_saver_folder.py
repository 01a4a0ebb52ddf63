"""Changing the folder of shots: for the whole saver, or for one shot."""

from engine.shots import ShotSaver
from engine.shots.testing import demo_camera

ss = ShotSaver(cameras={"gate": demo_camera()})

# Globally, for every shot of this saver...
ss.screenshots_folder = "shots/all"
_, first = ss.save("gate")

# ...or for one shot only.
_, second = ss.save("gate", file_path="shots/just-this-one")

ss.wait()
print(first, first.exists())
print(second, second.exists())
