"""The Releases page and ``GET /api/v1/releases`` at the size of the collaboration's
releases: every app of every release was a row of them (20,000 rows for two releases of
10,000 apps). They now show the last releases, each with its apps counted per outcome and
at most a hundred of them listed, those needing attention first; every app of one release
comes a page at a time from ``GET /api/v1/releases/{revision}/apps``."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from reconciler.shell import readmodel, records, statusboard
from reconciler.web import context
from tests.web import server

SHA = "3f2a9c0d1b7e4f60a8c5d2e1f0b9a8c7d6e5f4a3"


def test_a_release_of_many_apps_shows_their_counts_and_those_needing_attention_first(
        tmp_path: Path) -> None:
    store = records.open_store(tmp_path)
    apps = [f"/dirac/site{n:03}/fts" for n in range(250)]
    store.record_revision(revision=SHA, definitions={a: {"id": a} for a in apps})
    store.open_release(revision=SHA, trigger="poll", requested_by=None, run_id=None,
                       images={}, apps=[(a, "update") for a in apps])
    failed, rolled_back, under_way = apps[200], apps[150], apps[240:]
    for app_id in apps[:240]:
        outcome = ("failed" if app_id == failed else
                   "rolled back" if app_id == rolled_back else "succeeded")
        store.finish_release_app(revision=SHA, app_id=app_id, action="update",
                                 outcome=outcome, reason="health checks failed"
                                 if outcome != "succeeded" else None, run_id=None)
    board = statusboard.StatusBoard(store=store, live_apps=list, generation=lambda: 0)
    deps = context.Deps(records=store, live_apps=list, request_sync=lambda *a: None,
                        rollback=lambda *a: None, token=None, board=board)
    try:
        with server.serving(server.oncall_app(deps)) as url:
            page = requests.get(f"{url}/releases", timeout=10)
            listed = requests.get(f"{url}/api/v1/releases", timeout=10).json()["releases"]
            pages, cursor = [], ""
            while cursor is not None:
                answer = requests.get(f"{url}/api/v1/releases/{SHA}/apps",
                                      params={"limit": 100, "cursor": cursor or None},
                                      timeout=10).json()
                pages.append(answer["apps"])
                cursor = answer["next_cursor"]
            unknown = requests.get(f"{url}/api/v1/releases/{'0' * 40}/apps", timeout=10)
    finally:
        store.close()

    assert page.status_code == 200
    shown = re.findall(r'<tr><td class="mono"><a href="/apps(/dirac/site\d+/fts)">', page.text)
    assert len(shown) == readmodel.RELEASE_APPS_SHOWN
    assert shown[:2 + len(under_way)] == [failed, rolled_back, *under_way]
    assert "250 apps: 238 succeeded, 10 in progress, 1 failed, 1 rolled back." in page.text
    assert f"{readmodel.RELEASE_APPS_SHOWN} of 250 apps shown" in page.text
    assert f"GET /api/v1/releases/{SHA}/apps" in page.text
    # The outcome is the release's, all its apps counted, in the page and in the API.
    assert "in progress" in page.text.split("</h2>")[0]
    [release] = listed
    assert release["outcome"] == "in progress"
    assert release["appTotal"] == 250
    assert release["appCounts"] == {"succeeded": 238, "in progress": 10, "failed": 1,
                                    "rolled back": 1}
    assert [a["app"] for a in release["apps"]] == shown
    # Every app, by app id, a page at a time.
    assert [len(p) for p in pages] == [100, 100, 50]
    assert [a["app"] for p in pages for a in p] == sorted(apps)
    assert pages[0][0] == {"app": apps[0], "action": "update", "outcome": "succeeded",
                           "reason": None, "runId": None, "at": pages[0][0]["at"],
                           "startedAt": pages[0][0]["startedAt"]}
    assert unknown.status_code == 404
