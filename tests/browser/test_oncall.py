"""On-call, as a person: headless Chromium on the dashboard of a running ``reconciler run``.

The controller runs against a dev cluster and a Git config repo; someone scales the portal
through Marathon's API (its drift policy is ``report``, so the controller leaves it alone),
the engineer opens the dashboard, reads the drift, is refused without the API token and
acknowledges the drift and syncs the app with it. Each test starts its own stack (tests are
spread over workers), and the story is one test whose steps build on each other.
"""

from __future__ import annotations

import re

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.browser import chrome
from tests.browser.stack import CATALOG, PORTAL, Stack

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _row(browser: webdriver.Chrome, app_id: str) -> WebElement | None:
    for row in browser.find_elements(By.CSS_SELECTOR, "table tr"):
        links = row.find_elements(By.CSS_SELECTOR, "a")
        if any(link.text == app_id for link in links):
            return row
    return None


def _button(browser: webdriver.Chrome, action_suffix: str) -> WebElement:
    buttons = [b for b in browser.find_elements(By.CSS_SELECTOR, "button[data-action]")
               if b.get_attribute("data-action").endswith(action_suffix)]
    assert buttons, f"no button for {action_suffix} on {browser.current_url}"
    return buttons[0]


def _click_and_read(browser: webdriver.Chrome, button: WebElement) -> str:
    """Click an action button; the page writes the answer in the element after it."""
    result = button.find_element(By.XPATH, "following-sibling::*[1]")
    button.click()
    return chrome.wait_until(
        lambda: result.text if result.text and result.text != "sending..." else None,
        "the page to show the answer to the action", timeout=60)


def _set_token(browser: webdriver.Chrome, token: str) -> None:
    field = browser.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token)


def test_apps_page_shows_every_app_in_sync_with_tag_and_health(
        stack: Stack, browser: webdriver.Chrome) -> None:
    stack.wait_for_states({PORTAL: "in sync", CATALOG: "in sync"})
    browser.get(stack.url + "/")
    for app_id in (PORTAL, CATALOG):
        row = chrome.wait_until(lambda app_id=app_id: _row(browser, app_id),
                                f"a row for {app_id}")
        assert "in sync" in row.text
        assert "v8r2p44" in row.text
        assert re.search(r"\b1/1 healthy\b", row.text), row.text


def test_drift_is_read_then_acted_on_only_with_the_token(
        stack: Stack, browser: webdriver.Chrome) -> None:
    stack.wait_for_states({PORTAL: "in sync"})
    _drift_is_readable_on_the_app_page(stack, browser)
    _action_without_token_is_refused_and_shown(stack, browser)
    _with_the_token_the_drift_is_acknowledged_and_the_app_synced(stack, browser)


def _drift_is_readable_on_the_app_page(stack: Stack, browser: webdriver.Chrome) -> None:
    stack.scale_in_marathon(PORTAL, 2)
    stack.wait_for_states({PORTAL: "drifted"})

    browser.get(stack.url + "/")
    row = chrome.wait_until(lambda: _row(browser, PORTAL), f"a row for {PORTAL}")
    assert "drifted" in row.text
    row.find_element(By.LINK_TEXT, PORTAL).click()

    card = chrome.wait_until(
        lambda: next(iter(browser.find_elements(By.CSS_SELECTOR, "[id^=drift-]")), None),
        "a drift record on the app page")
    assert "open" in card.text
    lines = [r.text for r in card.find_elements(By.CSS_SELECTOR, "tr")]
    # One direction everywhere: live (Marathon) -> desired (Git).
    assert any(re.fullmatch(r"/instances\s+2\s+→\s+1", line) for line in lines), lines
    assert "report" in card.text  # the policy: reported, not corrected
    assert "hunter2" not in browser.page_source
    assert stack.live_instances(PORTAL) == 2  # policy report: live left alone


def _action_without_token_is_refused_and_shown(stack: Stack,
                                              browser: webdriver.Chrome) -> None:
    browser.get(f"{stack.url}/apps{PORTAL}")
    answer = _click_and_read(browser, _button(browser, "/acknowledge"))
    assert answer.startswith("refused (401)"), answer

    drift = stack.api("/drift")["drift"][0]
    assert drift["app_id"] == PORTAL and drift["acknowledged_by"] is None
    refused = [e for e in stack.api("/audit")["audit"] if "refused" in (e["result"] or "")]
    assert refused and refused[0]["action"].endswith("/acknowledge")


def _with_the_token_the_drift_is_acknowledged_and_the_app_synced(
        stack: Stack, browser: webdriver.Chrome) -> None:
    browser.get(f"{stack.url}/apps{PORTAL}")
    _set_token(browser, stack.token)

    answer = _click_and_read(browser, _button(browser, "/acknowledge"))
    assert answer.startswith("done"), answer
    browser.refresh()
    card = browser.find_element(By.CSS_SELECTOR, "[id^=drift-]")
    assert "127.0.0.1" in card.text  # acknowledged by: the address the request came from

    # The token survives a reload (sessionStorage), and syncing applies Git's instances again.
    answer = _click_and_read(browser, _button(browser, f"/apps{PORTAL}/sync"))
    assert answer.startswith("done"), answer
    chrome.wait_until(lambda: stack.live_instances(PORTAL) == 1,
                      "the sync to put the portal back to 1 instance", timeout=90)

    audit = stack.api("/audit")["audit"]
    assert {"acknowledge drift", "sync"} <= {e["action"] for e in audit
                                              if "127.0.0.1" in e["who"]}
