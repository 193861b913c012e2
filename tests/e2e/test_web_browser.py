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
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

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
    try:
        browser.get(url)
        assert browser.current_url.endswith("/login")
        browser.find_element(By.NAME, "name").send_keys("anna")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert "Audit chain OK" in browser.page_source
        seen.append(browser.page_source)

        browser.find_element(By.LINK_TEXT, "events").click()
        browser.find_element(By.NAME, "kind").send_keys("student.")
        browser.find_element(By.NAME, "party").send_keys(str(record.student.school))
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert "student.created" in browser.page_source
        seen.append(browser.page_source)

        browser.find_element(By.LINK_TEXT, "trail").click()
        browser.find_element(By.NAME, "school").send_keys(str(record.student.school))
        browser.find_element(By.NAME, "leerlingid").send_keys(record.student.leerlingid)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        assert "this look is recorded" in browser.page_source and "ps1_" in browser.page_source
        seen.append(browser.page_source)

        browser.find_element(By.LINK_TEXT, "outbox").click()
        seen.append(browser.page_source)
        browser.find_element(By.PARTIAL_LINK_TEXT, "log out").click()
        browser.get(url)
        assert browser.current_url.endswith("/login")
    finally:
        browser.quit()
    assert not [n for n in numbers if any(n in page for page in seen)]
