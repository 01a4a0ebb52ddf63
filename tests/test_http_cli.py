"""``cuecap run`` serves the page, API and metrics: flags, refusals, and the shipped rules."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from engine.cli.main import main

REPO = Path(__file__).resolve().parents[1]
RULES = """\
sources:
  sim: {type: simulator, speed: null, first_burst_delay: 0.5}
recorders:
  moves:
    activity: [{type: message, types: [electrode_state]}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def taken() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["run", str(tmp_path), "--fast", "--for", "10s", "--recordings", str(tmp_path / "rec"),
         *args],
        catch_exceptions=False,
    )  # fmt: skip
    return result.exit_code, result.stdout, result.stderr


def test_a_non_loopback_address_without_a_token_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUECAP_HTTP_TOKEN", raising=False)
    code, out, err = run(tmp_path, "--http", f"0.0.0.0:{free_port()}")
    assert code == 2 and out == ""
    assert (
        "cuecap: error: http: serving HTTP on 0.0.0.0 reaches other machines and needs a token"
        in err
    )
    assert not (tmp_path / "rec").exists()  # nothing started


def test_a_chosen_address_in_use_refuses_to_start(tmp_path: Path, taken: int) -> None:
    code, _, err = run(tmp_path, "--http", f"127.0.0.1:{taken}")
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{taken}: the address is in use" in err
    assert not (tmp_path / "rec").exists()


def test_the_default_address_in_use_warns_and_runs_without_the_page(
    tmp_path: Path, taken: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engine.http.config.DEFAULT_PORT", taken)
    code, out, err = run(tmp_path)
    assert code == 0, err
    assert f"cuecap: warning: http: cannot listen on 127.0.0.1:{taken}: the address is in use; " \
        "running without the status page" in err  # fmt: skip
    assert out.startswith("ran 10.0 s")


def test_a_bad_address_and_a_short_token_are_usage_errors(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "--http", "7080")
    assert code == 2 and "'7080' is not HOST:PORT" in err
    code, _, err = run(tmp_path, "--http", "0.0.0.0:7080", "--http-token", "abc")
    assert code == 2 and "token is too short" in err


def test_settings_http_in_a_rule_file_is_checked_where_it_is_written(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        RULES + "settings:\n  http: {listen: 'nowhere'}\n", encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["check", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 2
    assert f"{tmp_path / 'rules.yaml'}:7:" in result.stderr and "HOST:PORT" in result.stderr


def test_run_on_the_shipped_rules_serves_page_api_metrics_and_control(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", str(REPO / "rules"), "--for", "30", "--no-watch",
         "--http", f"127.0.0.1:{port}", "--recordings", str(tmp_path / "rec"),
         "--shots", str(tmp_path / "shots")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=url, timeout=5) as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    health = client.get("/healthz")
                    break
                except httpx.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"not served: {process.communicate()[1]}") from None
                    time.sleep(0.05)
            assert health.json() == {"status": "ok"}
            assert "<title>cuecap</title>" in client.get("/").text
            status = client.get("/api/status").json()
            assert [s["name"] for s in status["sources"]] == ["sim"]
            assert [r["name"] for r in status["recorders"]] == ["moves"]
            assert [c["name"] for c in status["cameras"]] == ["bench"]
            assert {r["name"] for r in status["rules"]} == {"timelapse", "shot-at-recording-start"}
            metrics = client.get("/metrics").text
            for name in ("cuecap_source_frames_total", "cuecap_recorder_segments_total",
                         "cuecap_shots_total", "cuecap_rule_firings_total"):  # fmt: skip
                assert f"\n{name}{{" in metrics, name
            started = client.post("/api/recorders/moves/start")
            assert started.status_code == 200, started.text
            assert (tmp_path / "rec" / started.json()["download"]).exists()
            assert client.get("/api/recorders/moves").json()["state"] == "recording"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert f"status page, API and metrics at {url}/" in err
    # Started by hand (or by the first burst, if it came first): recording until the stop.
    assert " -> shutdown] " + str(tmp_path / "rec" / started.json()["download"]) in out
