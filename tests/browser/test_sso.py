"""Single sign-on, as people use it: headless Chromium signs in to the dashboard of a running
``reconciler run`` through a real OpenID Connect provider run by the suite
(``oidc-provider-mock``), whose authorization page lets the person pick who they are.

Reading is closed to anonymous people, so the dashboard sends a stranger to sign on. Vera (a
shifter: viewer) reads the app's page but is refused the sync (403); she signs out at the
provider; Oscar (on call: operator) signs in and syncs; the audit and the sync run name him.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from reconciler.shell.ports import free_port
from tests.browser import chrome
from tests.browser.stack import CATALOG, PORTAL, Stack
from tests.support import provider

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[provider.Provider]:
    with provider.running(tmp_path / "provider.log") as running:
        yield running


@pytest.fixture
def signed_on_stack(tmp_path: Path, idp: provider.Provider) -> Iterator[Stack]:
    (tmp_path / "client-secret").write_text(provider.CLIENT_SECRET + "\n")
    (tmp_path / "session-secret").write_text("session-secret-of-this-host-4d1f0a9c3b7e\n")
    running = Stack.start(tmp_path / "stack", public=True, extra_env={
        "RECONCILER_OIDC_ISSUER": idp.issuer,
        "RECONCILER_OIDC_CLIENT_ID": provider.CLIENT_ID,
        "RECONCILER_OIDC_CLIENT_SECRET_FILE": str(tmp_path / "client-secret"),
        "RECONCILER_SESSION_SECRET_FILE": str(tmp_path / "session-secret"),
        "RECONCILER_OIDC_ROLES": provider.ROLES,
        "RECONCILER_ANONYMOUS_READ": "false"})
    try:
        yield running
    finally:
        running.stop()


@contextmanager
def _other_site(target: str) -> Iterator[str]:
    """Another site, serving one page with a form that POSTs to ``target``."""
    page = (f'<!DOCTYPE html><title>win a prize</title><form method="post" action="{target}">'
            '<button type="submit">claim</button></form>').encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _sign_in_at_the_provider(browser: webdriver.Chrome, idp: provider.Provider,
                             person: provider.Person) -> None:
    """On the provider's authorization page, pick ``person`` (its button per known subject)."""
    chrome.wait_until(lambda: browser.current_url.startswith(f"{idp.issuer}/oauth2/authorize"),
                      "the provider's authorization page")
    button = chrome.wait_until(
        lambda: next(iter(chrome.find(browser, f"button[name=sub][value={person.sub}]")), None),
        f"the provider's button for {person.sub}")
    button.click()


def _signed_in_as(browser: webdriver.Chrome, stack: Stack) -> str:
    return chrome.wait_until(
        lambda: browser.current_url.startswith(stack.url)
        and browser.find_element(By.ID, "signed-in").text,
        "the dashboard to say who is signed in")


def _sync_button(browser: webdriver.Chrome) -> WebElement:
    buttons = [b for b in chrome.find(browser, "button[data-action]")
               if b.get_attribute("data-action").endswith(f"/apps{PORTAL}/sync")]
    assert buttons, f"no sync button on {browser.current_url}"
    return buttons[0]


def _click_and_read(button: WebElement) -> str:
    result = button.find_element(By.XPATH, "following-sibling::*[1]")
    button.click()
    return chrome.wait_until(
        lambda: result.text if result.text and result.text != "sending..." else None,
        "the page to show the answer to the action", timeout=60)


def test_a_viewer_reads_but_may_not_sync_and_an_operator_syncs_named_in_the_records(
        signed_on_stack: Stack, idp: provider.Provider, browser: webdriver.Chrome) -> None:
    stack = signed_on_stack
    stack.wait_for_states({PORTAL: "in sync", CATALOG: "in sync"})

    # A stranger is sent to sign on, and comes back to the page asked for.
    browser.get(f"{stack.url}/apps{PORTAL}")
    _sign_in_at_the_provider(browser, idp, provider.VIEWER)
    assert _signed_in_as(browser, stack) == "vera.viewer@example.org (viewer)"
    assert browser.current_url == f"{stack.url}/apps{PORTAL}"
    assert PORTAL in chrome.text_of(browser) and "in sync" in chrome.text_of(browser)

    answer = _click_and_read(_sync_button(browser))
    assert answer.startswith("refused (403)"), answer
    assert "needs operator" in answer

    # Signing out ends the provider's session too; the next visit signs on again.
    browser.find_element(By.CSS_SELECTOR, "#sign-out button").click()
    chrome.wait_until(lambda: browser.current_url.startswith(f"{idp.issuer}/oauth2/end_session"),
                      "the provider's end-session page")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _sign_in_at_the_provider(browser, idp, provider.OPERATOR)
    assert _signed_in_as(browser, stack) == "oscar.oncall@example.org (operator)"

    # Someone scales the portal behind Git's back (its drift is only reported): the operator
    # syncs it back.
    stack.scale_in_marathon(PORTAL, 2)
    stack.wait_for_states({PORTAL: "drifted"})
    # A page of another site makes the signed-in browser POST a sync: the cookie goes along
    # (127.0.0.1 on another port is the same site to the browser), the CSRF token cannot.
    with _other_site(f"{stack.url}/api/v1/apps{PORTAL}/sync") as evil:
        browser.get(evil)
        browser.find_element(By.CSS_SELECTOR, "button").click()
        chrome.wait_until(lambda: "CSRF" in chrome.text_of(browser),
                          "our server's answer to the forged form")
    assert stack.live_instances(PORTAL) == 2
    assert any(e["who"] == "oscar.oncall@example.org" and "CSRF" in (e["result"] or "")
               for e in stack.api("/audit")["audit"])

    browser.get(f"{stack.url}/apps{PORTAL}")
    answer = _click_and_read(_sync_button(browser))
    assert answer.startswith("done"), answer
    chrome.wait_until(lambda: stack.live_instances(PORTAL) == 1,
                      "the operator's sync to put the portal back to 1 instance", timeout=90)

    audit = stack.api("/audit")["audit"]
    syncs = [(e["who"], e["target"]) for e in audit if e["action"] == "sync"]
    assert ("oscar.oncall@example.org", PORTAL) in syncs, audit
    assert not any(who.startswith("vera") for who, _ in syncs)
    refused = [e for e in audit if e["who"] == "vera.viewer@example.org"]
    assert refused and "needs operator" in refused[0]["result"], audit

    # The sync run the operator asked for names him, on the history page.
    def run_by_oscar() -> bool:
        browser.get(f"{stack.url}/history")
        runs = browser.find_element(By.XPATH, "//h2[.='Sync runs']/following-sibling::table[1]")
        return "oscar.oncall@example.org" in runs.text
    chrome.wait_until(run_by_oscar, "a sync run requested by the operator", timeout=60)
