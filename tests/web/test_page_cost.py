"""A page reads what the status board made once per snapshot: the dashboard no longer sorts
and counts every app per request, nor does an app's page look for its row among all of them
(at 10,000 apps during a release, each millisecond of a page's own work costs it a wait for
the interpreter's lock)."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest
import requests

from reconciler.core import status
from reconciler.shell import records, statusboard
from reconciler.web import context
from tests.web import server

APPS = [{"id": f"/dirac/site{n}/fts", "version": "2026-11-30T00:00:00.000Z", "instances": 1,
         "tasks": [], "deployments": [],
         "container": {"type": "DOCKER", "docker": {"image": "lhcbdirac:v8r2p44"}}}
        for n in range(3)]


def test_pages_sort_count_and_find_no_row_of_their_own(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = records.open_store(tmp_path)
    store.record_revision(revision="3f2a9c0d1b7e4f60a8c5d2e1f0b9a8c7d6e5f4a3",
                          definitions={a["id"]: {"id": a["id"], "instances": 1} for a in APPS})
    board = statusboard.StatusBoard(store=store, live_apps=lambda: APPS, generation=lambda: 0)
    snapshot = board.snapshot()  # made once, as the board's thread makes each
    # From now on, a page going through every row (to count them, or to find its own) counts.
    rows_read: list[int] = []

    class Rows(tuple):  # type: ignore[type-arg]
        def __iter__(self) -> Any:
            rows_read.append(len(self))
            return super().__iter__()

    object.__setattr__(snapshot, "rows", Rows(snapshot.rows))
    deps = context.Deps(records=store, live_apps=lambda: APPS, request_sync=lambda *a: None,
                        rollback=lambda *a: None, token=None, board=board)
    sorted_by_pages: list[int] = []
    by_urgency = status.by_urgency

    def counted(rows: Any) -> list[status.AppStatus]:
        sorted_by_pages.append(len(rows))
        return by_urgency(rows)

    monkeypatch.setattr(status, "by_urgency", counted)
    try:
        with server.serving(server.oncall_app(deps)) as url:
            pages = [requests.get(f"{url}/", timeout=10) for _ in range(3)]
            one = requests.get(f"{url}/api/v1/apps/dirac/site1/fts", timeout=10)
            listed = requests.get(f"{url}/api/v1/apps", params={"limit": 1,
                                                                "cursor": "/dirac/site0/fts"},
                                  timeout=10)
    finally:
        store.close()

    assert [p.status_code for p in pages] == [200, 200, 200]
    assert sorted_by_pages == [], "a page sorted every app again"
    assert rows_read == [], "a page went through every row"
    assert all("/dirac/site2/fts" in p.text for p in pages)
    assert one.status_code == 200 and one.json()["app_id"] == "/dirac/site1/fts"
    assert [a["app_id"] for a in listed.json()["apps"]] == ["/dirac/site1/fts"]
    assert sum(snapshot.state_counts.values()) == 3
    assert snapshot.state_counts == collections.Counter(row.state for row in snapshot.rows)
    assert list(snapshot.by_id) == list(snapshot.app_ids) == [a["id"] for a in APPS]
