"""A shot of a specific moment, with a chosen file name: today at 00:00:00.

A moment in the past comes from the camera's archive (its ``archive_url``);
one in the future waits for that moment.
"""

import datetime

from engine.shots import ShotSaver, status
from engine.shots.testing import demo_camera

ss = ShotSaver(cameras={"gate": demo_camera()})

dt = datetime.datetime.combine(
    datetime.datetime.now().date(),  # today
    datetime.time(),  # 00:00:00
)


def report(guid: str, state: str) -> None:
    if state == status.error:
        print(f"failed: {state.reason}")


task_guid, path = ss.save("gate", dt=dt, file_name="midnight_shot.jpg", callback=report)
ss.wait()
print(path, path.exists())
