from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from engine.core.templates import (
    PathEscapeError,
    Template,
    TemplateError,
    safe_component,
    safe_join,
)

WHEN = datetime(2026, 3, 4, 5, 6, 7, 890123)


def test_seed_default_file_name_renders_fields_then_strftime() -> None:
    t = Template("{channel} (%Y.%m.%d %H-%M-%S.%f).jpg", {"channel"})
    assert t.render({"channel": "Gate 1"}, WHEN) == "Gate 1 (2026.03.04 05-06-07.890123).jpg"
    assert t.fields == {"channel"}


def test_field_values_are_made_filesystem_safe() -> None:
    t = Template("{camera}/%Y/{seq:04d}.jpg", {"camera", "seq"})
    assert (
        t.render({"camera": 'a|b\\c/d:e*f?g"h<i>j', "seq": 7}, WHEN)
        == "a_b_c_d_e_f_g_h_i_j/2026/0007.jpg"
    )


def test_percent_in_a_field_value_is_not_a_date_directive() -> None:
    t = Template("{camera}.jpg", {"camera"})
    assert t.render({"camera": "100%Y"}, WHEN) == "100%Y.jpg"


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("{channel.__class__}.jpg", "attribute and index lookups", 1),
        ("x{channel[0]}", "attribute and index lookups", 2),
        ("ab{nope}", "unknown field {nope}", 3),
        ("{}", "positional fields", 1),
        ("{channel!r}", "conversion", 1),
        ("{channel", None, None),
    ],
)
def test_unsafe_or_unknown_templates_are_refused_with_their_column(
    text: str, message: str | None, column: int | None
) -> None:
    with pytest.raises(TemplateError) as info:
        Template(text, {"channel"})
    if message:
        assert message in str(info.value)
    assert info.value.column == column


@pytest.mark.parametrize("value", ["", ".", "..", "  ", "..."])
def test_safe_component_never_yields_an_empty_or_dot_name(value: str) -> None:
    assert safe_component(value) not in ("", ".", "..")


def test_safe_join_stays_inside_root(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "a/b/c.jpg") == tmp_path / "a" / "b" / "c.jpg"
    assert safe_join(tmp_path, "a\\b.jpg") == tmp_path / "a" / "b.jpg"
    for bad in ("/etc/passwd", "../x", "a/../../x", "C:/x", ""):
        with pytest.raises(PathEscapeError):
            safe_join(tmp_path, bad)


def test_a_rendered_field_cannot_climb_out() -> None:
    t = Template("{camera}/x.jpg", {"camera"})
    rendered = t.render({"camera": ".."}, WHEN)
    assert rendered == "_/x.jpg"
