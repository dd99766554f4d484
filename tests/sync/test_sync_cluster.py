"""``reconciler sync``, ``rollback`` and ``history`` against the real dev cluster subprocess."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests
import yaml

from reconciler.devcluster import launch
from reconciler.shell import records
from tests.sync import cluster

pytestmark = pytest.mark.integration

CONVERGED, FAILED, ROLLED_BACK, QUARANTINED = 0, 2, 3, 4


def test_example_desired_state_syncs_from_empty_to_healthy(
    devcluster: launch.RunningCluster, tmp_path: Path
) -> None:
    repo = tmp_path / "desired-state"
    shutil.copytree(cluster.REPO_ROOT / "desired-state", repo)
    result = cluster.sync(devcluster.url, repo, tmp_path / "state", timeout=300)
    assert result.returncode == CONVERGED, cluster.explain(result)

    live = cluster.apps(devcluster.url)
    assert live, "nothing was created"
    for app_id, app in live.items():
        assert cluster.healthy_tasks(app) >= app["instances"], app_id
        assert not app["deployments"], app_id
    # The plan, each change with its fields, comes before the first progress line.
    assert result.stdout.index("plan for dir:") < result.stdout.index("] /"), result.stdout
    assert "  will create /" in result.stdout and "      /id: " in result.stdout
    again = cluster.sync(devcluster.url, repo, tmp_path / "state")
    assert again.returncode == CONVERGED, cluster.explain(again)
    assert f": no changes; {len(live)} in sync" in again.stdout, again.stdout
    as_json = cluster.sync(devcluster.url, repo, tmp_path / "state", "--output", "json")
    report = json.loads(as_json.stdout)
    assert (report["exitCode"], report["runId"], report["plan"]["steps"]) == (0, None, [])
    assert sorted(report["plan"]["inSync"]) == sorted(live)


def test_tag_bump_rolls_out_to_every_app_within_its_strategy_capacity(
    devcluster: launch.RunningCluster, tmp_path: Path
) -> None:
    strategies = {"/dirac/one-at-a-time": (3, 1.0, 0.34), "/dirac/half-down": (2, 0.5, 0.0),
                  "/dirac/surge": (2, 1.0, 1.0)}
    definitions = [cluster.fast_app(app_id, instances=n, minimum=m, over=o, grace=3)
                   for app_id, (n, m, o) in strategies.items()]
    repo = cluster.write_repo(tmp_path / "repo", definitions, tag="v1")
    state = tmp_path / "state"
    first = cluster.sync(devcluster.url, repo, state)
    assert first.returncode == CONVERGED, cluster.explain(first)

    cluster.set_tag(repo, "v2")
    sampler = cluster.Sampler(devcluster.url)
    with sampler.running():
        bump = cluster.sync(devcluster.url, repo, state)
    assert bump.returncode == CONVERGED, cluster.explain(bump)

    live = cluster.apps(devcluster.url)
    for app_id, (instances, minimum, _) in strategies.items():
        assert cluster.image_of(live[app_id]) == "lhcbdirac:v2"
        assert cluster.healthy_tasks(live[app_id]) == instances
        floor = cluster.minimum_capacity(instances, minimum)
        counts = [s[app_id] for s in sampler.samples if app_id in s]
        assert len(counts) > 5, "too few samples to judge the rollout"
        assert min(counts) >= floor, f"{app_id} fell to {min(counts)} healthy (< {floor})"


def test_broken_tag_is_rolled_back_at_its_deadline_quarantined_and_retried_after_a_change(
    devcluster: launch.RunningCluster, tmp_path: Path
) -> None:
    app_id = "/dirac/fts"
    repo = cluster.write_repo(tmp_path / "repo", [cluster.fast_app(app_id, instances=2)],
                              tag="v1")
    state = tmp_path / "state"
    assert cluster.sync(devcluster.url, repo, state).returncode == CONVERGED
    good_version = cluster.apps(devcluster.url)[app_id]["version"]

    cluster.set_tag(repo, "v2-broken")
    timeout = 3.0
    broken = cluster.sync(devcluster.url, repo, state, "--timeout", str(timeout))
    assert broken.returncode == ROLLED_BACK, cluster.explain(broken)
    live = cluster.apps(devcluster.url)[app_id]
    assert cluster.image_of(live) == "lhcbdirac:v1"
    assert not cluster.deployments(devcluster.url)

    entries = cluster.history(state, app_id)
    [change] = [e for e in entries if e["kind"] == "change" and e["purpose"] == "change"
                and e["outcome"] == "rolled back"]
    [revert] = [e for e in entries if e["kind"] == "change" and e["purpose"] == "rollback"]
    [rollback] = [e for e in entries if e["kind"] == "rollback"]
    # The change is recorded as soon as Marathon accepted it, the revert as soon as the
    # deadline passed and Marathon accepted the cancel.
    started = datetime.fromisoformat(change["started_at"])
    reverted = datetime.fromisoformat(revert["started_at"])
    late = (reverted - started).total_seconds() - timeout
    assert -0.25 <= late <= 1.0, f"rollback began {late:.2f}s after the deadline"
    assert revert["outcome"] == "succeeded"
    assert rollback["failure"], "Marathon's lastTaskFailure message is missing"
    assert rollback["stuck_step"], "the deployment step it was stuck in is missing"
    assert rollback["to_version"] == good_version

    versions_before = cluster.versions(devcluster.url, app_id)
    same = cluster.sync(devcluster.url, repo, state, "--timeout", str(timeout))
    assert same.returncode == QUARANTINED, cluster.explain(same)
    assert "quarantined" in same.stdout
    assert cluster.versions(devcluster.url, app_id) == versions_before

    cluster.set_tag(repo, "v3")
    fixed = cluster.sync(devcluster.url, repo, state)
    assert fixed.returncode == CONVERGED, cluster.explain(fixed)
    assert cluster.image_of(cluster.apps(devcluster.url)[app_id]) == "lhcbdirac:v3"

    # History: newest first, only runs that did something, each saying what it changed.
    runs = [e for e in cluster.history(state) if e["kind"] == "run"]
    assert [r["outcome"] for r in runs] == ["succeeded", "rolled back", "succeeded"], runs
    assert [e["kind"] for e in cluster.history(state, "--limit", "2")] == ["change", "run"]
    text = cluster.reconciler("history", "--state-dir", str(state), "--limit", "2")
    assert text.returncode == 0, cluster.explain(text)
    assert f"update {app_id}; 1 succeeded" in text.stdout, text.stdout
    assert "changed: /container/docker/image" in text.stdout, text.stdout


def test_manual_rollback_to_a_recorded_revision_and_to_a_marathon_version(
    devcluster: launch.RunningCluster, tmp_path: Path
) -> None:
    app_id = "/dirac/web"
    repo = cluster.write_repo(tmp_path / "repo", [cluster.fast_app(app_id)], tag="v1")
    state = tmp_path / "state"
    assert cluster.sync(devcluster.url, repo, state).returncode == CONVERGED
    [first_run] = [e for e in cluster.history(state) if e["kind"] == "run"]
    first_revision = first_run["revision"]
    v1_version = cluster.apps(devcluster.url)[app_id]["version"]
    cluster.set_tag(repo, "v2")
    assert cluster.sync(devcluster.url, repo, state).returncode == CONVERGED

    rollback = ("rollback", "--marathon", devcluster.url, app_id, "--to", first_revision[:12],
                "--state-dir", str(state))
    # Not on a terminal and no --yes: refused, nothing changed.
    refused = cluster.reconciler(*rollback)
    assert refused.returncode == 1, cluster.explain(refused)
    assert "not on a terminal" in refused.stderr and "--yes" in refused.stderr
    assert cluster.image_of(cluster.apps(devcluster.url)[app_id]) == "lhcbdirac:v2"
    # --dry-run says where it would go, and changes nothing either.
    dry = cluster.reconciler(*rollback, "--dry-run", "--output", "json")
    assert dry.returncode == CONVERGED, cluster.explain(dry)
    target = json.loads(dry.stdout)["target"]
    assert (target["image"], target["revision"], target["liveImage"]) == (
        "lhcbdirac:v1", first_revision, "lhcbdirac:v2")
    assert cluster.image_of(cluster.apps(devcluster.url)[app_id]) == "lhcbdirac:v2"
    # With --yes it prints the target first, then rolls back, recorded with the OS user's
    # name even when the environment names nobody.
    nobody = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME")}
    back = subprocess.run([sys.executable, "-m", "reconciler", *rollback, "--yes"], env=nobody,
                          capture_output=True, text=True, timeout=120, cwd=cluster.REPO_ROOT)
    assert back.returncode == CONVERGED, cluster.explain(back)
    assert back.stdout.startswith(f"rollback of {app_id}\n"), back.stdout
    assert "image lhcbdirac:v1" in back.stdout.splitlines()[2]
    assert cluster.image_of(cluster.apps(devcluster.url)[app_id]) == "lhcbdirac:v1"
    [manual] = [e for e in cluster.history(state, app_id)
                if e["kind"] == "rollback" and e.get("reason") == "manual rollback"]
    assert manual["requested_by"] == pwd.getpwuid(os.getuid()).pw_name

    # The rolled-back revision stays away until Git changes or a retry is asked for.
    held = cluster.sync(devcluster.url, repo, state)
    assert held.returncode == QUARANTINED, cluster.explain(held)
    assert cluster.image_of(cluster.apps(devcluster.url)[app_id]) == "lhcbdirac:v1"

    retried = cluster.sync(devcluster.url, repo, state, "--retry-quarantined")
    assert retried.returncode == CONVERGED, cluster.explain(retried)
    assert cluster.image_of(cluster.apps(devcluster.url)[app_id]) == "lhcbdirac:v2"

    to_version = cluster.reconciler("rollback", "--marathon", devcluster.url, app_id,
                                    "--to-version", v1_version, "--state-dir", str(state),
                                    "--yes", "--output", "yaml")
    assert to_version.returncode == CONVERGED, cluster.explain(to_version)
    printed = yaml.safe_load(to_version.stdout)
    assert (printed["target"]["version"], printed["target"]["image"]) == (
        v1_version, "lhcbdirac:v1")
    assert printed["report"]["outcome"] == "succeeded"
    assert cluster.image_of(cluster.apps(devcluster.url)[app_id]) == "lhcbdirac:v1"


def test_sync_killed_mid_rollout_is_resumed_without_duplicate_deployments(
    devcluster: launch.RunningCluster, tmp_path: Path
) -> None:
    app_ids = [f"/dirac/agents/agent{i}" for i in range(3)]
    # A long grace and one-at-a-time upgrades keep the rollout going long enough to kill it.
    definitions = [cluster.fast_app(a, instances=2, over=0.0, grace=3) for a in app_ids]
    repo = cluster.write_repo(tmp_path / "repo", definitions, tag="v1")
    state = tmp_path / "state"
    assert cluster.sync(devcluster.url, repo, state).returncode == CONVERGED
    cluster.set_tag(repo, "v2")

    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "sync", "--marathon", devcluster.url, str(repo),
         "--state-dir", str(state)],
        cwd=cluster.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(cluster.deployments(devcluster.url)) < 3:
            time.sleep(0.05)
        assert len(cluster.deployments(devcluster.url)) == 3, "the rollout did not start"
        time.sleep(0.3)  # let it record all three before dying
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)
    assert cluster.deployments(devcluster.url), "the rollout ended before the kill"

    resumed = cluster.sync(devcluster.url, repo, state)
    assert resumed.returncode == CONVERGED, cluster.explain(resumed)
    assert "resumed" in resumed.stdout or "succeeded" in resumed.stdout
    live = cluster.apps(devcluster.url)
    for app_id in app_ids:
        assert cluster.image_of(live[app_id]) == "lhcbdirac:v2"
        # v1 created once, v2 deployed once: no duplicate deployment after the restart.
        assert len(cluster.versions(devcluster.url, app_id)) == 2, app_id
        changes = [e for e in cluster.history(state, app_id)
                   if e["kind"] == "change" and e.get("deployment_id")]
        assert len(changes) == 2, changes
        assert all(c["outcome"] == "succeeded" for c in changes), changes


@pytest.mark.integration
def test_a_deployment_locking_the_app_is_waited_for_or_cancelled_only_when_asked(
    devcluster: launch.RunningCluster, tmp_path: Path
) -> None:
    repo = cluster.write_repo(tmp_path / "repo", [cluster.fast_app("/lock/app", grace=2)],
                              tag="v1")
    state = tmp_path / "state"
    first = cluster.sync(devcluster.url, repo, state)
    assert first.returncode == CONVERGED, cluster.explain(first)
    # Someone starts a release that never becomes healthy: its deployment locks the app.
    broken = {**cluster.apps(devcluster.url)["/lock/app"]}
    broken["container"]["docker"]["image"] = "lhcbdirac:v2-broken"
    for owned in ("version", "versionInfo", "tasks", "deployments", "tasksRunning",
                  "tasksHealthy", "tasksStaged", "tasksUnhealthy", "lastTaskFailure"):
        broken.pop(owned, None)
    requests.put(f"{devcluster.url}/v2/apps/lock/app", json=broken,
                 timeout=10).raise_for_status()
    (blocking,) = cluster.deployments(devcluster.url)

    waited = cluster.sync(devcluster.url, repo, state, "--timeout", "3")
    assert waited.returncode == FAILED, cluster.explain(waited)
    assert "--cancel-blocking" in waited.stdout
    assert [d["id"] for d in cluster.deployments(devcluster.url)] == [blocking["id"]]

    cancelled = cluster.sync(devcluster.url, repo, state, "--cancel-blocking")
    assert cancelled.returncode == CONVERGED, cluster.explain(cancelled)
    assert f"cancelled blocking deployment {blocking['id']}" in cancelled.stdout
    assert cluster.image_of(cluster.apps(devcluster.url)["/lock/app"]) == "lhcbdirac:v1"


def test_a_manual_rollback_that_fails_is_recorded_as_failed(
    devcluster: launch.RunningCluster, tmp_path: Path
) -> None:
    # Regression: the run record was finished with the report from before the rollback ran,
    # so a rollback that failed (and was itself undone) was recorded as "succeeded".
    app_id = "/dirac/portal"
    repo = cluster.write_repo(tmp_path / "repo", [cluster.fast_app(app_id, grace=2)], tag="v1")
    state = tmp_path / "state"
    assert cluster.sync(devcluster.url, repo, state).returncode == CONVERGED
    cluster.set_tag(repo, "v2-broken")
    broken = cluster.sync(devcluster.url, repo, state, "--timeout", "6")
    assert broken.returncode == ROLLED_BACK, cluster.explain(broken)
    broken_revision = [e for e in cluster.history(state) if e["kind"] == "run"][0]["revision"]
    runs_before = len([e for e in cluster.history(state) if e["kind"] == "run"])
    again = cluster.sync(devcluster.url, repo, state)  # nothing to do: quarantined
    assert again.returncode == QUARANTINED, cluster.explain(again)
    assert len([e for e in cluster.history(state) if e["kind"] == "run"]) == runs_before
    store = records.open_store(state)
    try:
        [release] = [r for r in store.releases() if r.revision == broken_revision]
        [revision] = [r for r in store.revisions() if r.revision == broken_revision]
    finally:
        store.close()
    assert (str(release.outcome), revision.last_outcome) == ("rolled back", "rolled back")
    assert [(a.app_id, a.outcome) for a in release.apps] == [(app_id, "rolled back")]
    assert [(c.old, c.new) for c in release.images_changed] == [("v1", "v2-broken")]
    listed = cluster.reconciler("releases", "--state-dir", str(state), "--limit", "1")
    assert listed.returncode == 0, cluster.explain(listed)
    assert f"  {broken_revision[:12]}  rolled back  cli" in listed.stdout.splitlines()[0]
    assert "    image dirac (lhcbdirac): v1 -> v2-broken" in listed.stdout
    assert f"    {app_id}  update  rolled back" in listed.stdout

    back = cluster.reconciler("rollback", "--marathon", devcluster.url, app_id,
                              "--to", broken_revision[:12], "--timeout", "6",
                              "--state-dir", str(state), "--yes")
    assert back.returncode == ROLLED_BACK, cluster.explain(back)
    [run] = [e for e in cluster.history(state) if e["kind"] == "run"
             and e["trigger"] == "rollback"]
    assert run["outcome"] == "rolled back", run
    assert cluster.image_of(cluster.apps(devcluster.url)[app_id]) == "lhcbdirac:v1"


def test_a_rollback_to_the_previous_version_skips_versions_marathon_never_ran(
    devcluster: launch.RunningCluster, tmp_path: Path
) -> None:
    # Marathon stores the version of a write before its deployment manager refuses it with
    # 409 (GroupManagerImpl.updateRootEither: storeRootVersion, then deploy), so the version
    # list holds definitions that never ran, the same as the one that ran next.
    app_id = "/refused/app"
    repo = cluster.write_repo(tmp_path / "repo", [cluster.fast_app(app_id, grace=2)], tag="v1")
    state = tmp_path / "state"
    assert cluster.sync(devcluster.url, repo, state).returncode == CONVERGED
    v2 = {k: v for k, v in cluster.apps(devcluster.url)[app_id].items()
          if k not in ("version", "versionInfo", "tasks", "deployments", "tasksRunning",
                       "tasksHealthy", "tasksStaged", "tasksUnhealthy", "lastTaskFailure")}
    v2["container"]["docker"]["image"] = "lhcbdirac:v2"
    requests.post(f"{devcluster.url}/v2/apps{app_id}/restart", timeout=10).raise_for_status()
    refused = requests.put(f"{devcluster.url}/v2/apps{app_id}", json=v2,
                           params={"partialUpdate": "false"}, timeout=10)
    assert refused.status_code == 409
    cluster.set_tag(repo, "v2")
    synced = cluster.sync(devcluster.url, repo, state)
    assert synced.returncode == CONVERGED, cluster.explain(synced)
    assert cluster.image_of(cluster.apps(devcluster.url)[app_id]) == "lhcbdirac:v2"

    back = cluster.reconciler("rollback", "--marathon", devcluster.url, app_id,
                              "--state-dir", str(state), "--yes")
    assert back.returncode == CONVERGED, cluster.explain(back)
    assert cluster.image_of(cluster.apps(devcluster.url)[app_id]) == "lhcbdirac:v1"
