"""Everything docs/http.md shows runs: its commands, its YAML, its Python and its output."""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules
from tests.http_engine import serving

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "http.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", TEXT, re.S)
CONSOLE = [line for lang, body in BLOCKS if lang == "console" for line in body.splitlines()]
TOKEN = "change-me-to-a-long-secret"
BIN = str(Path(sys.executable).parent)


def command(line: str) -> str:
    return line.split("#", 1)[0].strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def shell(line: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_the_picture_is_there_and_named() -> None:
    assert "](http-page.png)" in TEXT
    assert (REPO / "docs" / "http-page.png").stat().st_size > 10_000


RUNS = [command(line) for line in CONSOLE if "cuecap run" in line]


@pytest.mark.parametrize("line", RUNS)
def test_each_cuecap_run_line_runs(line: str, tmp_path: Path) -> None:
    port = free_port()
    shown = line.replace(":7080", f":{port}").replace(":8000", f":{port}")
    if "--http" not in line and "--no-http" not in line:
        shown += f" --http 127.0.0.1:{port}"  # the default's twin: tests never take 7080
    extra = f" --fast --for 1s --no-watch --recordings {tmp_path}/rec --shots {tmp_path}/shots"
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    env.pop("CUECAP_HTTP_TOKEN", None)
    done = shell(shown + extra, env, REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ran 1.0 s")
    if "--no-http" in line:
        assert "status page" not in done.stderr
    else:
        host = "0.0.0.0" if "0.0.0.0" in line else "127.0.0.1"
        assert f"status page, API and metrics at http://{host}:{port}/" in done.stderr


def test_the_documented_start_up_line_is_the_real_one() -> None:
    from engine.cli.startup import RunOptions, startup_lines

    (block,) = [b for lang, b in BLOCKS if lang == "text" and "status page, API" in b]
    shown = block.strip().splitlines()[-1]
    options = RunOptions(http="http://127.0.0.1:7080/")
    lines = startup_lines(load_rules([REPO / "rules"], env={}), 0.0, options, Path("/home/lab"))
    assert lines[lines.index(shown) - 1] == block.strip().splitlines()[0]


def test_the_documented_warning_is_the_real_one(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from engine.cli.main import main

    (shown,) = [b.strip() for lang, b in BLOCKS if lang == "text" and "warning" in b]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("engine.http.config.DEFAULT_PORT", port)
            result = CliRunner().invoke(
                main,
                ["run", str(REPO / "rules"), "--fast", "--for", "1s", "--recordings",
                 str(tmp_path), "--shots", str(tmp_path)],
                catch_exceptions=False,
            )  # fmt: skip
    assert result.exit_code == 0
    assert shown.replace(":7080", f":{port}") in result.stderr


def test_the_documented_yaml_loads(tmp_path: Path) -> None:
    (block,) = [b for lang, b in BLOCKS if lang == "yaml"]
    path = tmp_path / "settings.yaml"
    path.write_text(block, encoding="utf-8")
    http = load_rules([path], env={"LAB_HTTP_TOKEN": "0123456789abcdef"}).settings.http
    assert (http.listen, http.token_env, http.enabled) == ("0.0.0.0:7080", "LAB_HTTP_TOKEN", True)
    with pytest.raises(
        RuleFileError, match=r"http\.token_env: environment variable LAB_HTTP_TOKEN"
    ):
        load_rules([path], env={})


CURLS = [command(line) for line in CONSOLE if line.startswith("curl")]


def test_each_curl_line_answers(tmp_path: Path) -> None:
    shipped = (REPO / "rules" / "cuecap.yaml").read_text(encoding="utf-8")
    plain = [c for c in CURLS if "Authorization" not in c]
    with_token = [c for c in CURLS if "Authorization" in c]
    assert len(plain) >= 6 and len(with_token) == 1
    env = {**os.environ, "CUECAP_HTTP_TOKEN": TOKEN}
    for token, lines in ((None, plain), (TOKEN, with_token)):
        with serving(tmp_path / str(bool(token)), token=token, rules=shipped) as served:
            for line in lines:
                done = shell(line.replace("http://127.0.0.1:7080/", served.url) + " --fail", env,
                             tmp_path)  # fmt: skip
                if "--max-time" in line:  # a stream: ends by the timeout, having shown events
                    assert done.returncode == 28 and "data: {" in done.stdout, done.stderr
                else:
                    assert done.returncode == 0, (line, done.stderr)
                    assert done.stdout.strip(), line


def test_the_python_example_prints_what_the_doc_says(monkeypatch: pytest.MonkeyPatch) -> None:
    code = next(b for lang, b in BLOCKS if lang == "python")
    after = TEXT.split(code, 1)[1]
    expected = re.search(r"```text\n(.*?)```", after, re.S)
    assert expected is not None
    monkeypatch.chdir(REPO)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {"__name__": "docs"})
    assert out.getvalue() == expected.group(1)
