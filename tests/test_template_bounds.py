"""Hostile templates: format specs, path escapes and literal text are refused at load."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from engine.core.templates import (
    MAX_NAME_BYTES,
    MAX_PRECISION,
    MAX_WIDTH,
    FieldKind,
    Template,
    TemplateError,
    safe_component,
)
from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules
from engine.shots.config import PATH_FIELDS
from engine.shots.paths import render_path

WHEN = datetime(2026, 12, 1, 20, 41, 46)


@pytest.mark.parametrize(
    "text,why",
    [
        ("{seq:.999999999f}", f"precision 999999999 is more than {MAX_PRECISION}"),
        ("{camera:>999999999}", f"width 999999999 is more than {MAX_WIDTH}"),
        ("{seq:zz}", "format type 'z' does not apply"),
        ("{seq:" + "9" * 5000 + "}", "(5000 digits) is more than 255"),
        ("{seq:." + "9" * 5000 + "f}", "(5000 digits) is more than 20"),
        ("{seq:s}", "holds integers: format type 's' does not apply"),
        ("{camera:d}", "holds texts: format type 'd' does not apply"),
        ("{camera:.3f}", "holds texts: format type 'f' does not apply"),
        ("{camera:+}", "holds texts: Sign not allowed"),
        ("{seq:,n}", "holds integers"),
        ("x\x00y", "a NUL character is not allowed"),
        ("shot 100%", "a lone '%' at the end"),
    ],
)
def test_bad_specs_and_literals_are_refused_at_parse(text: str, why: str) -> None:
    with pytest.raises(TemplateError, match="column") as info:
        Template(text, PATH_FIELDS)
    assert why in info.value.reason


def test_a_whole_template_is_bounded() -> None:
    Template("%c" * 4000, PATH_FIELDS)
    with pytest.raises(TemplateError, match="longer than 8192 characters"):
        Template("%c" * 5000, PATH_FIELDS)  # would render to 120 KB per shot


def test_time_specs_are_bounded() -> None:
    Template("{time:%Y-%m-%d %H:%M}", {"time"})
    with pytest.raises(TemplateError, match="at most 64 characters"):
        Template("{time:" + "%Y" * 40 + "}", {"time"})
    with pytest.raises(TemplateError, match="lone '%'"):
        Template("{time:%H%}", {"time"})


@pytest.mark.parametrize(
    "text", ["{seq:03d}", "{seq:>5}", "{seq:x}", "{camera:>10}", "{camera:.5}", "100%% {seq:,}"]
)
def test_good_specs_still_parse_and_render(text: str) -> None:
    out = Template(text, PATH_FIELDS).render({"seq": 12345, "camera": "bench-camera"}, WHEN)
    assert out


def test_field_kinds_can_be_given() -> None:
    Template("{n:.2f}", {"n": FieldKind.FLOAT})
    with pytest.raises(TemplateError, match="holds numbers"):
        Template("{n:d}", {"n": FieldKind.FLOAT})


def test_date_directives_never_make_folders() -> None:
    out = Template("{camera} %D %x.jpg", PATH_FIELDS).render({"camera": "c"}, WHEN)
    assert "/" not in out
    assert out == "c 12-01-26 12-01-26.jpg"
    # plain directives keep their text: one strftime call as before
    assert Template("%Y/%m/{camera}", PATH_FIELDS).render({"camera": "c"}, WHEN) == "2026/12/c"


@pytest.mark.parametrize("name", ["CON", "nul.jpg", "com1.jpg", "Lpt9", "AUX .txt"])
def test_windows_reserved_names_are_made_safe(name: str) -> None:
    assert safe_component(name).startswith("_")


def test_a_reserved_name_from_a_field_or_the_template(tmp_path: Path) -> None:
    path = render_path(tmp_path, "{camera}", "{camera}.jpg", {"camera": "CON"}, WHEN)
    assert path == tmp_path / "_CON" / "_CON.jpg"
    path = render_path(tmp_path, "", "nul.jpg", {}, WHEN)
    assert path == tmp_path / "_nul.jpg"


def _rule_file(
    tmp_path: Path, file_name: str = "x.jpg", folder: str = "", message: str = "hi"
) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            sources:
              sim: {{type: simulator}}
            cameras:
              bench: {{type: stream, source: sim}}
            rules:
              r:
                when: {{type: schedule, every: 10s}}
                do:
                  - {{type: shot, cameras: bench, file_name: {file_name!r}, folder: {folder!r}}}
                  - {{type: log, message: {message!r}}}
            """
        ).replace("'", '"'),
        encoding="utf-8",
    )
    return path


def _errors(path: Path) -> list[str]:
    with pytest.raises(RuleFileError) as info:
        load_rules([path], env={})
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize(
    "file_name,folder,why",
    [
        ("../x.jpg", "", "climbs out of its folder"),
        ("/etc/x.jpg", "", "is absolute"),
        ("C:x.jpg", "", "is absolute"),
        ("a\\\\b.jpg", "", "a backslash is not allowed"),
        ("x.jpg", "../up", "climbs out of its folder"),
        ("x.jpg", "/abs", "is absolute"),
        ("x.jpg", "/", "is absolute"),
        ("{camera}/../../x.jpg", "", "climbs out of its folder"),
        ("x" * (MAX_NAME_BYTES + 1) + "{seq}", "", f"file systems allow {MAX_NAME_BYTES}"),
        ("{seq:.999999999f}.jpg", "", "precision 999999999"),
        ("{camera:>999999999}.jpg", "", "width 999999999"),
        ("{seq:zz}.jpg", "", "format type 'z' does not apply"),
        ("{seq:<<<}.jpg", "", "is not a format spec"),
    ],
)
def test_shot_paths_are_refused_at_load_with_their_place(
    tmp_path: Path, file_name: str, folder: str, why: str
) -> None:
    path = _rule_file(tmp_path, file_name, folder)
    (error,) = _errors(path)
    assert error.startswith(f"{path}:9:"), error
    assert why in error


@pytest.mark.parametrize(
    "message,why",
    [
        ("{count:.999999999f}", "precision 999999999"),
        ("{rule:>999999999}", "width 999999999"),
        ("{seq:zz}", "format type 'z' does not apply"),
        ("{rule:d}", "format type 'd' does not apply"),
    ],
)
def test_log_messages_are_checked_the_same_way(tmp_path: Path, message: str, why: str) -> None:
    path = _rule_file(tmp_path, message=message)
    (error,) = _errors(path)
    assert error.startswith(f"{path}:10:"), error
    assert why in error
