"""The audit web view in a real browser (headless Chromium through Selenium and Debian's
chromedriver) against `overstap web serve` as an administrator runs it: log in, see the chain,
search events, open a student's trail, log out; no page shows a personal number, and the pages
work without JavaScript (it is switched off)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from overstap.region import generate_region, iter_students

OVERSTAP = str(Path(sys.executable).with_name("overstap"))
PASSWORD = "a long browser password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    env = {**os.environ, "OVERSTAP_HOME": str(tmp_path / "home"), "WEB_PASSWORD": PASSWORD}
    generate_region(tmp_path / "region", students=40, seed=21)
    for args in (("db", "upgrade"), ("region", "load", str(tmp_path / "region")),
                 ("web", "adduser", "anna", "--role", "auditor", "--password-env", "WEB_PASSWORD")):  # fmt: skip
        done = subprocess.run([OVERSTAP, *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
    port = _free_port()
    server = subprocess.Popen(
        [OVERSTAP, "web", "serve", "--port", str(port)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/", tmp_path
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_login_search_trail_and_no_personal_number(
    served: tuple[str, Path], chromium_bins: tuple[str, str]
) -> None:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    url, tmp_path = served
    chromium, driver_bin = chromium_bins
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"profile.managed_default_content_settings.javascript": 2}
    )
    browser = webdriver.Chrome(service=Service(driver_bin), options=options)
    numbers = {r.student.identifier.value for r in iter_students(tmp_path / "region")}
    record = next(iter_students(tmp_path / "region"))
    seen: list[str] = []

    def after(click_on: object, text: str) -> str:
        """Click, then wait for the old page to go and the next to show `text` (navigation is
        asynchronous, and the old page may hold the same text)."""
        old = browser.find_element(By.TAG_NAME, "html")
        click_on.click()  # type: ignore[attr-defined]

        def gone(_: object) -> bool:
            try:
                old.tag_name  # noqa: B018 (touching it is the test)
            except WebDriverException:  # stale, or the inspector no longer knows the node
                return True
            return False

        wait = WebDriverWait(browser, 15, ignored_exceptions=(WebDriverException,))
        wait.until(gone)
        wait.until(lambda d: text in d.page_source)
        page = str(browser.page_source)
        seen.append(page)
        return page

    try:
        browser.get(url)
        WebDriverWait(browser, 15).until(lambda d: d.current_url.endswith("/login"))
        browser.find_element(By.NAME, "name").send_keys("anna")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        after(browser.find_element(By.CSS_SELECTOR, "button[type=submit]"), "Audit chain OK")

        after(browser.find_element(By.LINK_TEXT, "events"), "Audit events")
        browser.find_element(By.NAME, "kind").send_keys("student.")
        browser.find_element(By.NAME, "party").send_keys(str(record.student.school))
        after(browser.find_element(By.CSS_SELECTOR, "button[type=submit]"), "student.created")

        after(browser.find_element(By.LINK_TEXT, "trail"), "Show trail")
        browser.find_element(By.NAME, "school").send_keys(str(record.student.school))
        browser.find_element(By.NAME, "leerlingid").send_keys(record.student.leerlingid)
        page = after(browser.find_element(By.CSS_SELECTOR, "button[type=submit]"),
                     "this look is recorded")  # fmt: skip
        assert "ps1_" in page

        after(browser.find_element(By.LINK_TEXT, "outbox"), "Messages per state")
        after(browser.find_element(By.PARTIAL_LINK_TEXT, "log out"), "Log in")
        browser.get(url)
        WebDriverWait(browser, 15).until(lambda d: d.current_url.endswith("/login"))
    finally:
        browser.quit()
    assert not [n for n in numbers if any(n in page for page in seen)]
