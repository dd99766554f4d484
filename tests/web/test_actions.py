"""Actions on a record store filled through its own API: retry lifts a quarantine, rollback is
handed to the controller, and with no token configured every action is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from reconciler.shell import records
from reconciler.web import context
from tests.web import server, test_report

TOKEN = "another-oncall-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Reconciler-User": "carol"}


class Controller:
    """What the controller does when asked: here, it remembers who asked for what."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, str]] = []

    def request_sync(self, app_id: str | None, who: str) -> str:
        self.calls.append(("sync", app_id, who))
        return "sync queued"

    def rollback(self, app_id: str, who: str) -> str:
        self.calls.append(("rollback", app_id, who))
        return f"{app_id} rolled back to its previous version"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[records.RecordStore]:
    filled = test_report.store_with_drift(tmp_path)
    filled.quarantine(app_id="/dirac/fts", revision="a" * 40, reason="deadline missed")
    filled.record_rollback(run_id=1, app_id="/dirac/fts", from_version="2026-11-25T03:10:00Z",
                           to_version="2026-11-25T03:00:00Z", reason="deadline missed",
                           failure="health check failed: connection refused", stuck_step="2/2",
                           method="revert", outcome="succeeded", requested_by=None)
    yield filled
    filled.close()


def _site(store: records.RecordStore, controller: Controller, token: str | None) -> Any:
    deps = context.Deps(records=store, live_apps=list, request_sync=controller.request_sync,
                      rollback=controller.rollback, token=token)
    return server.serving(server.oncall_app(deps))


def test_retry_lifts_the_quarantine_then_syncs_the_app(store: records.RecordStore) -> None:
    controller = Controller()
    with _site(store, controller, TOKEN) as url:
        assert [q.app_id for q in store.active_quarantines()] == ["/dirac/fts"]
        refused = requests.post(f"{url}/api/v1/apps/dirac/fts/retry", timeout=10)
        assert refused.status_code == 401 and store.active_quarantines()
        done = requests.post(f"{url}/api/v1/apps/dirac/fts/retry", headers=AUTH, timeout=10)
    assert done.status_code == 200, done.text
    assert done.json()["lifted"] == 1 and store.active_quarantines() == []
    assert controller.calls == [("sync", "/dirac/fts", "carol@127.0.0.1")]
    entry = store.audit_log()[0]
    assert (entry.who, entry.action, entry.target) == ("carol@127.0.0.1", "retry", "/dirac/fts")


def test_rollback_and_sync_all_are_handed_to_the_controller_and_audited(
        store: records.RecordStore) -> None:
    controller = Controller()
    with _site(store, controller, TOKEN) as url:
        rolled = requests.post(f"{url}/api/v1/apps/dirac/web/portal/rollback", headers=AUTH,
                               timeout=10)
        synced = requests.post(f"{url}/api/v1/sync", headers=AUTH, timeout=10)
    assert rolled.status_code == 200 and synced.status_code == 200
    assert controller.calls == [("rollback", "/dirac/web/portal", "carol@127.0.0.1"),
                                ("sync", None, "carol@127.0.0.1")]
    actions = [(e.action, e.target, e.result) for e in store.audit_log()[:2]]
    assert actions == [("sync", "all apps", "sync queued"),
                       ("rollback", "/dirac/web/portal",
                        "/dirac/web/portal rolled back to its previous version")]


def test_without_a_configured_token_every_action_is_refused(store: records.RecordStore) -> None:
    controller = Controller()
    with _site(store, controller, None) as url:
        answers = [requests.post(f"{url}{path}", headers={"Authorization": "Bearer "},
                                 timeout=10)
                   for path in ("/api/v1/sync", "/api/v1/apps/dirac/fts/retry",
                                "/api/v1/drift/1/acknowledge")]
        page = requests.get(f"{url}/drift", timeout=10)
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert "no API token configured" in answers[0].json()["detail"]
    assert controller.calls == [] and store.active_quarantines()
    assert page.status_code == 200, "reading needs no token"


def test_drift_page_filters_by_group_prefix_and_time(store: records.RecordStore) -> None:
    with _site(store, Controller(), TOKEN) as url:
        portal = requests.get(f"{url}/drift", params={"prefix": "/dirac/web"}, timeout=10).text
        everything = requests.get(f"{url}/drift", params={"since": "1h"}, timeout=10).text
        future = requests.get(f"{url}/drift", params={"since": "2999-01-01T00:00:00"},
                              timeout=10).text
        wrong = requests.get(f"{url}/drift", params={"since": "soon"}, timeout=10).text
    assert "/dirac/web/portal" in portal and "/dirac/fts" not in portal
    assert "/dirac/web/portal" in everything and "/dirac/fts" in everything
    assert "No drift matches." in future
    assert "give 30m, 24h, 7d" in wrong


def test_app_page_shows_rollbacks_quarantine_and_history_of_every_kind(
        store: records.RecordStore) -> None:
    with _site(store, Controller(), TOKEN) as url:
        page = requests.get(f"{url}/apps/dirac/fts", timeout=10)
        detail = requests.get(f"{url}/api/v1/apps/dirac/fts", timeout=10).json()
    assert page.status_code == 200, page.text[:2000]
    text = page.text
    assert 'class="state s-quarantined">quarantined<' in text
    assert "Lift quarantine and retry" in text
    assert "health check failed: connection refused" in text and "stuck at 2/2" in text
    assert "rollback (revert)" in text and "create" in text
    assert {e["kind"] for e in detail["history"]} == {"change", "rollback", "quarantine"}
    assert detail["state"] == "quarantined" and detail["rollbacks"][0]["method"] == "revert"


def test_apps_page_filters_by_group_and_state_and_links_each_state_to_the_runbook(
        store: records.RecordStore) -> None:
    with _site(store, Controller(), TOKEN) as url:
        everything = requests.get(f"{url}/", timeout=10).text
        fts_group = requests.get(f"{url}/", params={"group": "dirac/fts"}, timeout=10).text
        quarantined = requests.get(f"{url}/", params={"state": "quarantined"}, timeout=10).text
        nothing = requests.get(f"{url}/", params={"state": "in sync"}, timeout=10).text
        runbook = requests.get(f"{url}/runbook", timeout=10).text
    assert "/dirac/fts" in everything and "/dirac/web/portal" in everything
    assert "/dirac/fts" in fts_group and "/dirac/web/portal" not in fts_group
    assert "/dirac/fts" in quarantined and "/dirac/web/portal" not in quarantined
    assert "No app matches." in nothing
    # The state badge says what to do: it links to that state's runbook section, which exists.
    assert 'href="/runbook#quarantined"' in everything
    for word in ("quarantined", "degraded", "blocked", "unknown", "progressing", "drifted",
                 "out-of-sync", "in-sync"):
        assert f'id="{word}"' in runbook
    # Since when, with the exact time on hover, and the revision that caused it.
    assert '<time datetime="' in everything
    assert "a" * 12 in everything
