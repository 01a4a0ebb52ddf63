"""The seed documents' snippets run as they are written, with only the channel or host changed.

The snippets below are copied from the seed documents (the ShotSaver
documentation's five examples and PurpleDrop's EventRecorder demo); the
only edit to each is the channel guid (a camera of ``rules/``) or the
PurpleDrop host. Each runs as its own Python process in a fresh folder.

Two things of their original surroundings are stood in for, outside the
snippets: the video server's ``host`` module (``host.message``,
``host.question``) and Windows' ``os.startfile``, by a ``host.py`` on the
path that records what it was asked; and, for the EventRecorder demo, the
10 s captures and 5 s pauses are scaled down by a wrapper that makes
``time.sleep`` 50 times shorter, so the demo runs in about a second.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.recording.reader import RecordingReader
from engine.shots.testing import HttpCameraServer
from engine.sim.server import run_sim_in_thread

ROOT = Path(__file__).resolve().parent.parent
SEED_CHANNEL = '"uR76TlcA_O4Yazs8u"'

SIMPLE = """
from shot_saver import ShotSaver

CHANNEL_GUID = "uR76TlcA_O4Yazs8u"  # Must be replaced with the guid of your channel

ss = ShotSaver()

ss.save(CHANNEL_GUID)
"""

FOLDER_GLOBAL = r"""
from shot_saver import ShotSaver

CHANNEL_GUID = "uR76TlcA_O4Yazs8u"  # Must be replaced with the guid of your channel

ss = ShotSaver()
ss.screenshots_folder = r"D:\DSSL\shots"

ss.save(CHANNEL_GUID)
"""

FOLDER_PER_SHOT = r"""
from shot_saver import ShotSaver

CHANNEL_GUID = "uR76TlcA_O4Yazs8u"  # Must be replaced with the guid of your channel

ss = ShotSaver()

ss.save(CHANNEL_GUID, file_path=r"D:\DSSL\shots")
"""

DATETIME = """
import datetime
from shot_saver import ShotSaver

CHANNEL_GUID = "uR76TlcA_O4Yazs8u"  # Must be replaced with the guid of your channel

ss = ShotSaver()

dt = datetime.datetime.combine(
    datetime.datetime.now().date(),  # Current date
    datetime.time()  # Время 00:00:00
)
ss.save(CHANNEL_GUID, dt=dt, file_name="midnight_shot.jpg")
"""

STATUS = """
import os
import host
from shot_saver import ShotSaver, status

CHANNEL_GUID = "uR76TlcA_O4Yazs8u"

ss = ShotSaver()

tasks = {}


def callback(guid, state):
    host.message("[%s] %s" % (guid, state))  # Displaying the current task status
    if state == status.success:
        # Opening the image if the screenshot was successfully saved
        fpath = tasks.pop(guid)
        os.startfile(fpath)
    elif state == status.error:
        # Removing the task from the list if an error occurs
        fpath = tasks.pop(guid)
        host.message("Can't save shot: %s" % fpath)


task_guid, file_path = ss.save(CHANNEL_GUID, callback=callback)
tasks[task_guid] = file_path
"""

BYTES = '''
import base64
import host
from shot_saver import ShotSaver

CHANNEL_GUID = "uR76TlcA_O4Yazs8u"

ss = ShotSaver()

__image_html = """<img src="data:image/png;base64,{img}" width="800">"""


def show_image(image_bytes):
    host.question(
        __image_html.format(img=base64.b64encode(image_bytes)),
        "OK", lambda: 0
    )


ss.get(CHANNEL_GUID, callback=show_image)
'''

# The seed's demo (its text lost its indentation in the document; restored).
EVENT_RECORDER_DEMO = """
from event_recorder import EventRecorder
import time
PD_HOST = "mcbride-purpledrop"
rec = EventRecorder(f'ws://{PD_HOST}:7001')
# Record three segments
for i in range(3):
    print("Starting capture {i}")
    # Start the recorder and let it capture for 10 seconds
    rec.start(f'log{i}.bin')
    time.sleep(10.0)
    print ("Stopping Capture")
    rec.stop()
    # Capture is now stopped. Wait 5 seconds before moving on to the next
    time.sleep(5.0)
"""

# What the video server gave its scripts, recorded to stdout for the test to read.
HOST_MODULE = """
import os

def message(text):
    print("message:", text, flush=True)

def question(html, button, on_click):
    print("question:", len(html), button, flush=True)

def _startfile(path):
    print("startfile:", path, os.path.getsize(path), flush=True)

os.startfile = _startfile
"""

CAMERAS = """
cameras:
  gate:
    type: http
    url: {url}
"""


@pytest.fixture
def camera() -> Iterator[HttpCameraServer]:
    with HttpCameraServer() as server:
        yield server


def folder(tmp_path: Path, camera: HttpCameraServer) -> Path:
    """A fresh folder whose rules/ configures the camera ``gate``, as a user's would."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "cameras.yaml").write_text(CAMERAS.format(url=camera.url()), "utf-8")
    (tmp_path / "stand-ins").mkdir()
    (tmp_path / "stand-ins" / "host.py").write_text(HOST_MODULE, encoding="utf-8")
    return tmp_path


def run_script(
    cwd: Path, code: str, *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = cwd / "script.py"
    script.write_text(code, encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if k != "CUECAP_RULES"}
    environ["PYTHONPATH"] = os.pathsep.join([str(cwd / "stand-ins"), str(ROOT)])
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def shots(cwd: Path) -> list[Path]:
    return sorted(p for p in cwd.rglob("*.jpg"))


def channel(code: str) -> str:
    """The snippet with its channel guid replaced by the camera of rules/ (the one edit)."""
    assert code.count(SEED_CHANNEL) == 1
    return code.replace(SEED_CHANNEL, '"gate"')


def test_simple_saves_into_the_screenshots_folder(tmp_path: Path, camera: HttpCameraServer) -> None:
    cwd = folder(tmp_path, camera)
    done = run_script(cwd, channel(SIMPLE))
    assert done.returncode == 0, done.stderr
    [shot] = shots(cwd)
    assert shot.read_bytes() == camera.jpeg
    assert shot.relative_to(cwd).parts[0] == "shots" and shot.name.startswith("gate (")


@pytest.mark.parametrize(
    "code,argument",
    [(FOLDER_GLOBAL, "screenshots_folder"), (FOLDER_PER_SHOT, "file_path")],
    ids=["global", "per-shot"],
)
def test_changing_the_folder(
    tmp_path: Path, camera: HttpCameraServer, code: str, argument: str
) -> None:
    """The seed's Windows folder is refused on Linux, saying so; a folder of this machine works."""
    cwd = folder(tmp_path, camera)
    done = run_script(cwd, channel(code))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"engine.errors.InvalidArgument: ShotSaver: {argument}=r'D:\\DSSL\\shots' is a "
        "Windows path (drive D:), and this system is not Windows: it would make one folder "
        f"named r'D:\\DSSL\\shots' in {str(cwd)!r}; give a folder of this machine, e.g. "
        "'/srv/shots' or '~/shots' (a Windows share is reached where it is mounted, "
        "e.g. '/mnt/shots')"
    )
    assert not shots(cwd) and not list(cwd.glob("D:*"))  # no stray folder either
    mine = cwd / "DSSL" / "shots"
    done = run_script(cwd, channel(code).replace(r'r"D:\DSSL\shots"', repr(str(mine))))
    assert done.returncode == 0, done.stderr
    [shot] = shots(cwd)
    assert shot.parent == mine and shot.read_bytes() == camera.jpeg


def test_a_past_moment_asks_the_archive_and_says_why_it_cannot(
    tmp_path: Path, camera: HttpCameraServer
) -> None:
    """Midnight is long past: the camera of rules/ has no archive_url, so the shot fails, saying so."""
    cwd = folder(tmp_path, camera)
    done = run_script(cwd, channel(DATETIME))
    assert done.returncode == 0, done.stderr
    assert not shots(cwd)
    assert "archive" in done.stderr and "'gate'" in done.stderr


def test_a_past_moment_from_an_archive(tmp_path: Path, camera: HttpCameraServer) -> None:
    cwd = folder(tmp_path, camera)
    (cwd / "rules" / "cameras.yaml").write_text(
        CAMERAS.format(url=camera.url())
        + f'    archive_url: "{camera.url("/archive")}?t={{time:%H%M%S}}"\n',
        encoding="utf-8",
    )
    done = run_script(cwd, channel(DATETIME))
    assert done.returncode == 0, done.stderr
    assert [p.relative_to(cwd).as_posix() for p in shots(cwd)] == ["shots/midnight_shot.jpg"]
    assert camera.queries == [{"t": ["000000"]}]


def test_tracking_the_status(tmp_path: Path, camera: HttpCameraServer) -> None:
    cwd = folder(tmp_path, camera)
    done = run_script(cwd, channel(STATUS))
    assert done.returncode == 0, done.stderr
    [shot] = shots(cwd)
    lines = done.stdout.splitlines()
    states = [line.rsplit("] ", 1)[1] for line in lines if line.startswith("message: [")]
    assert states == ["in_queue", "saving", "success"]
    assert f"startfile: {shot} {len(camera.jpeg)}" in lines


def test_getting_an_image_in_bytes(tmp_path: Path, camera: HttpCameraServer) -> None:
    cwd = folder(tmp_path, camera)
    done = run_script(cwd, channel(BYTES))
    assert done.returncode == 0, done.stderr
    assert not shots(cwd)  # get() writes nothing
    # the page carries the base64 of the JPEG: its length tells the bytes arrived
    html_length = len('<img src="data:image/png;base64,b\'\'" width="800">')
    encoded = 4 * ((len(camera.jpeg) + 2) // 3)
    assert done.stdout.splitlines() == [f"question: {html_length + encoded} OK"]


def test_an_unknown_channel_says_how_to_configure_one(
    tmp_path: Path, camera: HttpCameraServer
) -> None:
    cwd = folder(tmp_path, camera)
    done = run_script(cwd, SIMPLE)  # the seed's own guid: no such camera here
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "UnknownCamera: no camera named 'uR76TlcA_O4Yazs8u' (known: gate)" in last
    assert "name it under 'cameras:' in a rule file in rules/" in last


def test_cuecap_rules_names_the_rule_files(tmp_path: Path, camera: HttpCameraServer) -> None:
    cwd = folder(tmp_path, camera)
    (cwd / "rules").rename(cwd / "elsewhere")
    done = run_script(cwd, channel(SIMPLE), env={"CUECAP_RULES": str(cwd / "elsewhere")})
    assert done.returncode == 0, done.stderr
    assert len(shots(cwd)) == 1


def test_without_rule_files_the_error_says_what_to_create(tmp_path: Path) -> None:
    (tmp_path / "stand-ins").mkdir()
    done = run_script(tmp_path, channel(SIMPLE))
    assert done.returncode == 1
    assert "no rule files here: create rules/cameras.yaml" in done.stderr


def free_loopback_7001() -> str:
    """An address of 127.0.0.0/8 whose port 7001 is free: the demo's port, as written."""
    rng = random.Random()
    for _ in range(50):
        host = f"127.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
        with socket.socket() as probe:
            try:
                probe.bind((host, 7001))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            return host
    raise AssertionError("no loopback address with port 7001 free")


def test_event_recorder_demo_runs_twice_in_the_same_folder(tmp_path: Path) -> None:
    host = free_loopback_7001()
    code = EVENT_RECORDER_DEMO.replace('"mcbride-purpledrop"', f'"{host}"')
    fast = (
        "import runpy, time\n"
        "_sleep = time.sleep\n"
        "time.sleep = lambda seconds: _sleep(seconds / 50)\n"
        "runpy.run_path('demo.py', run_name='__main__')\n"
    )
    (tmp_path / "demo.py").write_text(code, encoding="utf-8")
    (tmp_path / "stand-ins").mkdir()
    with run_sim_in_thread(host=host, port=7001, seed=1, fps=5):
        first = run_script(tmp_path, fast)
        assert first.returncode == 0, first.stderr
        sizes = {i: (tmp_path / f"log{i}.bin").stat().st_size for i in range(3)}
        second = run_script(tmp_path, fast)
    assert second.returncode == 0, second.stderr
    assert first.stdout.count("Starting capture {i}") == 3
    assert "replacing" not in first.stderr
    for i in range(3):
        path = tmp_path / f"log{i}.bin"
        assert f"replacing {path.name}, {path.name}.idx, {path.name}.json" in second.stderr
        reader = RecordingReader(path)
        records = list(reader)
        assert records and reader.manifest is not None and reader.manifest["complete"]
        assert reader.manifest["records"] == len(records)
        assert sizes[i] > 0


def test_the_migration_page_shows_these_snippets() -> None:
    """docs/coming-from-scripts.md shows the seed's code with only the channel or host changed."""
    import re

    text = (ROOT / "docs" / "coming-from-scripts.md").read_text(encoding="utf-8")
    blocks = [b.strip() for b in re.findall(r"```python\n(.*?)```", text, re.S)]
    assert blocks == [
        channel(SIMPLE).strip(),
        EVENT_RECORDER_DEMO.replace('"mcbride-purpledrop"', '"127.0.0.1"').strip(),
    ]
