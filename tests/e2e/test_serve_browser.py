"""The gateway's web page in a real browser (Debian's chromium + chromium-driver, driven by selenium).

A graph process streams to the gateway and stops half-way at a gate; the page shows the live
run's progress bar part-filled, then, once the gate opens, full, with the LLM's tokens and the
outcome. A screenshot is kept in ``test-artifacts/serve-page.png``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.test_serve_live import ALL_MODES, REPO, Gateway, Processes, _finish, _worker, gateway, processes

__all__ = ["gateway", "processes"]  # the fixtures, used by name

ARTIFACTS = REPO / "test-artifacts"
WAIT_S = 60


def _driver() -> webdriver.Chrome:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail(
            "the browser test needs Debian's chromium and chromium-driver: run scripts/system-deps.sh (as root)",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900", "--no-proxy-server"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


def _bar_ratio(browser: webdriver.Chrome) -> float:
    bars = browser.find_elements(By.CSS_SELECTOR, "#progress .bar")
    return max((float(bar.get_attribute("data-ratio") or 0) for bar in bars), default=0.0)


def test_the_page_shows_a_live_run(gateway: Gateway, processes: Processes, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    run_id, worker = _worker(processes, gateway, "research", tmp_path / "expected.txt", ALL_MODES, True, gate=gate)
    browser = _driver()
    try:
        browser.get(gateway.url + "/")
        wait = WebDriverWait(browser, WAIT_S)
        wait.until(lambda b: b.find_element(By.ID, "run-id").text == run_id)
        # half-way: planning wrote 5/10, and the run waits at the gate
        wait.until(lambda b: _bar_ratio(b) == 0.5)
        assert browser.find_element(By.ID, "outcome").text == "running"
        gate.touch()
        wait.until(lambda b: _bar_ratio(b) == 1.0)
        wait.until(lambda b: b.find_element(By.ID, "tokens").text == "The answer is 42.")
        wait.until(lambda b: b.find_element(By.ID, "outcome").text == "completed")
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#timeline .node")) >= 4)
        assert "research" in browser.find_element(By.CSS_SELECTOR, "#runs tbody").text
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "serve-page.png"))
    finally:
        browser.quit()
    _finish(worker, "the graph process")
