"""Headless Chromium driven by Selenium, as a person uses the dashboard.

Debian's ``chromium`` and ``chromium-driver`` (``scripts/install-browser-deps.sh``); every
browser gets a fresh profile and no network beyond the local servers under test.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
T = TypeVar("T")


def missing() -> str | None:
    """Why a browser cannot start here, or None."""
    if not CHROMEDRIVER.exists() or shutil.which(str(CHROMIUM)) is None:
        return ("headless Chromium is missing: run scripts/install-browser-deps.sh as root "
                "(Debian packages chromium and chromium-driver)")
    return None


@contextmanager
def chromium(profile: Path, *, width: int = 1400, height: int = 1000) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile in ``profile``; always quit."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                     f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def wait_until(check: Callable[[], T | None], what: str, *, timeout: float = 30.0,
               interval: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy; fail saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except (StaleElementReferenceException, WebDriverException, AssertionError) as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last})" if last else ""))
        time.sleep(interval)


def text_of(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def find(driver: webdriver.Chrome, css: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, css)
