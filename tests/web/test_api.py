"""The on-call API and dashboard on a real record store filled by a real sync on the dev cluster.

Drift is made the way it happens in production (someone scales the app through Marathon's
API) and recorded through RecordStore.observe_drift, as the controller does. Actions go to a
real uvicorn server; the sync action runs the real ``reconciler sync`` against the dev cluster.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from reconciler.devcluster import launch
from reconciler.shell import records
from reconciler.web import context
from tests.sync import cluster
from tests.web import server

TOKEN = "s3cret-oncall-token"
APP = "/dirac/web/portal"


@dataclass
class Site:
    url: str
    marathon: str
    store: records.RecordStore
    syncs: list[tuple[str | None, str]]


def _wait_instances(marathon: str, app_id: str, instances: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        app = cluster.apps(marathon)[app_id]
        if (app["instances"] == instances and not app.get("deployments")
                and cluster.healthy_tasks(app) == instances):
            return app
        if time.monotonic() > deadline:
            raise AssertionError(f"{app_id} never had {instances} healthy instances: {app}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("oncall")
    dev = launch.launch(state_dir=root / "devcluster")
    try:
        repo = cluster.write_repo(root / "repo", [cluster.fast_app(APP, grace=2)], tag="v8r2p44")
        state = root / "state"
        first = cluster.sync(dev.url, repo, state)
        assert first.returncode == 0, cluster.explain(first)
        # Someone scales the portal by hand: live drifts from Git.
        requests.put(f"{dev.url}/v2/apps{APP}", json={"instances": 2}, timeout=10,
                     params={"force": "true"}).raise_for_status()
        _wait_instances(dev.url, APP, 2)
        store = records.open_store(state)
        store.observe_drift(app_id=APP, kind="scale", fingerprint="scale-2", policy="report",
                            patch=[{"op": "replace", "path": "/instances", "value": 2}],
                            client_ip="10.9.8.7", uri=f"/v2/apps{APP}")
        syncs: list[tuple[str | None, str]] = []

        def request_sync(app_id: str | None, who: str) -> str:
            syncs.append((app_id, who))
            result = cluster.sync(dev.url, repo, state)
            return f"sync finished with exit {result.returncode}"

        def rollback(app_id: str, who: str) -> str:
            raise AssertionError("no rollback expected in these tests")

        def live_apps() -> list[dict[str, Any]]:
            return list(cluster.apps(dev.url).values())

        deps = context.Deps(records=store, live_apps=live_apps, request_sync=request_sync,
                          rollback=rollback, token=TOKEN)
        with server.serving(server.oncall_app(deps)) as url:
            yield Site(url=url, marathon=dev.url, store=store, syncs=syncs)
        store.close()
    finally:
        dev.stop()


def test_apps_show_state_revision_image_tag_and_health(site: Site) -> None:
    body = requests.get(f"{site.url}/api/v1/apps", timeout=10).json()
    (row,) = [a for a in body["apps"] if a["app_id"] == APP]
    assert row["state"] == "drifted"
    assert row["image_tag"] == "v8r2p44"
    assert row["instances"] == 2 and row["open_drifts"] == 1
    assert row["revision"] and row["revision"] == site.store.last_applied()[APP].revision


def test_drift_api_gives_the_field_diff_old_to_new_and_who(site: Site) -> None:
    drifts = requests.get(f"{site.url}/api/v1/drift", params={"prefix": "/dirac/web"},
                          timeout=10).json()["drift"]
    assert [d["app_id"] for d in drifts] == [APP]
    # One direction everywhere: live (Marathon) -> desired (Git), what a sync would do.
    assert drifts[0]["changes"] == [{"op": "replace", "path": "/instances", "live": "2",
                                     "desired": "1"}]
    assert drifts[0]["client_ip"] == "10.9.8.7"
    other = requests.get(f"{site.url}/api/v1/drift", params={"prefix": "/dirac/fts"},
                         timeout=10).json()["drift"]
    assert other == []
    bad = requests.get(f"{site.url}/api/v1/drift", params={"since": "yesterday"}, timeout=10)
    assert bad.status_code == 422 and "24h" in bad.text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {TOKEN}"}])
def test_actions_without_a_valid_token_are_refused_and_audited(
        site: Site, headers: dict[str, str]) -> None:
    before = len(site.syncs)
    response = requests.post(f"{site.url}/api/v1/apps{APP}/sync", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert len(site.syncs) == before, "a refused action must not run"
    latest = site.store.audit_log()[0]
    assert latest.result is not None and latest.result.startswith("refused")
    assert latest.who == "127.0.0.1" and latest.action.endswith(f"{APP}/sync")


def test_sync_with_token_is_carried_out_and_audited_with_who_asked(site: Site) -> None:
    response = requests.post(f"{site.url}/api/v1/apps{APP}/sync", timeout=120, headers={
        "Authorization": f"Bearer {TOKEN}", "X-Reconciler-User": "alice"})
    assert response.status_code == 200, response.text
    assert site.syncs[-1] == (APP, "alice@127.0.0.1")
    _wait_instances(site.marathon, APP, 1)  # Git says 1: the drift is undone in Marathon
    entry = site.store.audit_log()[0]
    assert (entry.who, entry.action, entry.target) == ("alice@127.0.0.1", "sync", APP)
    assert entry.result == "sync finished with exit 0"


def test_acknowledging_drift_needs_the_token_and_records_who(site: Site) -> None:
    (drift,) = site.store.drifts(app_id=APP)
    url = f"{site.url}/api/v1/drift/{drift.drift_id}/acknowledge"
    assert requests.post(url, timeout=10).status_code == 401
    assert site.store.drifts(app_id=APP)[0].acknowledged_by is None
    done = requests.post(url, timeout=10, headers={"Authorization": f"Bearer {TOKEN}",
                                                   "X-Reconciler-User": "bob"})
    assert done.status_code == 200, done.text
    assert site.store.drifts(app_id=APP)[0].acknowledged_by == "bob@127.0.0.1"
    missing = requests.post(f"{site.url}/api/v1/drift/99999/acknowledge", timeout=10,
                            headers={"Authorization": f"Bearer {TOKEN}"})
    assert missing.status_code == 404
    # An id no database holds is refused before the driver sees it (SQLite's fails on it).
    too_large = requests.post(f"{site.url}/api/v1/drift/{2**64}/acknowledge", timeout=10,
                              headers={"Authorization": f"Bearer {TOKEN}"})
    assert too_large.status_code == 422, too_large.text
    audit_page = requests.get(f"{site.url}/api/v1/audit", params={"cursor": 2**64}, timeout=10)
    assert audit_page.status_code == 422, audit_page.text


def test_text_past_what_any_record_holds_is_refused_before_any_work(site: Site) -> None:
    """A revision is at most 200 characters in the records, an app id or group 1,000 here,
    a time filter 100: longer ones are refused, not looked for."""
    refused = [
        requests.get(f"{site.url}/api/v1/releases/{'a' * 201}/apps", timeout=10),
        requests.get(f"{site.url}/api/v1/drift", params={"prefix": "/x" * 501}, timeout=10),
        requests.get(f"{site.url}/api/v1/history", params={"app_id": "/x" * 501}, timeout=10),
        requests.get(f"{site.url}/api/v1/history", params={"since": "1" * 101}, timeout=10),
        requests.get(f"{site.url}/api/v1/drift", params={"since": "1" * 101}, timeout=10)]
    accepted = requests.get(f"{site.url}/api/v1/releases/{'a' * 200}/apps", timeout=10)
    assert [r.status_code for r in refused] == [422] * 5
    assert accepted.status_code == 404  # as long as a revision can be: looked for


def test_openapi_document_lists_reads_and_actions(site: Site) -> None:
    document = requests.get(f"{site.url}/api/v1/openapi.json", timeout=10).json()
    paths = document["paths"]
    assert "get" in paths["/api/v1/apps"] and "post" in paths["/api/v1/sync"]
    assert "post" in paths["/api/v1/apps/{app_id}/rollback"]
    assert "post" in paths["/api/v1/drift/{drift_id}/acknowledge"]


def test_dashboard_pages_read_without_login_and_use_no_external_asset(site: Site) -> None:
    pages = {path: requests.get(f"{site.url}{path}", timeout=30) for path in (
        "/", f"/apps{APP}", "/drift?prefix=/dirac&since=24h", "/drift/report.html", "/history",
        "/releases")}
    for path, response in pages.items():
        assert response.status_code == 200, (path, response.text[:500])
        assert not re.search(r"(src|href)=\"https?://", response.text), path
    assert APP in pages["/"].text and "v8r2p44" in pages["/"].text
    assert re.search(r'class="state s-[a-z-]+">(in sync|drifted|out of sync)<', pages["/"].text)
    app_page = pages[f"/apps{APP}"].text
    assert "Deployment history" in app_page and "/instances" in app_page
    assert "Authorization" in app_page and "sessionStorage" in app_page
    assert requests.get(f"{site.url}/apps/no/such/app", timeout=10).status_code == 404


def test_releases_pages_are_bounded_like_the_audit(site: Site) -> None:
    too_many = requests.get(f"{site.url}/api/v1/releases?limit=100000000", timeout=10)
    assert too_many.status_code == 422, too_many.text
    assert requests.get(f"{site.url}/api/v1/releases?limit=101", timeout=10).status_code == 422
    assert requests.get(f"{site.url}/api/v1/releases?limit=100", timeout=10).ok
    too_many_apps = requests.get(f"{site.url}/api/v1/releases/x/apps?limit=10001", timeout=10)
    assert too_many_apps.status_code == 422, too_many_apps.text


def test_releases_say_trigger_images_and_how_each_app_ended(site: Site) -> None:
    body = requests.get(f"{site.url}/api/v1/releases", timeout=10).json()
    [release] = body["releases"]
    assert (release["trigger"], release["outcome"]) == ("cli", "succeeded")
    assert release["revision"].startswith("dir:")
    assert [(a["app"], a["outcome"]) for a in release["apps"]] == [(APP, "succeeded")]
    assert release["imagesChanged"] == [{"name": "dirac", "repository": "lhcbdirac",
                                         "old": None, "new": "v8r2p44"}]
    assert release["cause"].startswith("cli")  # "cli by <operator>"
    assert release["waves"] == []  # the repo has no release waves
    page = requests.get(f"{site.url}/releases", timeout=10)
    assert page.status_code == 200
    assert release["revision"][:12] in page.text and APP in page.text
    assert "dirac</span> (lhcbdirac): <span class=\"mono\">-</span> &rarr; " \
           "<span class=\"mono\">v8r2p44</span>" in page.text, page.text
