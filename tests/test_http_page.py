"""The status page in a real browser: Debian's headless Chromium driven by Selenium.

The browser and its driver come from the system packages (``chromium`` and
``chromium-driver``, listed in tools/system-packages); Selenium is pointed at
them and never downloads one. The page watches a recorder go to "recording"
during a simulated burst, takes a shot with its button and shows the
thumbnail, all over the live stream, with no reload.

``CUECAP_DOCS_SCREENSHOT=1`` also writes the screenshot to docs/http-page.png
(the picture in docs/http.md).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.http_engine import Served, serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DOCS = Path(__file__).resolve().parents[1] / "docs"
# As root Chromium needs --no-sandbox; a closed network refuses its background
# connections, so none are made; a fresh profile per test.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: install Debian's chromium and chromium-driver "
            "(tools/system-packages does it for make test)"
        )
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, if asked anything, stays offline
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1500"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_shows_a_recording_then_a_shot_taken_with_its_button(
    tmp_path: Path, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    wait = WebDriverWait(driver, 30, poll_frequency=0.05)
    served: Served
    with serving(tmp_path / "run", first_burst=3.0) as served:
        driver.get(served.url)
        wait.until(lambda d: d.find_element(By.ID, "state").text == "running")
        recorder = driver.find_element(By.ID, "recorders-moves")
        assert recorder.get_attribute("data-state") == "idle"
        # The first burst of droplet moves comes 3 s in: the card turns to recording live.
        wait.until(lambda d: recorder.get_attribute("data-state") == "recording")
        assert driver.find_element(By.ID, "recorders-moves-state").text == "recording"
        assert "now" in recorder.text and "msgs" in recorder.text  # the open segment

        thumb = driver.find_element(By.ID, "cameras-bench-thumb")
        before = thumb.get_attribute("data-task")
        driver.find_element(By.CSS_SELECTOR, "button[data-action=shot][data-target=bench]").click()
        wait.until(lambda d: "shot queued" in d.find_element(By.ID, "notice").text)
        wait.until(
            lambda d: (
                thumb.is_displayed()
                and thumb.get_attribute("data-task") not in (None, before)
                and d.execute_script(
                    "return arguments[0].complete && arguments[0].naturalWidth", thumb
                )
            )
        )
        width = driver.execute_script("return arguments[0].naturalWidth", thumb)
        assert width == 160  # the simulator's frame, as saved

        rules = driver.find_element(By.ID, "rules-noted")
        wait.until(lambda d: "event: recording.started moves" in rules.text)
        shot = tmp_path / "page.png"
        assert driver.save_screenshot(str(shot))

        # Readable on a phone: nothing wider than a narrow screen.
        driver.set_window_size(390, 844)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.size[0] >= 1000
    if os.environ.get("CUECAP_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS / "http-page.png")


def test_with_a_token_the_buttons_ask_for_it_once(tmp_path: Path, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    wait = WebDriverWait(driver, 20, poll_frequency=0.05)
    token = "a-long-enough-token-for-the-page"
    with serving(tmp_path / "run", token=token, first_burst=60.0) as served:
        driver.get(served.url)  # reading from this machine needs no token
        fire = wait.until(
            lambda d: d.find_element(
                By.CSS_SELECTOR, "button[data-action=fire][data-target=hourly]"
            )
        )
        fire.click()
        wait.until(lambda d: d.find_element(By.ID, "signin").is_displayed())
        assert "needs the access token" in driver.find_element(By.ID, "notice").text
        assert served.engine.status().rule("hourly").firings == 0
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "#signin button").click()
        wait.until(lambda d: "Signed in." in d.find_element(By.ID, "notice").text)
        assert token not in driver.page_source
        fire.click()
        wait.until(lambda d: "fired (firing 1)" in d.find_element(By.ID, "notice").text)
        rule = driver.find_element(By.ID, "rules-hourly")
        wait.until(lambda d: "manual: fired by hand" in rule.text)
