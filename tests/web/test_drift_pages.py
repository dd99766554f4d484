"""The Drift page, its report and ``GET /api/v1/drift`` when drift piles up: someone scales
every app by hand, or months of resolved drift stay on record. The page showed every record
(a card each); it now shows the first 200, open first, counts them all, and the API gives
them a page at a time, by drift id (which never changes, unlike the time last seen)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests

from reconciler.shell import records, statusboard
from reconciler.web import api, context, dashboard
from tests.web import server


def app_id(n: int) -> str:
    return f"/dirac/g{n % 10}/fts{n:03}"


def store_with_drift(tmp_path: Path, *, apps: int, resolved: int) -> records.RecordStore:
    now = [1_790_000_000.0]
    store = records.RecordStore(f"sqlite:///{tmp_path / 'records.db'}", clock=lambda: now[0])
    for n in range(apps):
        if n % 3 == 0:
            now[0] += 1.0  # three at a time share a second: ties in the order
        store.observe_drift(app_id=app_id(n), kind="scale",
                            patch=[{"op": "replace", "path": "/instances", "value": 2}],
                            fingerprint=f"scale-{n}", policy="report")
    for n in range(resolved):
        store.resolve_drift(app_id=app_id(n), action="corrected")
    return store


def test_a_page_of_drift_shows_the_first_records_and_counts_them_all(tmp_path: Path) -> None:
    store = store_with_drift(tmp_path, apps=250, resolved=20)
    board = statusboard.StatusBoard(store=store, live_apps=list, generation=lambda: 0)
    deps = context.Deps(records=store, live_apps=list, request_sync=lambda *a: None,
                        rollback=lambda *a: None, token=None, board=board)
    pages: list[list[dict[str, Any]]] = []
    try:
        whole = store.drifts()
        with server.serving(server.oncall_app(deps)) as url:
            page = requests.get(f"{url}/drift", timeout=30).text
            narrowed = requests.get(f"{url}/drift?prefix=/dirac/g4", timeout=30).text
            report = requests.get(f"{url}/drift/report.html", timeout=30).text
            cursor: str | None = ""
            while cursor is not None:
                answer = requests.get(f"{url}/api/v1/drift", timeout=30, params={
                    "limit": 60, "cursor": cursor or None}).json()
                pages.append(answer["drift"])
                cursor = answer["next_cursor"]
            refused = [requests.get(f"{url}/api/v1/drift", params=params, timeout=10)
                       for params in ({"cursor": "open"}, {"cursor": "1.5"},
                                      {"cursor": 2**63}, {"limit": api.DRIFT_PAGE_MAX + 1})]
    finally:
        store.close()

    cards = re.findall(r"/dirac/g\d/fts\d{3}", page.split("<h2>Open drift</h2>")[1])
    assert len(set(cards)) == dashboard.DRIFTS_SHOWN
    assert "230 open, 20 resolved." in page
    assert f"{dashboard.DRIFTS_SHOWN} of 250 shown" in page
    # Open first, the newest seen first: the last app seen opens the page; none resolved.
    assert cards[0] == app_id(249) and "Resolved drift" not in page
    assert "23 open, 2 resolved." in narrowed and "shown, open first" not in narrowed
    assert "230 open, 20 resolved." in report and "of 250" not in report
    # The API's pages put together are every record, the newest recorded first.
    assert [len(p) for p in pages] == [60, 60, 60, 60, 10]
    assert [d["drift_id"] for p in pages for d in p] == sorted(
        (d.drift_id for d in whole), reverse=True)
    assert [d.status for d in whole][229:231] == ["open", "resolved"]
    assert [r.status_code for r in refused] == [422] * 4
