"""The History and Releases pages read their lists from SQLite in a few steps of its driver,
not one per row: each step gives the interpreter up, and during a release getting it back
took up to the switch interval per row (the two pages went over 200 ms in the scale bench)."""

from __future__ import annotations

from pathlib import Path

import requests

from reconciler.shell import records, statusboard
from reconciler.web import context
from tests.shell import driver_rows
from tests.web import server

SHA = "3f2a9c0d1b7e4f60a8c5d2e1f0b9a8c7d6e5f4a3"
OTHER_SHA = "9b8a7c6d5e4f30211f0e9d8c7b6a594837261504"


def test_the_history_and_releases_pages_read_a_few_rows_whatever_they_list(
        tmp_path: Path) -> None:
    store = records.open_store(tmp_path)
    apps = [f"/dirac/site{n:03}/fts" for n in range(150)]
    # 30 small releases, their apps on three outcomes: each outcome of each is a count.
    for n in range(30):
        revision = f"{n:040x}"
        store.record_revision(revision=revision, definitions={a: {"id": a} for a in apps[:3]})
        store.open_release(revision=revision, trigger="poll", requested_by=None, run_id=None,
                           images={}, apps=[(a, "update") for a in apps[:3]])
        for app_id, outcome in zip(apps[:2], ("succeeded", "failed"), strict=True):
            store.finish_release_app(revision=revision, app_id=app_id, action="update",
                                     outcome=outcome, reason=None, run_id=None)
    for revision in (OTHER_SHA, SHA):
        store.record_revision(revision=revision, definitions={a: {"id": a} for a in apps})
        store.open_release(revision=revision, trigger="poll", requested_by=None, run_id=None,
                           images={}, apps=[(a, "update") for a in apps])
    for n in range(250):
        run = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
        store.finish_run(run, outcome="failed", error=f"failure {n}", summary=None)
        store.audit(who="ada", action="sync", target="/dirac/fts", result="accepted")
    board = statusboard.StatusBoard(store=store, live_apps=list, generation=lambda: 0)
    deps = context.Deps(records=store, live_apps=list, request_sync=lambda *a: None,
                        rollback=lambda *a: None, token=None, board=board)
    stepped: dict[str, int] = {}
    try:
        with server.serving(server.oncall_app(deps)) as url:
            for page, shown in (("history", "failure 249"), ("releases", "site099")):
                assert requests.get(f"{url}/{page}", timeout=30).status_code == 200
                with driver_rows.rows_stepped(store) as count:
                    answer = requests.get(f"{url}/{page}", timeout=30)
                stepped[page] = count[0]
                assert answer.status_code == 200
                assert shown in answer.text
    finally:
        store.close()

    # 200 runs, 200 audit entries, 32 revisions and their releases' outcomes counted; 20
    # releases counted per outcome and their apps listed: a row of the driver per query,
    # whatever the rows, and one query for all the releases' apps needing attention.
    assert stepped["history"] <= 8, stepped
    assert stepped["releases"] <= 8, stepped
