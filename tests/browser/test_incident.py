"""An incident, walked as on-call lives it, with every view checked at every step.

A real ``reconciler run`` on a dev cluster and a Git config repo: a release; a broken release
of the configuration server (rolled back and quarantined; the portal, which depends on it,
held back); a hand scale of the portal during the quarantine; the fix-forward by ``git
revert``; a manual rollback that fails. At each step the dashboard (headless Chromium), the
API, ``reconciler status --output json`` and its exit code, ``reconciler history`` and the
chat notifications must agree on the state, since when, and who caused it. Screenshots of
each step go to ``$RECONCILER_SCREENSHOTS`` when set (``docs/screenshots/`` is made so).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser.stack import Stack
from tests.support import polling, webhooks
from tests.sync import cluster

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SERVER = "/dirac/configuration/server"
PORTAL = "/dirac/web/portal"
SETTINGS = {"managedPrefixes": ["/dirac"], "driftPolicy": {"/dirac": "correct"},
            "deadlines": {"/dirac": 12}}


def _apps() -> list[dict[str, Any]]:
    return [cluster.fast_app(SERVER, grace=2),
            cluster.fast_app(PORTAL, grace=2, dependencies=[SERVER])]


@pytest.fixture
def incident(tmp_path: Path, receiver: webhooks.Receiver) -> Iterator[Stack]:
    running = Stack.start(tmp_path / "stack", desired=_apps(), settings=SETTINGS,
                          extra_env={"RECONCILER_NOTIFY_WEBHOOK_URL": receiver.url,
                                     "RECONCILER_DRIFT_INTERVAL": "2"})
    try:
        yield running
    finally:
        running.stop()


class Views:
    """Everything on-call can read, read the same way at every step."""

    def __init__(self, stack: Stack, browser: webdriver.Chrome, receiver: webhooks.Receiver
                 ) -> None:
        self.stack = stack
        self.browser = browser
        self.receiver = receiver
        self.shots = os.environ.get("RECONCILER_SCREENSHOTS")

    def api_apps(self) -> dict[str, dict[str, Any]]:
        return {a["app_id"]: a for a in self.stack.api("/apps")["apps"]}

    def status(self) -> tuple[int, dict[str, dict[str, Any]]]:
        result = subprocess.run(
            [sys.executable, "-m", "reconciler", "status", "--marathon", self.stack.marathon,
             "--state-dir", str(self.stack.root / "state"), "--output", "json"],
            capture_output=True, text=True, timeout=60, env=_plain_env())
        return result.returncode, {a["app_id"]: a for a in json.loads(result.stdout)}

    def history(self, *args: str) -> list[dict[str, Any]]:
        return cluster.history(self.stack.root / "state", *args)

    def dashboard_row(self, app_id: str) -> str:
        self.browser.get(self.stack.url + "/")
        for row in self.browser.find_elements(By.CSS_SELECTOR, "table tr"):
            if any(link.text == app_id for link in row.find_elements(By.CSS_SELECTOR, "a")):
                return row.text
        raise AssertionError(f"no dashboard row for {app_id}")

    def release(self, revision: str) -> dict[str, Any]:
        found = [r for r in self.stack.api("/releases")["releases"] if r["revision"] == revision]
        assert found, f"no release recorded for {revision}"
        return found[0]

    def notices(self) -> list[str]:
        return self.receiver.texts()

    def screenshot(self, name: str) -> None:
        if self.shots:
            Path(self.shots).mkdir(parents=True, exist_ok=True)
            self.browser.get(self.stack.url + "/")
            self.browser.save_screenshot(str(Path(self.shots) / f"incident-{name}.png"))

    def agree(self, app_id: str, *, state: str, author: str | None) -> dict[str, Any]:
        """The API, ``status`` and the dashboard say the same about ``app_id``: at once, or
        within a few seconds. The API and pages read the controller's status board, which
        follows the records within a second or so, while ``reconciler status`` computes its
        own; right after a change they may differ by that second, never for longer."""
        deadline = time.monotonic() + 10
        while True:
            try:
                return self._agree_now(app_id, state=state, author=author)
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _agree_now(self, app_id: str, *, state: str, author: str | None) -> dict[str, Any]:
        api = self.api_apps()[app_id]
        code, by_status = self.status()
        shown = by_status[app_id]
        assert api["state"] == shown["state"] == state, (api, shown)
        assert api["since"] and shown["since"] == api["since"], (api, shown)
        if author is not None:
            assert api["cause"] and author in (api["cause"]["author"] or ""), api
        row = self.dashboard_row(app_id)
        assert state in row, row
        if author is not None:
            assert author.split()[0] in row, row
        return {"api": api, "code": code, "row": row}


def _plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}


def test_an_incident_reads_the_same_everywhere_at_every_step(
        incident: Stack, browser: webdriver.Chrome, receiver: webhooks.Receiver) -> None:
    views = Views(incident, browser, receiver)
    incident.wait_for_states({SERVER: "in sync", PORTAL: "in sync"})

    # 1. A release by Bob: every app rolls, in sync, caused by Bob's commit.
    cluster.set_tag(incident.repo, "v8r2p45")
    incident.commit("Release v8r2p45", author="Bob Release", email="bob@example.org")
    polling.eventually("the release to be live", lambda: all(
        cluster.image_of(a) == "lhcbdirac:v8r2p45" for a in cluster.apps(incident.marathon)
        .values()) and incident.app_states() == {SERVER: "in sync", PORTAL: "in sync"},
        timeout=120, interval=0.5)
    for app_id in (SERVER, PORTAL):
        seen = views.agree(app_id, state="in sync", author="Bob Release")
    assert seen["code"] == 0
    views.screenshot("1-release")

    # 2. A broken release by Carol: the server is rolled back and quarantined, the portal
    # held back behind it; status says so with its exit code, and chat is told once.
    cluster.set_tag(incident.repo, "v8r2p46-broken")
    broken = incident.commit("Release v8r2p46", author="Carol Tester",
                             email="carol@example.org")
    incident.wait_for_states({SERVER: "quarantined", PORTAL: "blocked"}, timeout=180)
    server = views.agree(SERVER, state="quarantined", author="Carol Tester")
    assert server["code"] == 4
    assert any(c["type"] == "Quarantined" and broken[:12] in c["message"]
               for c in server["api"]["conditions"])
    views.agree(PORTAL, state="blocked", author="Carol Tester")
    assert cluster.image_of(cluster.apps(incident.marathon)[SERVER]) == "lhcbdirac:v8r2p45"
    release = views.release(broken)
    assert release["author"].startswith("Carol Tester") and "rolled back" in release["outcome"]
    assert {(c["old"], c["new"]) for c in release["imagesChanged"]} == {
        ("v8r2p45", "v8r2p46-broken")}
    polling.eventually("chat to hear of the rollback", lambda: any(
        "rollback" in n and "Carol Tester" in n for n in views.notices()), timeout=30, interval=0.5)
    views.screenshot("2-quarantined")

    # 3. Someone scales the portal by hand during the quarantine. A scale-back needs nothing
    # of the quarantined server, so the drift is corrected all the same, and recorded so.
    incident.scale_in_marathon(PORTAL, 3)
    polling.eventually("the portal's drift to be corrected", lambda: any(
        d["app_id"] == PORTAL and (d["action"] or "").startswith("corrected")
        for d in incident.api("/drift")["drift"]), timeout=60, interval=0.5)
    polling.eventually("the portal back at 1 instance",
                       lambda: incident.live_instances(PORTAL) == 1, timeout=120, interval=0.5)
    views.agree(PORTAL, state="blocked", author="Carol Tester")
    polling.eventually("chat to hear of the drift", lambda: any(
        "drift" in n and PORTAL in n for n in views.notices()), timeout=30, interval=0.5)
    views.screenshot("3-drift-during-quarantine")

    # 4. The fix-forward by Dave: git revert. The quarantine speaks no more: in sync, caused
    # by Dave's revert, exit code 0.
    repository = git.Repo(incident.repo)
    actor = git.Actor("Dave Oncall", "dave@example.org")
    with repository.config_writer() as config:
        config.set_value("user", "name", actor.name)
        config.set_value("user", "email", actor.email)
    repository.git.revert(broken, no_edit=True)
    incident.wait_for_states({SERVER: "in sync", PORTAL: "in sync"}, timeout=180)
    for app_id in (SERVER, PORTAL):
        fixed = views.agree(app_id, state="in sync", author="Dave Oncall")
        assert not fixed["api"]["conditions"], fixed["api"]
    assert fixed["code"] == 0
    # The broken release stays rolled back: later runs never rewrite its outcome.
    assert "rolled back" in views.release(broken)["outcome"]
    views.screenshot("4-fixed-forward")

    # 5. A manual rollback to the broken revision fails, and is recorded as failing (it was
    # recorded as "succeeded"), with who asked; the server stays on the good release. Whether
    # its own undo is a clean revert (3) or meets the controller's drift correction of the
    # same app (2), it is never a success.
    back = subprocess.run(
        [sys.executable, "-m", "reconciler", "rollback", SERVER, "--to", broken[:12], "--yes",
         "--timeout", "8", "--marathon", incident.marathon,
         "--state-dir", str(incident.root / "state")],
        capture_output=True, text=True, timeout=180, env={**_plain_env(), "USER": "erin"})
    assert back.returncode in (2, 3), back.stdout + back.stderr
    runs = [e for e in views.history(SERVER) if e["kind"] == "run"] or [
        e for e in views.history() if e["kind"] == "run"]
    manual = [r for r in runs if r["trigger"] == "rollback"]
    assert manual and manual[0]["outcome"] == {2: "failed", 3: "rolled back"}[back.returncode]
    assert manual[0]["requested_by"] == "erin"
    assert cluster.image_of(cluster.apps(incident.marathon)[SERVER]) == "lhcbdirac:v8r2p45"
    incident.wait_for_states({SERVER: "in sync", PORTAL: "in sync"}, timeout=60)
    views.screenshot("5-failed-manual-rollback")
