"""Regenerate docs/screenshots/*.png: the on-call pages after a short, real story.

    PYTHONPATH=. .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts a dev cluster, a Git config repo with three DIRAC apps and ``reconciler run`` (the
same stack as tests/browser), then: a release (one tag bump), a broken release of the file
catalog (rolled back by the controller and quarantined), and a hand scale of the portal in
Marathon (drift, policy report). Headless Chromium captures each page whole. Needs
chromium and chromium-driver (scripts/install-browser-deps.sh).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser import chrome
from tests.browser.stack import CATALOG, PORTAL, SETTINGS, Stack, apps
from tests.sync import cluster

REQMANAGER = "/dirac/requestmanagement/reqmanager"
PAGES = (
    ("apps", "/"),
    ("app-drifted", f"/apps{PORTAL}"),
    ("app-rolled-back", f"/apps{CATALOG}"),
    ("drift", "/drift"),
    ("history", "/history"),
    ("drift-report", "/drift/report.html"),
)


def story(stack: Stack) -> None:
    """Leave the stack with every kind of thing on-call meets."""
    wait = stack.wait_for_states
    wait({PORTAL: "in sync", CATALOG: "in sync", REQMANAGER: "in sync"}, timeout=120)
    cluster.set_tag(stack.repo, "v8r2p45")
    stack.commit("Release v8r2p45 of the DIRAC services", author="Bob Release",
                 email="bob@example.org")
    _wait_tag(stack, "v8r2p45")
    catalog = stack.repo / (CATALOG.strip("/") + ".yaml")
    catalog.write_text(catalog.read_text().replace(
        "image: dirac", "image: lhcbdirac:v8r2p46-broken"))
    stack.commit("Try v8r2p46 on the file catalog first", author="Carol Tester",
                 email="carol@example.org")
    wait({CATALOG: "quarantined"}, timeout=120)
    stack.scale_in_marathon(PORTAL, 2)
    wait({PORTAL: "drifted"}, timeout=60)


def _wait_tag(stack: Stack, tag: str, *, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = stack.api("/apps")["apps"]
        if rows and all(r["image_tag"] == tag and r["state"] == "in sync" for r in rows):
            return
        time.sleep(0.5)
    raise AssertionError(f"the release of {tag} never finished\n{stack.explain()}")


def capture(driver: webdriver.Chrome, url: str, path: Path, *, width: int = 1400) -> None:
    """The whole page, not only the window: the height follows the content."""
    driver.set_window_size(width, 900)
    driver.get(url)
    height = int(driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"))
    driver.set_window_size(width, min(max(height + 40, 600), 4000))
    time.sleep(0.2)
    driver.save_screenshot(str(path))


def refused(driver: webdriver.Chrome, stack: Stack, path: Path) -> None:
    """The drifted app's page after "Acknowledge" without a token: the refusal in view."""
    driver.set_window_size(1400, 900)
    driver.get(f"{stack.url}/apps{PORTAL}")
    button = next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[data-action]")
                  if str(b.get_attribute("data-action")).endswith("/acknowledge"))
    answer = button.find_element(By.XPATH, "following-sibling::*[1]")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    chrome.wait_until(lambda: answer.text.startswith("refused"), "the refusal on the page")
    driver.save_screenshot(str(path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    why = chrome.missing()
    if why:
        print(why, file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    desired = [*apps(), cluster.fast_app(REQMANAGER, grace=2)]
    settings = {**SETTINGS, "deadlines": {"/dirac/datamanagement": 8}}
    with tempfile.TemporaryDirectory(prefix="reconciler-screenshots-") as work:
        stack = Stack.start(Path(work), desired=desired, settings=settings)
        try:
            story(stack)
            with chrome.chromium(Path(work) / "profile") as driver:
                for name, page in PAGES:
                    capture(driver, stack.url + page, args.out / f"{name}.png")
                    print(f"{args.out / name}.png")
                refused(driver, stack, args.out / "action-refused.png")
                print(f"{args.out / 'action-refused'}.png")
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
