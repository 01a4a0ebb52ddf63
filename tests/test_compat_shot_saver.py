"""``engine.ShotSaver``: cameras from the default rule files, ``from_file`` on the rule loader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import engine
from engine.compat import ShotSaver
from engine.errors import InvalidArgument
from engine.rules.errors import RuleFileError
from engine.shots import UnknownCamera
from engine.shots.config import ShotsConfig
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


@pytest.mark.parametrize(
    "folder,words",
    [
        (r"D:\DSSL\shots", "is a Windows path (drive D:)"),
        (r"\\nas\shots", "is a Windows network share"),
        (r"shots\day1", "is a Windows path ('\\' separates folders only on Windows)"),
    ],
    ids=["drive", "share", "backslash"],
)
def test_a_windows_folder_is_refused_naming_the_argument_and_nothing_is_made(
    tmp_path: Path,
    camera: HttpCameraServer,
    monkeypatch: pytest.MonkeyPatch,
    folder: str,
    words: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    with ShotSaver(cameras={"door": camera.url()}, screenshots_folder=tmp_path / "ok") as ss:
        with pytest.raises(InvalidArgument) as info:
            ss.save("door", file_path=folder)
        message = str(info.value)
        assert message.startswith(f"ShotSaver: file_path=r'{folder}' {words}"), message
        assert f"in {str(tmp_path)!r}" in message  # where the stray folder would have landed
        assert message.endswith(
            "write it with '/': 'shots/day1'" if "day1" in folder else "e.g. '/mnt/shots')"
        )
        with pytest.raises(InvalidArgument, match=r"^ShotSaver: screenshots_folder="):
            ss.screenshots_folder = folder
        assert ss.screenshots_folder == str(tmp_path / "ok")  # the refused value is not kept
        with pytest.raises(InvalidArgument, match=r"^ShotSaver: file_name=.* one file named"):
            ss.save("door", file_name=folder + r"\x.jpg")
        _, shot = ss.save("door", file_path=tmp_path / "fine")  # the saver still works
        assert ss.wait(5) and shot.read_bytes() == camera.jpeg
    with pytest.raises(InvalidArgument, match=r"^ShotSaver: screenshots_folder="):
        ShotSaver(cameras={"door": camera.url()}, screenshots_folder=folder)
    with pytest.raises(InvalidArgument, match=r"^ShotSaver: file_path=.*Windows"):
        ShotSaver(cameras={"door": camera.url()}, file_path=folder)  # save()'s argument
    assert [p.name for p in tmp_path.iterdir()] == ["fine"]  # no stray 'D:\\...' folder


def test_file_path_given_to_the_saver_says_it_belongs_to_save(
    tmp_path: Path, camera: HttpCameraServer
) -> None:
    with pytest.raises(InvalidArgument, match=r"takes no file_path: that is save\(\)'s folder"):
        ShotSaver(cameras={"door": camera.url()}, file_path=tmp_path)


def test_a_windows_folder_in_the_rule_files_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CUECAP_RULES", raising=False)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "c.yaml").write_text(
        "cameras:\n  door: {type: http, url: 'http://cam/x'}\n"
        "settings:\n  shots: {folder: 'E:\\shots'}\n",
        "utf-8",
    )
    with pytest.raises(
        RuleFileError, match=r"^rules/c.yaml:4:19: shots.folder: r'E:\\shots' is a Win"
    ):
        ShotSaver()
    assert [p.name for p in tmp_path.iterdir()] == ["rules"]
    # the same folder handed in from Python is refused by the saver itself
    with pytest.raises(InvalidArgument, match=r"^ShotSaver: settings: shots: folder=r'E:\\sh"):
        ShotSaver(cameras={"door": "http://cam/x"}, settings=ShotsConfig(folder="E:\\shots"))


def test_windows_paths_pass_on_windows_and_posix_paths_everywhere() -> None:
    from engine.core.winpaths import check_path, windows_path_problem

    check_path(r"D:\shots", "file_path", windows=True)  # there it is a real folder
    for fine in ("/srv/shots", "~/shots", "shots/%Y.%m.%d/{camera}", "cam:1", ""):
        assert windows_path_problem(fine) == "", fine
        check_path(fine, "file_path", windows=False)


def test_the_migration_page_quotes_the_message_as_raised() -> None:
    import re

    from engine.core.winpaths import check_path

    page = (Path(__file__).parent.parent / "docs" / "coming-from-scripts.md").read_text("utf-8")
    [quoted] = re.findall(r"```text\n(engine\.errors\.InvalidArgument: .*?)\n```", page)
    with pytest.raises(InvalidArgument) as info:
        check_path(r"D:\DSSL\shots", "file_path", cwd="/home/lab", windows=False)
    assert quoted == f"engine.errors.InvalidArgument: {info.value}"
