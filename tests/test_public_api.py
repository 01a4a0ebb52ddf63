"""The public API: a curated, pinned set of names, each importable from ``engine``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import engine


def test_every_public_name_resolves() -> None:
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name


def test_unknown_names_raise_attribute_error() -> None:
    try:
        engine.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_engine_loads_no_network_or_state_machine_library() -> None:
    code = (
        "import sys, engine; "
        "heavy = [m for m in ('websockets', 'httpx', 'transitions', 'av', 'apscheduler') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# The promise: adding a name is a decision, removing one breaks users. Change both together.
PUBLIC = [
    "CaptureError", "CaptureRequest", "Clock", "CuecapError", "Engine", "EngineStarted",
    "EngineStopping", "Event", "EventKind", "EventRecorder", "Frame", "Gap", "LogInput",
    "LogSource", "ManualClock", "PythonCamera", "QueueFull", "Recorder", "RecorderConfig",
    "RecorderStateError", "RecordingError", "RecordingErrored", "RecordingReader",
    "RecordingStarted", "RecordingStopped", "RecordingWriter", "ReloadApplied", "ReloadRefused",
    "RuleFileError", "RuleFired", "RuleSet", "SaverClosed", "SendErrored", "SendSucceeded",
    "ShotErrored", "ShotFailed",
    "ShotQueued", "ShotRejected", "ShotSaved", "ShotSaver", "ShotSaving", "ShotService",
    "ShotStatus", "SimWorld", "SimulatorSource", "SourceClosed", "SourceConnected", "SourceGap",
    "StatusUpdate", "Summary", "SystemClock", "Throttled", "UnknownCamera", "WebSocketSource",
    "load_rules", "read_frames", "record_stream", "replay", "rule_adapters", "run_sim_in_thread",
    "start_sim_server", "status",
]  # fmt: skip


def test_the_public_api_is_the_pinned_set() -> None:
    assert engine.__all__ == sorted(PUBLIC)


def test_every_error_of_the_api_has_the_one_root() -> None:
    errors = [getattr(engine, n) for n in engine.__all__ if n.endswith(("Error", "Failed"))]
    assert len(errors) >= 5
    assert all(issubclass(cls, engine.CuecapError) for cls in errors)


def test_the_done_when_one_liner_prints_the_root() -> None:
    code = "import engine, engine.errors; print(engine.errors.CuecapError)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "<class 'engine.errors.CuecapError'>"


def test_checking_the_shipped_rules_loads_no_camera_saver_recording_or_cel_shell() -> None:
    code = (
        "import sys\n"
        "from engine.rules.loader import load_rules\n"
        "load_rules(['rules/'])\n"
        "heavy = ('engine.shots.saver', 'engine.shots.service', 'engine.shots.backends',\n"
        "         'engine.shots.frame_cache', 'mcap', 'httpx', 'PIL', 'websockets',\n"
        "         'prompt_toolkit', 'rich')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"


def test_the_shots_package_still_hands_out_every_name_it_lists() -> None:
    import engine.shots as shots
    from engine.shots.status import ShotStatus

    # the seed's ``status`` (ShotStatus), not the module of the same name
    assert shots.status is ShotStatus
    for name in shots.__all__:
        assert getattr(shots, name) is not None, name
