"""The drift report: self-contained, open drift first, each field old -> new, never a secret."""

from __future__ import annotations

import re
from pathlib import Path

from reconciler.shell import records
from reconciler.web import report

DESIRED = {"id": "/dirac/web/portal", "instances": 2, "cpus": 0.5,
           "container": {"type": "DOCKER", "docker": {"image": "lhcbdirac:v8r2p44"}},
           "env": {"DIRAC_DB_PASSWORD": "hunter2-desired", "DIRAC_SETUP": "LHCb-Production"}}


def store_with_drift(tmp_path: Path) -> records.RecordStore:
    """Drift recorded the way the controller records it: after a real applied change."""
    store = records.open_store(tmp_path / "state")
    store.record_revision(revision="a" * 40, definitions={"/dirac/web/portal": DESIRED,
                                                          "/dirac/fts": {"id": "/dirac/fts"}})
    run = store.start_run(revision="a" * 40, trigger="poll", requested_by=None, dry_run=False)
    for app_id in ("/dirac/web/portal", "/dirac/fts"):
        change = store.record_deployment(
            run_id=run, app_id=app_id, action="create", revision="a" * 40,
            deployment_id=f"d-{app_id}", version="2026-11-25T03:00:00.000Z",
            previous_version=None, purpose="change", patch=[], deadline_seconds=60)
        store.finish_change(change, outcome="succeeded", reason=None)
    store.finish_run(run, outcome="succeeded", error=None, summary=None)
    old, _ = store.observe_drift(
        app_id="/dirac/fts", kind="scale", patch=[{"op": "replace", "path": "/instances",
                                                   "value": 0}],
        fingerprint="f1", policy="correct")
    store.resolve_drift(app_id="/dirac/fts", action="corrected")
    store.observe_drift(
        app_id="/dirac/web/portal", kind="config",
        patch=[{"op": "replace", "path": "/instances", "value": 7},
               {"op": "replace", "path": "/env/DIRAC_DB_PASSWORD", "value": "hunter2-live"},
               {"op": "add", "path": "/env/DEBUG", "value": "1"}],
        fingerprint="f2", policy="report", client_ip="10.1.2.3", uri="/v2/apps/dirac/web/portal",
        attributed_at="2026-11-25T02:58:00.000Z")
    return store


def test_report_is_self_contained_with_open_drift_first_and_each_field_old_to_new(
        tmp_path: Path) -> None:
    store = store_with_drift(tmp_path)
    html = report.store_report(store, generated_at="2026-11-25T03:00:00+00:00")
    assert not re.search(r"https?://", html), "the report must not reference anything outside"
    assert not re.search(r"<(script|link|img|iframe)\b", html, re.I)
    assert "<style>" in html
    # Open drift (the portal) before resolved drift (fts).
    assert html.index("/dirac/web/portal") < html.index("/dirac/fts")
    assert html.index("Open drift") < html.index("Resolved drift")
    # The field-level diff, as everywhere: live value, then desired (Git) value.
    row = re.search(r"<td>/instances</td><td class=\"live\">(.*?)</td>.*?"
                    r"<td class=\"desired\">(.*?)</td>", html, re.S)
    assert row is not None and row.groups() == ("7", "2")
    assert re.search(r"<td>/env/DEBUG</td><td class=\"live\">.*?</td><td class=\"arrow\">"
                     r"&rarr;</td>\s*<td class=\"desired\">\(absent\)</td>", html, re.S)
    # Attribution and policy/action.
    assert "10.1.2.3" in html and "/v2/apps/dirac/web/portal" in html
    assert "report" in html and "corrected" in html


def test_report_never_shows_a_secret_value(tmp_path: Path) -> None:
    html = report.store_report(store_with_drift(tmp_path), generated_at="now")
    assert "hunter2" not in html
    assert "/env/DIRAC_DB_PASSWORD" in html and "***" in html


def test_report_without_desired_values_says_they_are_unknown(tmp_path: Path) -> None:
    store = store_with_drift(tmp_path)
    html = report.render_drift_report(store.drifts(open_only=True), generated_at="now")
    assert "(not recorded)" in html and "Resolved drift" not in html


def test_flapping_drift_suggests_the_ignore_rule_that_accepts_it(tmp_path: Path) -> None:
    store = store_with_drift(tmp_path)
    before = report.store_report(store, generated_at="now")
    assert "Correction stopped" not in before, "only flapping drift gets a suggestion"
    portal = next(d for d in store.drifts() if d.app_id == "/dirac/web/portal")
    store.set_drift_action(portal.drift_id, action="flapping-stopped", status="flapping")
    html = report.store_report(store, generated_at="now")
    rule = re.search(r'<pre class="mono suggestion">(.*?)</pre>', html, re.S)
    assert rule is not None and rule.group(1) == (
        "ignore:\n  /dirac/web/portal:\n    - /env/DEBUG\n    - /env/DIRAC_DB_PASSWORD\n"
        "    - /instances")
