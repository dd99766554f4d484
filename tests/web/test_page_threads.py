"""No page answers through anyio's worker threads: while a release keeps a dozen threads
busy, each step of that hop waits for the interpreter's lock, and a page that does almost
nothing answered in up to 0.75 s (``bench/page_hop.py``). ``/healthz`` answers on the
server's loop; the other pages and the read check through ``web/offload.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
import fastapi
import pytest
import requests

from reconciler.shell import records, statusboard
from reconciler.web import api, auth, context, dashboard, ops
from reconciler.web import app as web_app
from tests.web import server

SHA = "3f2a9c0d1b7e4f60a8c5d2e1f0b9a8c7d6e5f4a3"
APP = {"id": "/dirac/fts", "version": "2026-11-30T00:00:00.000Z", "instances": 1,
       "tasks": [], "deployments": [],
       "container": {"type": "DOCKER", "docker": {"image": "lhcbdirac:v8r2p44"}}}
PAGES = ["/healthz", "/readyz", "/metrics", "/", "/apps/dirac/fts", "/drift",
         "/drift/report.html", "/history", "/releases", "/runbook", "/api/v1/apps",
         "/api/v1/apps/dirac/fts", "/api/v1/drift", "/api/v1/history", "/api/v1/revisions",
         "/api/v1/releases", f"/api/v1/releases/{SHA}/apps", "/api/v1/audit",
         "/api/v1/openapi.json"]


@pytest.mark.parametrize("anonymous_read", [True, False])
def test_no_page_answers_through_anyio_s_worker_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, anonymous_read: bool) -> None:
    store = records.open_store(tmp_path)
    store.record_revision(revision=SHA,
                          definitions={APP["id"]: {"id": APP["id"], "instances": 1}})
    store.open_release(revision=SHA, trigger="poll", requested_by=None, run_id=None, images={},
                       apps=[(APP["id"], "update")])
    board = statusboard.StatusBoard(store=store, live_apps=lambda: [APP], generation=lambda: 0)
    policy = auth.Access(api_token="s3cret-token", anonymous_read=anonymous_read)
    deps = context.Deps(records=store, live_apps=lambda: [APP], request_sync=lambda *a: None,
                        rollback=lambda *a: None, token="s3cret-token", access=policy,
                        board=board)
    app = fastapi.FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(ops.ops_router(ready=lambda: [], before_scrape=board.snapshot))
    reads = [fastapi.Depends(policy.reader(pages=False))]
    app.include_router(api.api_router(deps), dependencies=reads)
    app.include_router(dashboard.dashboard_router(deps),
                       dependencies=[fastapi.Depends(policy.reader(pages=True))])
    hops: list[Any] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    try:
        with server.serving(web_app.harden(app)) as url:
            answers = {page: requests.get(url + page, timeout=10,
                                          headers={"Authorization": "Bearer s3cret-token"})
                       for page in PAGES}
            stranger = requests.get(f"{url}/api/v1/apps", timeout=10)
    finally:
        store.close()

    assert {page: a.status_code for page, a in answers.items()} == dict.fromkeys(PAGES, 200)
    assert "/dirac/fts" in answers["/"].text
    assert answers["/api/v1/apps/dirac/fts"].json()["app_id"] == "/dirac/fts"
    assert stranger.status_code == (200 if anonymous_read else 401)
    assert hops == [], f"{len(hops)} answers went through anyio's worker threads"
