"""``GET /api/v1/history`` a page at a time: after ten releases of 10,000 apps it held
100,000 changes, all in one answer. It now gives the newest ``limit`` entries in time order
and a cursor for the ones before; entries at the same time (a run and its changes) are
neither lost nor repeated at a page's edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from reconciler.shell import records, statusboard
from reconciler.web import api, context
from tests.web import server

SHA = "3f2a9c0d1b7e4f60a8c5d2e1f0b9a8c7d6e5f4a3"


def test_history_pages_put_together_are_the_whole_history(tmp_path: Path) -> None:
    now = [1_790_000_000.0]
    store = records.RecordStore(f"sqlite:///{tmp_path / 'records.db'}", clock=lambda: now[0])
    for n in range(4):  # every entry of a round at the same time
        run = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
        for app_id in ("/dirac/fts", "/dirac/web", "/dirac/portal"):
            change = store.record_deployment(
                run_id=run, app_id=app_id, action="update", revision=SHA,
                deployment_id=f"d-{n}", version="v", previous_version=None, purpose="change",
                patch=[], deadline_seconds=60.0)
            store.finish_change(change, outcome="succeeded", reason=None)
        store.record_rollback(run_id=run, app_id="/dirac/fts", from_version="v2",
                              to_version="v1", reason="health", failure=None, stuck_step=None,
                              method="cancel", outcome="succeeded", requested_by=None)
        store.finish_run(run, outcome="failed", error=None, summary=None)
        now[0] += 0.5
    board = statusboard.StatusBoard(store=store, live_apps=list, generation=lambda: 0)
    deps = context.Deps(records=store, live_apps=list, request_sync=lambda *a: None,
                        rollback=lambda *a: None, token=None, board=board)
    pages: list[list[dict[str, Any]]] = []
    try:
        with server.serving(server.oncall_app(deps)) as url:
            whole = requests.get(f"{url}/api/v1/history", timeout=10).json()
            cursor: str | None = ""
            while cursor is not None:
                answer = requests.get(f"{url}/api/v1/history", timeout=10, params={
                    "limit": 3, "cursor": cursor or None}).json()
                pages.insert(0, answer["history"])
                cursor = answer["next_cursor"]
            refused = [requests.get(f"{url}/api/v1/history", params=params, timeout=10)
                       for params in ({"cursor": "yesterday"}, {"cursor": "nan:1:2"},
                                      {"cursor": "1:2"}, {"cursor": "9" * 81},
                                      {"cursor": f"1.0:1:{2**63}"}, {"cursor": "1.0:-1:2"},
                                      {"limit": api.HISTORY_PAGE_MAX + 1})]
    finally:
        store.close()

    assert len(whole["history"]) == 4 * 5 and whole["next_cursor"] is None
    assert [len(p) for p in pages] == [2, 3, 3, 3, 3, 3, 3]
    assert [e for p in pages for e in p] == whole["history"]
    assert [r.status_code for r in refused] == [422] * 7
