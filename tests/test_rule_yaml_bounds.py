"""Hostile YAML: alias bombs, deep nesting, huge files and bad bytes are refused with a position."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.rules import yamlpos
from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules
from engine.rules.yamlpos import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, compose


def errors_of(path: Path) -> list[str]:
    with pytest.raises(RuleFileError) as info:
        load_rules([path], env={})
    return [str(e) for e in info.value.errors]


def bomb(levels: int = 9, width: int = 9, section: str = "lol") -> str:
    lines = [f"{section}:\n  a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def _crossing_line(levels: int = 9, width: int = 9) -> int:
    """The line of ``bomb()`` whose alias list takes the count past ``MAX_VALUES``."""
    count = 3  # the document's mapping, the section's key and mapping
    size = 1 + width  # a0: a list of scalars
    for k in range(levels):
        count += 1  # the key a<k>
        if count + size > MAX_VALUES:
            return k + 2
        count += size
        size = 1 + width * size
    raise AssertionError("the bomb stays within the bound")


class _Counting(yamlpos._Builder):
    """The builder, counting the values it builds: what memory use follows."""

    built = 0

    def build(self, node, path):  # type: ignore[no-untyped-def]
        _Counting.built += 1
        return super().build(node, path)


@pytest.mark.parametrize("section", ["rules", "unknown_section"])
def test_an_alias_bomb_is_refused_where_it_crosses_the_bound(
    tmp_path: Path, section: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yamlpos, "_Builder", _Counting)
    _Counting.built = 0
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(section=section))
    errors = errors_of(path)
    assert _Counting.built == 0  # refused while composing: not one value was built
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:{_crossing_line()}:")
    assert f"more than {MAX_VALUES} values" in errors[0]


def test_aliases_within_the_bound_still_work() -> None:
    doc = compose(bomb(levels=3, width=3), "f.yaml", {})
    assert doc.errors == []
    assert doc.data["lol"]["a2"][0][0] == ["lol", "lol", "lol"]


def test_merge_keys_count_what_they_expand_to() -> None:
    text = "base: &b {" + ", ".join(f"k{i}: {i}" for i in range(1000)) + "}\n"
    text += "".join(f"m{i}: {{<<: *b}}\n" for i in range(120))
    doc = compose(text, "f.yaml", {})
    assert doc.data is None
    assert f"more than {MAX_VALUES} values" in doc.errors[0].message


@pytest.mark.parametrize("open_,close", [("[", "]"), ("{a: ", "}"), ("- ", "")])
def test_deep_nesting_is_refused_at_the_level_past_the_bound(open_: str, close: str) -> None:
    if open_ == "- ":  # block style: each level indented under the one before
        text = "".join("  " * i + "-\n" for i in range(1_000)) + "  " * 1_000 + "x\n"
    else:
        text = "x: " + open_ * 10_000 + "1" + close * 10_000 + "\n"
    doc = compose(text, "deep.yaml", {})
    assert doc.data is None
    (error,) = doc.errors
    assert f"more than {MAX_DEPTH} levels deep" in error.message
    assert error.location.line is not None and error.location.column is not None


def test_nesting_at_the_bound_is_fine() -> None:
    doc = compose("x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n", "f.yaml", {})
    assert doc.errors == []


def test_a_file_over_the_size_bound_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with open(path, "w") as f:
        f.write("sources:\n")
        f.write("  # padding\n" * (MAX_FILE_BYTES // 12 + 10))
    (error,) = errors_of(path)
    assert (
        error == f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB; a rule file is never that big"
    )


@pytest.mark.parametrize(
    "data,line,column",
    [
        (b'rules:\n  r:\n    description: "caf\xe9 x"\n', 3, 22),
        (b"\xff\n", 1, 1),
        ("rules: {}\n# \u00e9\u00e9 ok\n".encode() + b'x: "\xc3\xa9\xc3"\n', 3, 6),
    ],
)
def test_invalid_utf8_gets_the_line_and_column_of_the_first_bad_byte(
    tmp_path: Path, data: bytes, line: int, column: int
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:{line}:{column}: not UTF-8 text: byte 0x")


def test_a_control_character_gets_its_position(tmp_path: Path) -> None:
    path = tmp_path / "nul.yaml"
    path.write_text('rules:\n  r: {description: "a\x00b"}\n')
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:2:22: character U+0000 is not allowed")


@pytest.mark.parametrize("number", ["9" * 5000, "0x" + "f" * 5000, "-" + "1" * 200])
def test_a_number_of_thousands_of_digits_is_an_error_at_its_place(number: str) -> None:
    doc = compose(f"rules:\n  r:\n    max: {number}\n", "f.yaml", {})
    (error,) = doc.errors
    assert (error.location.line, error.location.column) == (3, 10)
    assert f"a number of {len(number)} digits" in error.message


@pytest.mark.parametrize(
    "text,line,column,why",
    [
        ('rules:\n  r: {description: "a\\0b"}\n', 2, 22, "a NUL character is not allowed"),
        ('settings: {recordings: "rec\\0"}\n', 1, 28, "a NUL character is not allowed"),
        ('rules:\n  "r\\0": {}\n', 2, 3, "a NUL character is not allowed in a key"),
        ("rules: !!python/object:os.system {}\n", 1, 8, "unsupported tag"),
        ("rules: !!set {a: null}\n", 1, 8, "unsupported tag"),
    ],
)
def test_nul_characters_and_foreign_tags_are_errors_at_their_place(
    text: str, line: int, column: int, why: str
) -> None:
    doc = compose(text, "f.yaml", {})
    (error,) = doc.errors
    assert (error.location.line, error.location.column) == (line, column)
    assert why in error.message


def test_the_value_bound_holds_for_all_the_files_together(tmp_path: Path) -> None:
    for i in range(3):  # each alone within the bound, together past it
        values = ", ".join(str(n) for n in range(MAX_VALUES * 2 // 5))
        (tmp_path / f"{i}.yaml").write_text(f"unknown_{i}: [{values}]\n")
    with pytest.raises(RuleFileError) as info:
        load_rules([tmp_path], env={})
    messages = [str(e) for e in info.value.errors]
    crossed = [m for m in messages if "the rule files expand to more than" in m]
    assert len(crossed) == 1 and crossed[0].startswith(f"{tmp_path / '2.yaml'}:1:")
    assert all("0.yaml" not in m or "unknown section" in m for m in messages)


def test_a_rule_set_has_a_bounded_number_of_files(tmp_path: Path) -> None:
    from engine.rules.loader import MAX_FILES

    for i in range(MAX_FILES + 1):
        (tmp_path / f"{i:04d}.yaml").write_text("")
    (error,) = errors_of(tmp_path)
    assert f"{MAX_FILES + 1} rule files; a rule set has at most {MAX_FILES}" in error


def test_names_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("sources:\n  " + "s" * 101 + ": {type: simulator}\n")
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:2:3: name 'ssssssssssssssssssss'... is 101 characters long")
