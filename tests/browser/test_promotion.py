"""Promotion from the dashboard, in headless Chromium: the Promotions page of production says
what holds the promotion back (which certification app, healthy since when), the Promote
button is refused before the soak and accepted after (the promoter's clock is moved, not
waited for), and the record links both releases. Both environments on one dev cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import git
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from reconciler.devcluster import launch
from reconciler.shell import environments
from reconciler.shell.ports import free_port
from reconciler.web import app as web
from reconciler.web import environments as web_environments
from testbed.gitrepos import Upstream
from tests.browser import chrome
from tests.environments import stack
from tests.support import polling

TOKEN = "dashboard-token-77aa"


@pytest.fixture
def served(tmp_path: Path, devcluster: launch.RunningCluster
           ) -> Iterator[tuple[str, environments.Fleet, stack.Clock, Upstream]]:
    upstream = Upstream.create(tmp_path / "git", stack.repo_files(cert_tag="v8r2p44",
                                                                  prod_tag="v8r2p44"))
    clock = stack.Clock()
    fleet = stack.fleet_for(tmp_path, devcluster, upstream, clock=clock,
                            extra={"RECONCILER_API_TOKEN": TOKEN})
    port = free_port()
    server = web.Server(web_environments.create_fleet_app(fleet), host="127.0.0.1", port=port)
    server.start()
    fleet.start()
    try:
        yield f"http://127.0.0.1:{port}", fleet, clock, upstream
    finally:
        fleet.stop()
        server.stop()
        fleet.close()


def click_promote(browser: webdriver.Chrome) -> str:
    button = chrome.wait_until(lambda: browser.find_element(
        By.XPATH, "//button[starts-with(., 'Promote dirac')]"), "the Promote button")
    result = button.find_element(By.XPATH, "following-sibling::*[1]")
    button.click()
    return chrome.wait_until(
        lambda: result.text if result.text and result.text != "sending..." else None,
        "the answer to the promotion", timeout=60)


def test_promotion_from_the_dashboard_is_refused_before_the_soak_and_accepted_after(
    served: tuple[str, environments.Fleet, stack.Clock, Upstream],
    devcluster: launch.RunningCluster, browser: webdriver.Chrome,
) -> None:
    url, fleet, clock, upstream = served
    upstream.commit({"cert/images.yaml": stack.images("v8r2p45")},
                    message="certification: lhcbdirac v8r2p45")
    for app_id in stack.CERT_APPS:
        polling.eventually(f"{app_id} healthy on v8r2p45",
                           lambda a=app_id: stack.running_tag(devcluster.url, a) == "v8r2p45")

    browser.get(f"{url}/")
    assert "from cert" in chrome.text_of(browser)
    browser.get(f"{url}/environments/prod/promotions")
    page = chrome.text_of(browser)
    assert "Promotions from cert to prod" in page and "soak of 1h not over" in page
    for app_id in stack.CERT_APPS:
        assert f"{app_id}: healthy since" in page
    field = browser.find_element(By.ID, "token")
    field.clear()
    field.send_keys(TOKEN)

    answer = click_promote(browser)
    assert answer.startswith("refused (409)") and "healthy since" in answer, answer
    assert fleet.members["prod"].controller.records.promotions() == []

    clock.ahead = stack.HOUR + 5
    browser.refresh()
    answer = click_promote(browser)
    assert answer.startswith("done:") and "pushed" in answer, answer
    commit = git.Repo(upstream.bare).commit("main").hexsha

    def linked() -> bool:
        browser.refresh()
        rows = browser.find_elements(By.XPATH, "//h2[.='Promotions recorded']/following::tr")
        return any(commit[:12] in r.text and r.text.count(commit[:12]) == 2 for r in rows)

    chrome.wait_until(linked, "the promotion linked to production's release", timeout=90)
    polling.eventually("production on the promoted tag", lambda: stack.running_tag(
        devcluster.url, stack.PROD_APPS[0]) == "v8r2p45")
