"""Tracking the status of shots with a callback.

The callback hears ``in_queue``, then ``saving`` (once per try), then
``success`` or ``error``; an error carries its reason. ``tasks`` keeps the path
of each task until it is done. Callbacks run on the saver's thread: keep them
quick.
"""

from engine.shots import ShotSaver, status
from engine.shots.testing import demo_camera

ss = ShotSaver(cameras={"gate": demo_camera()})

tasks = {}


def callback(guid, state):
    print(f"[{guid}] {state}")  # the current status of the task
    if state == status.success:
        path = tasks.pop(guid)
        print(f"saved {path} ({path.stat().st_size} bytes)")
    elif state == status.error:
        path = tasks.pop(guid)
        print(f"can't save shot {path}: {state.reason}")


task_guid, file_path = ss.save("gate", callback=callback)
tasks[task_guid] = file_path
ss.wait()
