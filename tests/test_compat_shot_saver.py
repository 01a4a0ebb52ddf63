"""``engine.ShotSaver``: cameras from the default rule files, ``from_file`` on the rule loader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import engine
from engine.compat import ShotSaver
from engine.rules.errors import RuleFileError
from engine.shots import UnknownCamera
from engine.shots.testing import HttpCameraServer


@pytest.fixture
def camera() -> Iterator[HttpCameraServer]:
    with HttpCameraServer() as server:
        yield server


def test_the_public_and_seed_names_are_this_saver() -> None:
    import shot_saver

    assert engine.ShotSaver is ShotSaver is shot_saver.ShotSaver


def test_from_file_expands_env_and_reads_settings_shots(
    tmp_path: Path, camera: HttpCameraServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAM_PORT", str(camera.port))
    path = tmp_path / "cams.yaml"
    path.write_text(
        "cameras:\n"
        "  door: {type: http, url: 'http://127.0.0.1:${CAM_PORT}/snapshot.jpg'}\n"
        "settings:\n"
        f"  shots: {{folder: '{tmp_path / 'out'}', pool_size: 3}}\n",
        encoding="utf-8",
    )
    with ShotSaver.from_file(path) as ss:
        assert ss.pool_size == 3
        _, shot = ss.save(channel_full_guid="door")
        assert ss.wait(5) and shot.read_bytes() == camera.jpeg
        assert shot.parent == tmp_path / "out"
        with pytest.raises(
            UnknownCamera, match=rf"known: door\); name it under 'cameras:' in {path}"
        ):
            ss.save("gate")


@pytest.mark.parametrize(
    "text,errors",
    [
        (
            "cameras:\n  door: {type: http, url: 'http://cam/x'}\nshots:\n  folder: out\n",
            ["3:1: the saver's settings go under 'settings: shots:'"],
        ),
        (
            "cameras:\n  door: {type: http, url: 'http://cam/x', timout: 3}\n",
            ["2:43: unknown key 'timout'", "did you mean 'timeout'"],
        ),
        (
            "cameras:\n  door: {type: http, url: '${NO_SUCH_VARIABLE}'}\n",
            ["2:28: environment variable NO_SUCH_VARIABLE is not set"],
        ),
        (
            "settings:\n  recordings: rec\n  shots: {folder: out}\n"
            "rules:\n  tl: {when: {type: schedule, every: 1min}, do: {type: log, message: x}}\n",
            [
                "2:3: setting 'recordings' is not used by ShotSaver (it uses: shots, timezone)",
                "5:3: rule 'tl': a file for ShotSaver holds 'cameras:' and 'settings: shots:' only",
            ],
        ),
    ],
    ids=["old-layout", "typo", "env", "unused"],
)
def test_from_file_ignores_nothing_and_says_where(
    tmp_path: Path, text: str, errors: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_VARIABLE", raising=False)
    path = tmp_path / "cams.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as info:
        ShotSaver.from_file(path)
    message = str(info.value)
    for error in errors:
        assert error in message, message
    assert message.startswith(f"{path}:")


def test_default_rule_files_with_errors_raise_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CUECAP_RULES", raising=False)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "c.yaml").write_text("cameras:\n  door: {type: htp}\n", "utf-8")
    with pytest.raises(RuleFileError, match=r"rules/c.yaml:2:\d+: unknown type 'htp'"):
        ShotSaver()


def test_explicit_cameras_skip_the_rule_files(
    tmp_path: Path, camera: HttpCameraServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "c.yaml").write_text("not: [valid\n", "utf-8")  # never read
    with ShotSaver(cameras={"door": camera.url()}, screenshots_folder=tmp_path) as ss:
        _, shot = ss.save("door")
        assert ss.wait(5) and shot.is_file()
        with pytest.raises(UnknownCamera) as info:
            ss.save("gate")
        assert str(info.value) == "no camera named 'gate' (known: door)"


def test_get_without_a_callback_uses_the_savers_or_raises_environment_error(
    camera: HttpCameraServer, tmp_path: Path
) -> None:
    heard: list[tuple[str, object]] = []
    with ShotSaver(cameras={"door": camera.url()}, screenshots_folder=tmp_path) as ss:
        with pytest.raises(EnvironmentError, match="get\\(\\) needs a callback"):
            ss.get("door")
        ss.callback = lambda guid, state: heard.append((guid, state))
        guid = ss.get(channel_full_guid="door")
        assert ss.wait(5)
    assert [state for g, state in heard if g == guid][:-1] == ["in_queue", "saving", "success"]
    assert heard[-1] == (guid, camera.jpeg)  # then the image, as the original's class callback
    assert not list(tmp_path.rglob("*.jpg"))
