"""The UI and the offline report in headless Chromium: click through, check every plot renders with no
JavaScript error, and keep screenshots (in $FRUGAL_TEST_ARTIFACTS, default .frugal/test-artifacts).

Needs Debian's ``chromium`` and ``chromedriver`` (``.ci/run`` installs them); nothing is downloaded at
test time. Without them the tests skip, unless ``FRUGAL_REQUIRE_BROWSER=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ARTIFACTS = Path(os.environ.get("FRUGAL_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / ".frugal" / "test-artifacts"))


def _executables() -> tuple[str, str] | None:
    browser = next((p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    found = _executables()
    if found is None:
        if os.environ.get("FRUGAL_REQUIRE_BROWSER"):
            pytest.fail("chromium and chromedriver are required (FRUGAL_REQUIRE_BROWSER is set): "
                        "apt-get install chromium chromium-driver")
        pytest.skip("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--disable-gpu", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=options)  # a given driver: no download
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(searched: dict) -> Iterator[str]:
    import uvicorn

    from frugalml.ui import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(searched["url"]), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        if time.time() > deadline:
            pytest.fail("the UI server did not start within 30 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def _wait_for_plots(driver: Any, ids: list[str], timeout: float = 30) -> None:
    """Every figure div has become a plotly plot with an SVG and at least one trace."""
    from selenium.webdriver.support.ui import WebDriverWait

    script = ("return arguments[0].every(id => { const el = document.getElementById(id);"
              " return el && el.classList.contains('js-plotly-plot') && el.querySelector('.main-svg')"
              " && el.data && el.data.length > 0; });")
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script, ids))


def _no_js_errors(driver: Any) -> None:
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe


def _screenshot(driver: Any, name: str) -> Path:
    height = driver.execute_script("return Math.max(document.body.scrollHeight, 900)")
    driver.set_window_size(1280, min(int(height) + 40, 12000))
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)
    assert path.stat().st_size > 10_000
    return path


def test_click_from_the_list_into_a_run_and_a_comparison(browser: Any, server: str, searched: dict) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Runs"
    _no_js_errors(browser)
    _screenshot(browser, "ui-runs")

    browser.find_element(By.ID, f"run-{searched['first']}").click()
    _wait_for_plots(browser, ["fig-pareto", "fig-latency", "fig-throughput", "fig-roofline", "fig-subgroups"])
    assert "frugalml search" in browser.find_element(By.TAG_NAME, "h1").text
    _no_js_errors(browser)
    _screenshot(browser, "ui-run")

    browser.find_element(By.ID, "nav-runs").click()
    for run_id in (searched["first"], searched["second"]):
        browser.find_element(By.CSS_SELECTOR, f"input.pick[value='{run_id}']").click()
    browser.find_element(By.ID, "compare-button").click()
    _wait_for_plots(browser, ["fig-fronts"])
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Run #{searched['first']} vs run #{searched['second']}"
    _no_js_errors(browser)
    _screenshot(browser, "ui-compare")


def test_filters_and_cost_page(browser: Any, server: str, searched: dict) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(server + "/")
    Select(browser.find_element(By.ID, "filter-kind")).select_by_value("profile")
    browser.find_element(By.ID, "filter-apply").click()
    WebDriverWait(browser, 30).until(lambda d: "kind=profile" in d.current_url
                                     and d.execute_script("return document.readyState") == "complete")
    kinds = {row.text for row in browser.find_elements(By.CSS_SELECTOR, "table tr td:nth-child(3)")}
    assert kinds == {"profile"}
    browser.find_element(By.ID, "nav-cost").click()
    _wait_for_plots(browser, ["fig-cost"])
    assert "runs" in browser.find_element(By.ID, "cost-total").text
    _no_js_errors(browser)
    _screenshot(browser, "ui-cost")


def test_offline_report_renders_from_the_file(browser: Any, searched: dict) -> None:
    """report.html as written by frugal optimize, opened from disk: every plot draws with no server."""
    browser.get((searched["out"] / "report.html").as_uri())
    _wait_for_plots(browser, ["fig-pareto", "fig-runoff", "fig-latency", "fig-throughput", "fig-roofline", "fig-subgroups"])
    _no_js_errors(browser)
    _screenshot(browser, "report")


def test_compare_page_renders_from_the_file(browser: Any, tmp_path: Path) -> None:
    """A `frugal compare` run's page, written by `frugal report`, opened from disk: both round-by-round
    plots draw with no server."""
    from frugalml.measure import compare_latency
    from frugalml.report import write_report

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    c = compare_latency(["zoo:digits-mlp", "zoo:digits-cnn"], batch=8, rounds=4, round_s=0.05, store=url)
    page = write_report(str(c.run_id), tmp_path / "compare.html", store=url)
    browser.get(page.as_uri())
    _wait_for_plots(browser, ["fig-rounds-p50", "fig-rounds-p95"])
    _no_js_errors(browser)
    _screenshot(browser, "report-compare")
