"""The dashboard in a real headless browser (Debian's chromium + chromium-driver, driven by
selenium; ``scripts/ensure-chromium`` installs them when missing): log in, a trend receives
live points, a setpoint change with a reason shows in the audit view and in the historian, a
viewer's change is refused by the server, an alarm is acknowledged, a wrong password and an
expired session are refused. A screenshot of each page goes to ``artifacts/dashboard/``
(``$EDGECTL_ARTIFACTS`` overrides)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from _web import PASSWORD, ROOT, dashboard

ARTIFACTS = Path(os.environ.get("EDGECTL_ARTIFACTS", ROOT / "artifacts")) / "dashboard"


def chromium() -> tuple[str, str]:
    """Paths of the browser and its driver, installed by the project's script if missing."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "ensure-chromium")],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    ).stdout.split()
    return out[0], out[1]


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    return chromium()


@pytest.fixture
def driver(browser_paths: tuple[str, str], tmp_path: Path) -> Iterator[WebDriver]:
    binary, drv = browser_paths
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'chrome'}",
    ):
        opts.add_argument(arg)
    d = webdriver.Chrome(service=Service(drv), options=opts)
    try:
        yield d
    finally:
        d.quit()


def wait(d: WebDriver, cond: Callable[[Any], Any], limit_s: float = 60.0) -> Any:
    """Wait for the page (a liveness bound, not a timing assertion)."""
    return WebDriverWait(d, limit_s, poll_frequency=0.05).until(cond)


def shot(d: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def login(d: WebDriver, url: str, user: str, password: str = PASSWORD) -> None:
    d.get(url + "/login")
    d.find_element(By.ID, "user").send_keys(user)
    d.find_element(By.ID, "password").send_keys(password)
    d.find_element(By.ID, "login").click()


def test_operator_session_in_a_browser(driver: WebDriver, tmp_path: Path) -> None:
    d = driver
    with dashboard(tmp_path) as dash:
        ctl = dash.run.controller
        # wrong password: refused, still on the login page
        login(d, dash.url, "olga", "wrong password!")
        wait(d, lambda d: d.find_elements(By.ID, "flash"))
        assert "wrong password" in d.find_element(By.ID, "flash").text
        assert d.find_elements(By.ID, "login-form")
        shot(d, "login-refused")

        login(d, dash.url, "olga")
        wait(d, lambda d: d.find_elements(By.ID, "who"))
        assert d.find_element(By.ID, "who").text == "olga (operator)"
        wait(d, lambda d: d.find_element(By.ID, "speed").text.endswith("x"))
        shot(d, "overview")

        # trends: history, then live points pushed by the server
        d.get(dash.url + "/trends?tag=temp_c")
        wait(d, lambda d: int(d.find_element(By.ID, "npoints").text) > 0)
        live0 = int(d.find_element(By.ID, "nlive").text)
        wait(d, lambda d: int(d.find_element(By.ID, "nlive").text) >= live0 + 3)
        assert d.find_elements(By.CSS_SELECTOR, "#chart canvas")
        shot(d, "trends")

        # a setpoint change with a reason on the faceplate
        d.get(dash.url + "/loops")
        Select(d.find_element(By.ID, "temp-param")).select_by_value("setpoint")
        d.find_element(By.ID, "temp-value").send_keys("36.2")
        d.find_element(By.ID, "temp-reason").send_keys("browser test: lower for induction")
        d.find_element(By.ID, "temp-apply").click()
        wait(d, lambda d: d.find_elements(By.ID, "flash"))
        assert "loops.temp.setpoint: 37 → 36.2" in d.find_element(By.ID, "flash").text
        shot(d, "loops")
        d.get(dash.url + "/audit")
        table = d.find_element(By.ID, "audit-table").text
        assert "browser test: lower for induction" in table
        assert "loops.temp.setpoint" in table
        assert "audit trail intact" in d.find_element(By.ID, "verdict").text
        shot(d, "audit")
        deadline = time.monotonic() + 60
        while 36.2 not in ctl.history("temp.sp", buckets=50)["value"]:
            assert time.monotonic() < deadline, "the setpoint never reached the historian"
            time.sleep(0.05)

        # an alarm acknowledged from the alarm page, with the operator's identity
        wait(d, lambda d: any(a["name"] == "do_low" for a in ctl.alarms()))
        d.get(dash.url + "/alarms")
        d.find_element(By.ID, "ack-reason-do_low").send_keys("seen")
        d.find_element(By.ID, "ack-do_low").click()
        wait(d, lambda d: d.find_elements(By.ID, "flash"))
        assert "acknowledged do_low as olga" in d.find_element(By.ID, "flash").text
        assert any(a["transition"] == "ack" and a["actor"] == "olga" for a in ctl.alarm_log(50))
        shot(d, "alarms")
        d.get(dash.url + "/events")
        shot(d, "events")
        # the recipe page: the run's phase and its timeline, the phases' triggers in words
        d.get(dash.url + "/recipe")
        assert d.find_element(By.ID, "r-phase").text == ctl.recipe.phase_name
        assert "batch" in d.find_element(By.ID, "timeline").text
        assert "operator request" in d.find_element(By.ID, "phases").text
        assert d.find_element(By.ID, "timeline-bar").is_displayed()
        shot(d, "recipe")

        # the session expires: the next page goes to the login, and a change is refused
        real = dash.server.sessions.clock
        dash.server.sessions.clock = lambda: real() + 1e6
        d.get(dash.url + "/loops")
        wait(d, lambda d: d.find_elements(By.ID, "login-form"))
        assert "expired" in d.find_element(By.ID, "flash").text
        dash.server.sessions.clock = real

        # a viewer sees the faceplate, and the server refuses the change
        d.delete_all_cookies()
        login(d, dash.url, "vic")
        wait(d, lambda d: d.find_elements(By.ID, "who"))
        d.get(dash.url + "/loops")
        d.find_element(By.ID, "temp-value").send_keys("30")
        d.find_element(By.ID, "temp-reason").send_keys("viewer tries")
        d.find_element(By.ID, "temp-apply").click()
        wait(d, lambda d: d.find_elements(By.ID, "flash"))
        text = d.find_element(By.ID, "flash").text
        assert "refused" in text
        assert "role viewer" in text
        shot(d, "viewer-refused")
        assert ctl.loop_get("temp")["setpoint"] == 36.2
