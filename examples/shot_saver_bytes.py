"""Getting a shot as bytes, without a file: here, as a data: URL for an HTML page.

The callback is called exactly once: with the JPEG bytes, or with a
``ShotFailed`` that says why there are none.
"""

import base64
import threading

from engine.shots import ShotFailed, ShotSaver
from engine.shots.testing import demo_camera

ss = ShotSaver(cameras={"gate": demo_camera()})
done = threading.Event()

IMAGE_HTML = """<img src="data:image/jpeg;base64,{img}" width="800">"""


def show_image(result):
    if isinstance(result, ShotFailed):
        print(f"no image: {result.reason}")
    else:
        html = IMAGE_HTML.format(img=base64.b64encode(result).decode())
        print(f"{len(result)} bytes of JPEG, {len(html)} characters of HTML")
    done.set()


ss.get("gate", callback=show_image)
done.wait()

# Or, in plain code that can wait: the bytes, or a ShotFailed raised.
image = ss.grab("gate")
print(f"grabbed {len(image)} bytes")
