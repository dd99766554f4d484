"""``reconciler windows`` and ``reconciler sync`` against sync windows: what is open when, a
sync held by a closed window (exit 5, nothing applied), and one that overrides it (applied,
audited with who and why)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.devcluster import launch
from reconciler.shell import records
from tests.sync import cluster

APP = "/dirac/fts"
WEEKEND_FREEZE = {"kind": "deny", "schedule": "0 18 * * 5", "duration": "62h",
                  "timeZone": "Europe/Zurich", "groups": ["/dirac"]}
ALWAYS_CLOSED = {"kind": "deny", "schedule": "* * * * *", "duration": "1h",
                 "groups": ["/dirac"]}
"""Opens every minute for an hour: closed whatever the wall clock says."""


def _repo(tmp_path: Path, *windows: dict[str, object]) -> Path:
    return cluster.write_repo(tmp_path / "repo", [cluster.fast_app(APP)], tag="v8r2p44",
                              settings={"managedPrefixes": ["/dirac"], "windows": list(windows)})


def test_windows_shows_per_group_what_waits_and_each_window_next_opening(
        tmp_path: Path) -> None:
    repo = _repo(tmp_path, WEEKEND_FREEZE)
    saturday = cluster.reconciler("windows", str(repo), "--at", "2026-12-05T12:00:00+00:00",
                                  "--output", "json")
    assert saturday.returncode == 0, cluster.explain(saturday)
    data = json.loads(saturday.stdout)
    assert data["groups"] == [{
        "group": "/dirac",
        "revisions": {"allowed": False, "until": "2026-12-07T07:00:00+00:00",
                      "because": data["groups"][0]["revisions"]["because"]},
        "drift": {"allowed": False, "until": "2026-12-07T07:00:00+00:00",
                  "because": data["groups"][0]["drift"]["because"]}}]
    window = data["windows"][0]
    assert (window["openNow"], window["openUntil"], window["nextOpens"]) == (
        True, "2026-12-07T07:00:00+00:00", "2026-12-11T17:00:00+00:00")
    wednesday = cluster.reconciler("windows", str(repo), "--at", "2026-12-02T12:00:00+00:00")
    assert wednesday.returncode == 0, cluster.explain(wednesday)
    assert "/dirac  revisions: allowed; drift: allowed" in wednesday.stdout
    assert "next opens 2026-12-04T17:00:00+00:00" in wednesday.stdout


@pytest.mark.integration
def test_sync_in_a_closed_window_plans_only_and_an_override_applies_and_is_audited(
        tmp_path: Path, devcluster: launch.RunningCluster) -> None:
    repo = _repo(tmp_path, ALWAYS_CLOSED)
    state = tmp_path / "state"
    held = cluster.sync(devcluster.url, repo, state)
    assert held.returncode == 5, cluster.explain(held)
    assert f"skipped {APP} (create): waiting for window" in held.stdout
    assert APP not in cluster.apps(devcluster.url)

    overridden = cluster.sync(devcluster.url, repo, state, "--override-window",
                              "first install of the FTS manager", "--timeout", "60")
    assert overridden.returncode == 0, cluster.explain(overridden)
    assert APP in cluster.apps(devcluster.url)
    store = records.open_store(state)
    try:
        entry = next(e for e in store.audit_log() if e.action == "sync window override")
        assert entry.target == APP and entry.who  # the OS user who ran the command
        assert entry.result is not None
        assert entry.result.startswith("why: first install of the FTS manager")
        assert "waiting for window until" in entry.result
        assert [h.ended for h in store.window_holds(open_only=False)] == ["overridden"]
    finally:
        store.close()


CONFIG, PORTAL, OTHER = "/dirac/configuration/server", "/dirac/web/portal", "/dirac/other"


@pytest.mark.integration
def test_an_app_a_window_holds_holds_its_dependents_and_every_later_wave(
        tmp_path: Path, devcluster: launch.RunningCluster) -> None:
    # Issue 17: the window held configuration/server, but the portal that depends on it and
    # the later waves were updated at once, with no soak.
    apps = [cluster.fast_app(CONFIG), cluster.fast_app(PORTAL, dependencies=[CONFIG]),
            cluster.fast_app(OTHER)]
    repo = cluster.write_repo(tmp_path / "repo", apps, tag="v8r2p44",
                              settings={"managedPrefixes": ["/dirac"]})
    state = tmp_path / "state"
    first = cluster.sync(devcluster.url, repo, state, "--timeout", "60")
    assert first.returncode == 0, cluster.explain(first)
    before = {a: cluster.versions(devcluster.url, a) for a in (CONFIG, PORTAL, OTHER)}

    cluster.write_repo(repo, apps, tag="v8r2p45", settings={
        "managedPrefixes": ["/dirac"],
        "windows": [{**ALWAYS_CLOSED, "groups": ["/dirac/configuration"]}],
        "waves": [{"name": "config", "apps": ["/dirac/configuration"], "soak": 30}]})
    held = cluster.sync(devcluster.url, repo, state, "--timeout", "60")
    assert held.returncode == 5, cluster.explain(held)
    assert {a: cluster.versions(devcluster.url, a) for a in (CONFIG, PORTAL, OTHER)} == before
    assert f"skipped {PORTAL} (update): waiting for window: depends on {CONFIG}" in held.stdout
    assert (f"skipped {OTHER} (update): waiting for window: release wave 'config' is not "
            f"finished: {CONFIG}") in held.stdout
    store = records.open_store(state)
    try:  # each waits on the record too, so the run due when the window opens takes them
        assert {h.app_id for h in store.window_holds()} == {CONFIG, PORTAL, OTHER}
        # The release is not "succeeded" while its apps wait: it shows them, and why.
        release = store.releases()[0]
        assert str(release.outcome) == "waiting for window"
        assert {(a.app_id, a.outcome) for a in release.apps} == {
            (CONFIG, "waiting for window"), (PORTAL, "waiting for window"),
            (OTHER, "waiting for window")}
    finally:
        store.close()
    shown = cluster.reconciler("releases", "--state-dir", str(state))
    assert shown.returncode == 0, cluster.explain(shown)
    assert "waiting for window" in shown.stdout.splitlines()[0]
    assert f"{PORTAL}  update  waiting for window: waiting for window: depends on {CONFIG}" \
        in shown.stdout

    # The held apps go out (here past the window, with a reason; the run due when the window
    # opens is the same run): the same release, of the same revision, goes on and ends.
    opened = cluster.sync(devcluster.url, repo, state, "--timeout", "60",
                          "--override-window", "test of the release")
    assert opened.returncode == 0, cluster.explain(opened)
    store = records.open_store(state)
    try:
        latest, first = store.releases()
        assert (latest.revision, str(latest.outcome)) == (release.revision, "succeeded")
        assert {(a.app_id, a.outcome) for a in latest.apps} == {
            (CONFIG, "succeeded"), (PORTAL, "succeeded"), (OTHER, "succeeded")}
        assert str(first.outcome) == "succeeded"
    finally:
        store.close()
