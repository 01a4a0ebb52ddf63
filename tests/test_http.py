"""The status API, control POSTs, metrics and downloads over real HTTP on 127.0.0.1.

One engine on the simulator serves on a free port (``tests/http_engine.py``);
the tests talk to it with httpx as any client would.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.events import Event, EventKind
from tests.http_engine import Served, serving

TOKEN = "s3cret-token-for-the-tests"


def until(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll ``check`` (a real server, real time) until it gives something true."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("http"), first_burst=30.0) as running:
        yield running


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10) as c:
        yield c


def test_status_names_every_source_recorder_camera_and_rule(client: httpx.Client) -> None:
    status = client.get("/api/status").json()
    assert [s["name"] for s in status["sources"]] == ["sim"]
    assert [r["name"] for r in status["recorders"]] == ["moves"]
    assert [c["name"] for c in status["cameras"]] == ["bench"]
    assert [r["name"] for r in status["rules"]] == ["hourly", "noted"]
    assert status["running"] is True
    hourly = client.get("/api/rules/hourly").json()
    assert hourly["triggers"] == ["every 1h"] and hourly["actions"] == ["shot from bench"]
    (next_time,) = hourly["next_times"]
    assert status["time"] < next_time <= status["time"] + 3600
    sim = until(lambda: client.get("/api/sources").json()[0]["frames"] > 0 and client.get(
        "/api/sources").json()[0], "frames from the simulator")  # fmt: skip
    assert sim["connected"] is True and sim["type"] == "simulator"


def test_unknown_names_are_404(client: httpx.Client) -> None:
    for path in ("/api/recorders/nope", "/api/rules/nope", "/api/cameras/nope"):
        assert client.get(path).status_code == 404
    answer = client.post("/api/recorders/nope/start")
    assert answer.status_code == 404
    assert "no recorder named 'nope' (known: moves)" in answer.json()["detail"]


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = until(lambda: (r := client.get("/readyz")).status_code == 200 and r, "readiness")
    assert ready.status_code == 200 and ready.json() == {"ready": True, "reasons": []}


def test_a_post_starts_a_recorder_that_records_and_a_post_stops_it(
    served: Served, client: httpx.Client
) -> None:
    started = client.post("/api/recorders/moves/start")
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["action"] == "start_recorder" and body["target"] == "moves"
    assert body["download"].startswith("moves/moves-")
    recorder = client.get("/api/recorders/moves").json()
    assert recorder["state"] == "recording"
    assert recorder["current"]["start_reason"] == "manual"
    until(lambda: client.get("/api/recorders/moves").json()["current"]["records"] > 0, "records")
    stopped = client.post("/api/recorders/moves/stop").json()
    assert stopped["download"] == body["download"]
    recorder = client.get("/api/recorders/moves").json()
    assert recorder["state"] == "idle" and recorder["current"] is None
    segment = recorder["segments"][-1]
    assert (segment["start_reason"], segment["stop_reason"]) == ("manual", "manual")
    assert segment["records"] > 0
    download = client.get(f"/api/segments/file/{segment['path']}")
    assert download.status_code == 200
    assert download.content == (served.root / "rec" / segment["path"]).read_bytes()
    assert client.post("/api/recorders/moves/stop").json()["detail"] == "was not recording"


def test_a_post_takes_a_shot_and_the_image_downloads(client: httpx.Client) -> None:
    answer = client.post("/api/cameras/bench/shot")
    assert answer.status_code == 200, answer.text
    task = answer.json()["task"]
    camera = until(
        lambda: (
            (c := client.get("/api/cameras/bench").json())["last_shot"]
            and c["last_shot"]["task"] == task
            and c
        ),
        "the shot",
    )
    assert camera["ok"] >= 1
    image = client.get(f"/api/shots/file/{camera['last_shot']['path']}")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content[:3] == b"\xff\xd8\xff"


def test_firing_a_rule_now_runs_it_with_its_trace(client: httpx.Client) -> None:
    before = client.get("/api/rules/hourly").json()["firings"]
    assert client.post("/api/rules/hourly/fire").status_code == 200
    rule = client.get("/api/rules/hourly").json()
    assert rule["firings"] == before + 1
    newest = rule["last_firings"][0]
    assert (newest["trigger"], newest["detail"]) == ("manual", "fired by hand")
    assert client.get("/api/firings").json()[0] == newest | {"rule": "hourly"}


def test_metrics_name_frames_segments_shots_and_firings(client: httpx.Client) -> None:
    client.post("/api/rules/hourly/fire")  # a firing and a shot to count
    until(lambda: "cuecap_shots_total{camera=\"bench\",status=\"ok\"} 0" not in client.get(
        "/metrics").text, "a counted shot")  # fmt: skip
    text = client.get("/metrics").text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['cuecap_source_frames_total{source="sim"}'] > 0
    assert 'cuecap_recorder_segments_total{recorder="moves"}' in samples
    assert samples['cuecap_recorder_state{recorder="moves",state="idle"}'] in (0.0, 1.0)
    assert samples['cuecap_shots_total{camera="bench",status="ok"}'] >= 1
    assert samples['cuecap_rule_firings_total{rule="hourly"}'] >= 1
    assert samples['cuecap_shot_capture_seconds_count{camera="bench"}'] >= 1

    def lag_count() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith("cuecap_event_loop_lag_seconds_count "):
                return float(line.split()[1])
        raise AssertionError("no cuecap_event_loop_lag_seconds metric")

    assert until(lambda: lag_count() >= 1, "a loop lag measurement (one each 0.25 s)")
    assert "# TYPE cuecap_schedule_lateness_seconds histogram" in text


def test_events_stream_as_server_sent_events_of_the_event_model(client: httpx.Client) -> None:
    kinds: list[str] = []
    with client.stream("GET", "/api/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        client.post("/api/rules/hourly/fire")
        lines = stream.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                event = Event.from_json(json.loads(line[6:]))
                kinds.append(event.name)
                if event.kind is EventKind.SHOT_SUCCESS:
                    break
    assert kinds[0] == "rule.fired"
    assert "shot.queued" in kinds


def test_the_openapi_description_lists_the_api(client: httpx.Client) -> None:
    spec = client.get("/api/openapi.json").json()
    paths = spec["paths"]
    for path in ("/api/status", "/api/recorders/{name}/start", "/api/cameras/{name}/shot",
                 "/api/rules/{name}/fire", "/api/events", "/metrics", "/readyz"):  # fmt: skip
        assert path in paths, path
    assert "post" in paths["/api/recorders/{name}/start"]
    assert "get" not in paths["/api/recorders/{name}/start"]
    state = spec["components"]["schemas"]["RecorderState"]
    assert set(state["enum"]) == {
        "idle",
        "recording",
        "cooling_down",
        "error",
        "disabled",
        "closed",
    }


def test_the_page_is_served_with_its_own_files_only(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<title>cuecap</title>" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cross-origin-resource-policy"] == "same-origin"
    assert client.get("/page/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/page/../engine.py").status_code == 404


# -- security --------------------------------------------------------------------------


def test_control_is_post_only(client: httpx.Client) -> None:
    assert client.get("/api/recorders/moves/start").status_code == 405
    assert client.get("/api/cameras/bench/shot").status_code == 405


def test_cross_site_control_is_refused(client: httpx.Client) -> None:
    evil = client.post("/api/rules/hourly/fire", headers={"origin": "http://evil.example"})
    assert evil.status_code == 403
    fetched = client.post("/api/rules/hourly/fire", headers={"sec-fetch-site": "cross-site"})
    assert fetched.status_code == 403
    same = client.post("/api/rules/hourly/fire", headers={"origin": client.base_url.scheme + "://"
                       + client.base_url.netloc.decode()})  # fmt: skip
    assert same.status_code == 200


def test_a_foreign_host_name_is_refused_on_loopback(client: httpx.Client) -> None:
    rebound = client.get("/api/status", headers={"host": "attacker.example:7080"})
    assert rebound.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "../rules.yaml",
        "..%2Frules.yaml",
        "moves/../../rules.yaml",
        "%2Fetc%2Fpasswd",
        "moves/%2E%2E/%2E%2E/rules.yaml",
    ],
)
def test_a_download_cannot_leave_its_folder(client: httpx.Client, path: str) -> None:
    for base in ("/api/segments/file/", "/api/shots/file/"):
        answer = client.get(base + path)
        assert answer.status_code in (403, 404), (base + path, answer.status_code)


def test_a_link_planted_inside_pointing_out_is_refused(
    served: Served, client: httpx.Client
) -> None:
    (served.root / "shots").mkdir(exist_ok=True)
    link = served.root / "shots" / "out.jpg"
    link.symlink_to(served.root / "rules.yaml")
    assert client.get("/api/shots/file/out.jpg").status_code == 403


def test_with_a_token_control_needs_it_and_reads_from_loopback_do_not(tmp_path: Path) -> None:
    with (
        serving(tmp_path, token=TOKEN, first_burst=30.0) as running,
        httpx.Client(base_url=running.url, timeout=10) as c,
    ):
        assert c.get("/api/status").status_code == 200
        refused = c.post("/api/rules/hourly/fire")
        assert refused.status_code == 401
        wrong = c.post("/api/rules/hourly/fire", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = c.post("/api/rules/hourly/fire", headers={"authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert c.post("/api/session", json={"token": "wrong"}).status_code == 401
        signed = c.post("/api/session", json={"token": TOKEN})
        assert signed.status_code == 200
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert c.post("/api/rules/hourly/fire").status_code == 200  # the cookie now
        for answer in (c.get("/api/status"), c.get("/metrics"), c.get("/")):
            assert TOKEN not in answer.text


def test_a_request_body_past_its_bound_is_refused(client: httpx.Client) -> None:
    answer = client.post("/api/session", content=b"{" + b" " * 10_000 + b"}",
                         headers={"content-type": "application/json"})  # fmt: skip
    assert answer.status_code == 413


CAMERA_WITH_A_PASSWORD = """\
settings:
  recordings: rec
  shots: {folder: shots}
sources:
  sim: {type: simulator, seed: 3, fps: 0, first_burst_delay: 60}
cameras:
  gate:
    type: http
    url: http://127.0.0.1:PORT/snapshot.jpg
    auth: {type: basic, username: admin, password_env: GATE_PASSWORD}
    timeout: 1
    tries: 1
"""


def test_a_camera_password_never_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    password = "hunter2-but-longer-pw"
    monkeypatch.setenv("GATE_PASSWORD", password)
    with socket.socket() as closed:  # nothing listens there: every shot fails
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    rules = CAMERA_WITH_A_PASSWORD.replace("PORT", str(port))
    with (
        serving(tmp_path, rules=rules) as running,
        httpx.Client(base_url=running.url, timeout=10) as c,
    ):
        events: list[str] = []
        with c.stream("GET", "/api/events") as stream:
            assert c.post("/api/cameras/gate/shot").status_code == 200
            for line in stream.iter_lines():
                events.append(line)
                if line.startswith("data: ") and '"shot.error"' in line:
                    break
        gate = c.get("/api/cameras/gate").json()
        assert gate["failed"] == 1 and gate["last_error"]["reason"]
        seen = [c.get(p).text for p in ("/api/status", "/api/cameras", "/metrics", "/")]
    assert all(password not in text for text in [*seen, *events])
    assert password not in caplog.text
