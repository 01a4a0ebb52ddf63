"""``cuecap check`` on hostile rule files: exit 2, each with its place, in bounded memory.

One ``cuecap check`` process reads them all under an address-space limit, so a
bound that does not hold fails the test by running out of memory rather than
by a timing; each file must come back with its own file:line:column.
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
from pathlib import Path

from test_rule_yaml_bounds import bomb

LIMIT = 400 * 1024 * 1024  # address space for the whole process, libraries included


def _rule(name: str, body: str) -> str:
    return f"rules:\n  {name}:\n{body}"


def _where(name: str, expression: str) -> str:
    return _rule(
        name,
        "    when:\n      type: message\n      types: active_capacitance\n"
        f"      where: '{expression}'\n    do: {{type: log, message: hi}}\n",
    )


def _shot(name: str, file_name: str) -> str:
    return _rule(
        name,
        "    when: {type: schedule, every: 10s}\n"
        f"    do: {{type: shot, cameras: bench, file_name: '{file_name}'}}\n",
    )


HOSTILE: dict[str, str] = {
    "bomb.yaml": bomb(section="rules_of_nobody"),
    "deep.yaml": "rules:\n  x: " + "[" * 10_000 + "]" * 10_000 + "\n",
    "deep_block.yaml": "".join("  " * i + "- \n" for i in range(700)),
    "precision.yaml": _shot("p", "{seq:.999999999f}.jpg"),
    "width.yaml": _shot("w", "{camera:>999999999}.jpg"),
    "badspec.yaml": _shot("z", "{seq:zz}.jpg"),
    "climb.yaml": _shot("c", "../../etc/x.jpg"),
    "percent.yaml": _shot("d", "shot 100%"),
    "nul.yaml": _rule(
        "n", '    when: {type: schedule, every: 10s}\n'
        '    do: {type: shot, cameras: bench, file_name: "a\\0b.jpg"}\n',
    ),
    "type_error.yaml": _where("t", "calibrated + \"x\" > 1"),
    "big_list.yaml": _where("l", "calibrated in [" + ", ".join(map(str, range(20_000))) + "]"),
    "and_chain.yaml": _where("a", " && ".join(["calibrated > 1.0"] * 20_000)),
    "nested_map.yaml": _where(
        "m", "[1,2,3].map(a, [1,2,3].map(b, [1,2,3].map(c, a))).size() > 0"
    ),
    "every.yaml": _rule("e", "    when: {type: schedule, every: 1e-9}\n    do: {type: log, message: x}\n"),
    "shell.yaml": _rule(
        "s", "    when: {type: schedule, every: 10s}\n"
        "    do: {type: run, argv: [sh, -c, 'cp {path} /tmp']}\n",
    ),
}  # fmt: skip
BASE = "sources:\n  pd: {type: simulator}\ncameras:\n  bench: {type: stream, source: pd}\n"


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def test_every_hostile_file_is_refused_with_its_place_in_bounded_memory(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "base.yaml").write_text(BASE)
    for name, text in HOSTILE.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "huge.yaml").write_bytes(b"# padding\n" * 5_000_000)  # 50 MB
    (folder / "not_utf8.yaml").write_bytes(b'rules:\n  u: {description: "caf\xe9"}\n')
    result = subprocess.run(
        [sys.executable, "-m", "engine", "check", str(folder)],
        capture_output=True,
        text=True,
        preexec_fn=_limit,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    for name in [*HOSTILE, "not_utf8.yaml"]:
        assert re.search(rf"{re.escape(str(folder / name))}:\d+:\d+: ", result.stderr), (
            name,
            result.stderr[-3000:],
        )
    assert f"{folder / 'huge.yaml'}: larger than" in result.stderr
