"""The whole site on the status page, the API, /metrics and ``cuecap site``, on a real nats-server.

Three engines run in-process (each with its own connection, as three
machines would), the first serving HTTP on a free port; one more runs as a
real ``cuecap run`` process to be SIGKILLed. The page's site table is read
in a real browser.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.js.errors

from engine.cluster.devserver import NatsServer
from engine.cluster.names import Names
from engine.cluster.roster import NO_SITE, SiteStatus
from engine.rules.loader import load_rules
from engine.runtime.engine import Engine
from engine.shots.testing import HttpCameraServer
from tests.http_engine import serving
from tests.natsserver import nats_server
from tests.site_engines import BODY, Site, running_site, site_file
from tests.test_http_page import browser

__all__ = ["browser", "nats_server"]

SIM = """\
sources:
  sim: {type: simulator, seed: 3, fps: 2, image_size: [32, 32], idle: [0.5, 1],
        first_burst_delay: 0.3}
recorders:
  moves: {source: sim, activity: [{type: message, types: [electrode_state]}], post_roll: 5s}
"""


DOCS_DIR = Path(__file__).resolve().parents[1] / "docs"
DOCS = (DOCS_DIR / "cluster.md").read_text("utf-8")
DOC_COMMANDS = [
    line.strip()
    for block in re.findall(r"```console\n(.*?)```", DOCS, re.S)
    for line in block.splitlines()
    if line.startswith("cuecap site")
]


def names(status: SiteStatus) -> list[str]:
    return [e.name for e in status.engines]


def api(site: Site) -> dict[str, object]:
    body: dict[str, object] = httpx.get(f"{site.url}api/site", timeout=5).json()
    return body


async def _bucket_has(server: NatsServer, key: str) -> bool:
    nc = await nats.connect(server.url)
    try:
        kv = await nc.jetstream().key_value(Names("lab").engine_bucket)
        try:
            await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return False
        return True
    finally:
        await nc.close()


def bucket_has(server: NatsServer, key: str) -> bool:
    return asyncio.run(_bucket_has(server, key))


def test_the_api_lists_every_engine_with_what_it_runs_and_a_clean_stop_leaves_at_once(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    with HttpCameraServer(delay=0.6) as camera:
        body = (
            SIM
            + f"cameras:\n  cam: {{type: http, url: '{camera.url()}', max_in_flight: 2}}\n"
            + BODY
            + "  snap:\n    mode: parallel\n    max: 4\n"
            "    when: {type: schedule, every: 0.25s}\n    do: {type: shot, cameras: cam}\n"
        )
        with running_site(tmp_path, nats_server, ["e0", "e1", "e2"], body=body) as site:
            # Over a few seconds every engine runs fires of the site, and shots are in flight.
            seen_running: set[str] = set()
            seen_shots: set[str] = set()

            def busy() -> bool:
                for record in site.status("e0").engines:
                    if record.running:
                        seen_running.add(record.name)
                    if any(c.in_flight for c in record.cameras):
                        seen_shots.add(record.name)
                status = site.status("e0")
                reading = [r.name for r in status.engines if r.sources and r.sources[0].frames]
                return len(seen_running) >= 2 and len(seen_shots) >= 1 and len(reading) == 3

            site.wait(busy)
            answer = api(site)
            assert answer["site"] == "lab" and answer["engine"] == "e0"
            engines = {e["name"]: e for e in answer["engines"]}  # type: ignore[attr-defined]
            assert sorted(engines) == ["e0", "e1", "e2"]
            for record in engines.values():
                assert record["state"] == "running"
                assert record["rules"] == ["slow", "snap"]
                assert record["pid"] == os.getpid() and record["ttl"] == 3.0
                assert [s["name"] for s in record["sources"]] == ["sim"]
                assert [r["name"] for r in record["recorders"]] == ["moves"]
                assert record["link"]["connected"] is True
                assert record["leads"] == []
            assert len({e["rules_hash"] for e in engines.values()}) == 1
            assert answer["warnings"] == []
            # Which engine ran the recent fires: from the rule.fired events of the site.
            firings = answer["firings"]
            assert {f["rule"] for f in firings} == {"slow", "snap"}  # type: ignore[attr-defined]
            assert {f["engine"] for f in firings} >= seen_running  # type: ignore[attr-defined]
            by_e0 = [f for f in firings if f["engine"] == "e0"]  # type: ignore[attr-defined]
            assert engines["e0"]["counts"]["fired"] >= len(by_e0)  # its own record is of now

            metrics = httpx.get(f"{site.url}metrics", timeout=5).text
            assert "cuecap_site_engines 3.0" in metrics
            assert "cuecap_site_rule_file_sets 1.0" in metrics

            # A clean stop takes the engine off the site at once, not after its TTL.
            last = site.status("e0").engine_named("e2")
            site.stop("e2")
            assert not bucket_has(nats_server, "e2")  # purged before its run returned
            site.wait(lambda: "e2" not in names(site.status("e0")))
            assert time.time() < last.seen + last.ttl, "it went by expiry, not by its stop"
            assert sorted(names(site.status("e1"))) == ["e0", "e1"]


def test_a_killed_engine_is_warned_about_then_gone_after_its_ttl(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    with running_site(tmp_path / "site", nats_server, ["e0"], ack_wait=1.5) as site:
        rules = site_file(tmp_path / "k", nats_server,
                          BODY.replace("rules:", "rules:  # k"), ack_wait=1.5)  # fmt: skip
        text = rules.read_text().replace("ack_wait: 1.5s", "ack_wait: 1.5s, engine: doomed")
        rules.write_text(text)
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "run", "--no-watch", "--no-http", str(rules)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            site.wait(lambda: "doomed" in names(site.status("e0")), timeout=60)
            status = site.status("e0")
            doomed = status.engine_named("doomed")
            assert doomed.pid == process.pid and doomed.ttl == 2.0  # whole seconds, rounded up
            assert any("different rule files" in w for w in status.warnings)  # a comment differs
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            killed = time.time()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stderr is not None
            process.stderr.close()
        assert bucket_has(nats_server, "doomed")  # a killed engine purges nothing
        site.wait(lambda: any("engine doomed not seen for" in w
                              for w in site.status("e0").warnings))  # fmt: skip
        site.wait(lambda: "doomed" not in names(site.status("e0")))
        last = doomed.seen
        for _ in range(40):  # the server forgets it by the TTL too (checked by its own timer)
            if not bucket_has(nats_server, "doomed"):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the server kept the record of a dead engine past its TTL")
        gone = time.time()
        assert gone >= killed and gone >= last + 2.0 - 0.05
        assert site.status("e0").warnings == ()  # nothing left to warn about


def test_engines_on_different_rule_files_are_warned_about_and_cuecap_site_shows_them(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    other = (
        BODY + "  extra:\n    when: {type: schedule, every: 1h}\n    do: {type: log, message: x}\n"
    )
    with running_site(tmp_path, nats_server, ["e0", "e1", "e2"], bodies={"e2": other}) as site:
        answer = api(site)
        (warning,) = answer["warnings"]  # type: ignore[misc]
        assert "different rule files" in warning and "e0, e1 on" in warning
        assert "e2 on" in warning
        rules = {e["name"]: e["rules"] for e in answer["engines"]}  # type: ignore[attr-defined]
        assert rules == {"e0": ["slow"], "e1": ["slow"], "e2": ["slow", "extra"]}
        assert "cuecap_site_rule_file_sets 2.0" in httpx.get(f"{site.url}metrics").text

        # the commands docs/cluster.md shows, on these rule files
        rules_file = str(tmp_path / "e0" / "site.yaml")
        for line in DOC_COMMANDS:
            argv = line.replace("/etc/cuecap/rules", rules_file).split()[1:]
            shown = subprocess.run([sys.executable, "-m", "engine", *argv], capture_output=True,
                                   text=True, timeout=60)  # fmt: skip
            assert shown.returncode == 0 and "e2" in shown.stdout, (line, shown.stderr)
        command = [sys.executable, "-m", "engine", "site", rules_file]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "site lab: 3 engine(s)"
        assert lines[1].split()[:3] == ["engine", "host", "state"]
        assert [line.split()[0] for line in lines[2:5]] == ["e0", "e1", "e2"]
        assert all(" running " in line for line in lines[2:5])
        assert lines[5].startswith("warning: the engines run different rule files")
        done = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=60)
        read = json.loads(done.stdout)
        assert [e["name"] for e in read["engines"]] == ["e0", "e1", "e2"]
        assert read["firings"] == [] and read["engine"] == ""

        # e2 reloads the others' rule files: its digest follows and the warning goes
        (tmp_path / "e2" / "site.yaml").write_bytes((tmp_path / "e0" / "site.yaml").read_bytes())
        asyncio.run_coroutine_threadsafe(reload(site.engines["e2"]), site.loop).result(10)
        site.wait(lambda: site.status("e0").warnings == ())
        assert site.status("e0").engine_named("e2").rules == ("slow",)
    # every engine stopped cleanly: the server knows no engine of the site any more
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.splitlines()[0] == "site lab: 0 engine(s)"


async def reload(engine: Engine) -> None:
    """What the rule watcher does when the engine's files changed."""
    engine._reloaded(await engine.apply(load_rules(engine.rules.files, env={})))


def test_cuecap_site_without_a_site_or_a_server_says_so(tmp_path: Path) -> None:
    from engine.cluster.devserver import free_port

    alone = tmp_path / "alone.yaml"
    alone.write_text("rules:\n  t:\n    when: {type: schedule, every: 1h}\n"
                     "    do: {type: log, message: t}\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "engine", "site", str(alone)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "alone.yaml: no settings.cluster, so there is no site to show" in done.stderr
    port = free_port()
    away = tmp_path / "away.yaml"
    away.write_text(f"settings:\n  cluster: {{nats: 'nats://127.0.0.1:{port}', name: lab,"
                    " connect_timeout: 0.5}\n" + alone.read_text())  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "engine", "site", str(away)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert f"cannot connect to nats://127.0.0.1:{port}" in done.stderr


def test_without_cluster_the_api_says_there_is_no_site(tmp_path: Path) -> None:
    with serving(tmp_path / "run", first_burst=60.0) as served:
        answer = httpx.get(f"{served.url}api/site", timeout=5)
        metrics = httpx.get(f"{served.url}metrics", timeout=5).text
        spec = httpx.get(f"{served.url}api/openapi.json", timeout=5).json()
    assert answer.status_code == 200
    body = answer.json()
    assert body["site"] is None and body["engines"] == [] and body["note"] == NO_SITE
    assert "cuecap_site_engines" not in metrics
    schema = spec["paths"]["/api/site"]["get"]["responses"]["200"]["content"]
    assert schema["application/json"]["schema"]["$ref"].endswith("/SiteStatus")
    assert "EngineRecord" in spec["components"]["schemas"]


def site_rows(driver: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = driver.execute_script(
        "return [...document.querySelectorAll('#site tbody tr')].map((r) => ({name: r.dataset.name,"
        " class: r.className, differs: !!r.querySelector('td.differs'), text: r.textContent}))"
    )
    return rows


def test_the_page_shows_the_site_table_live(
    tmp_path: Path, nats_server: NatsServer, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    wait = WebDriverWait(driver, 30, poll_frequency=0.05)
    other = BODY.replace("every: 0.3s", "every: 0.4s")
    with running_site(tmp_path, nats_server, ["e0", "e1", "e2"], bodies={"e2": other}) as site:
        driver.get(site.url)
        wait.until(lambda d: d.find_element(By.ID, "site-section").is_displayed())
        assert (
            driver.find_element(By.ID, "site-name").get_attribute("textContent") == "lab: 3 engines"
        )
        # The rows are redrawn each second: read them in one go, in the page.
        rows = site_rows(driver)
        assert [r["name"] for r in rows] == ["e0", "e1", "e2"]
        assert "self" in rows[0]["class"]
        # e2's rule files differ: its digest is marked and the warning is shown
        assert [r["name"] for r in rows if r["differs"]] == ["e2"]
        assert "different rule files" in driver.find_element(By.ID, "site-warnings").text
        # live: the fires the engines run show up in the table and in the site's fire list
        wait.until(lambda d: "slow " in d.find_element(By.ID, "site").text)
        wait.until(lambda d: " on e" in d.find_element(By.ID, "site-firings").text)
        if os.environ.get("CUECAP_DOCS_SCREENSHOT") == "1":  # the picture in docs/cluster.md
            section = driver.find_element(By.ID, "site-section")
            assert section.screenshot(str(DOCS_DIR / "cluster-site.png"))
        # Readable on a phone: the table scrolls inside its box, the page does not widen.
        driver.set_window_size(390, 844)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
        site.stop("e1")
        wait.until(lambda d: [r["name"] for r in site_rows(d)] == ["e0", "e2"])
        assert (
            driver.find_element(By.ID, "site-name").get_attribute("textContent") == "lab: 2 engines"
        )


def test_the_page_has_no_site_section_without_cluster(tmp_path: Path, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    with serving(tmp_path / "run", first_burst=60.0) as served:
        driver.get(served.url)
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "state").text == "running")
        assert not driver.find_element(By.ID, "site-section").is_displayed()


def test_losing_the_server_is_said_and_the_site_comes_back_with_it(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    with running_site(tmp_path, nats_server, ["e0", "e1"], ack_wait=1.0) as site:
        nats_server.stop()
        site.wait(lambda: not site.status("e0").engine_named("e0").link.connected)
        status = site.status("e0")
        assert status.warnings[0].startswith("this engine has lost the NATS server")
        # e1's record runs out by e0's clock too: the view does not keep the dead alive
        site.wait(lambda: names(site.status("e0")) == ["e0"])
        nats_server.start()
        site.wait(lambda: names(site.status("e0")) == ["e0", "e1"])
        back = site.status("e0")
        assert back.warnings == ()
        assert back.engine_named("e0").link.disconnects == 1
        assert back.engine_named("e1").link.connected


async def _read_with_garbage(server: NatsServer, rules_file: Path) -> SiteStatus:
    from engine.cluster.presence import bucket_config, read_site

    nc = await nats.connect(server.url)
    try:
        kv = await nc.jetstream().create_key_value(bucket_config(Names("lab")))
        await kv.put("deep", b"[" * 5000)  # within the record's bound, deeper than Python's stack
        await kv.put("nan", b'{"v": 1, "seen": NaN}')
        await kv.put("text", b"not json at all")
    finally:
        await nc.close()
    config = load_rules([rules_file], env={}).settings.cluster
    assert config is not None
    return await read_site(config, now=time.time)


def test_records_in_the_bucket_that_are_garbage_are_reported_and_the_site_still_shows(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Any client of the server can write the engines bucket: its garbage is said, not fatal."""
    rules_file = tmp_path / "site.yaml"
    rules_file.write_text(f"settings:\n  cluster: {{nats: {nats_server.url}, name: lab}}\n")
    status = asyncio.run(_read_with_garbage(nats_server, rules_file))
    assert status.engines == ()
    deep, nan, text = status.warnings
    assert deep.startswith("a record cannot be read (deep):") and "nested deeper" in deep
    assert nan.startswith("a record cannot be read (nan):") and "NaN" in nan
    assert text.startswith("a record cannot be read (text):") and "not JSON" in text
