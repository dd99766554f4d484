"""Write-ahead intents: ``reconciler sync`` killed while Marathon holds its PUT, then restarted.

The dev cluster answers each app PUT late (``DEVCLUSTER_ANSWER_DELAY_PUT``): the deployment
starts at once, the answer comes seconds later, and the sync is killed in between, so the
deployment id never reached the records. The successor must find the deployment through the
intent, wait on it and roll it back (the release is broken), without sending it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.devcluster import faults, launch
from reconciler.shell import records
from tests.reliability import tally
from tests.sync import cluster

pytestmark = pytest.mark.integration

APP = "/dirac/agents/writer"


@pytest.fixture
def slow_devcluster(tmp_path: Path) -> Iterator[launch.RunningCluster]:
    running = launch.launch(state_dir=tmp_path / "devcluster", env={faults.ENV: "30"})
    try:
        yield running
    finally:
        running.stop()


def kill_while_put_in_flight(marathon: str, repo: Path, state: Path) -> None:
    """Start a sync, SIGKILL it once Marathon runs its deployment (the answer still held)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "sync", "--marathon", marathon, str(repo),
         "--state-dir", str(state), "--timeout", "6"],
        cwd=cluster.REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not cluster.deployments(marathon):
            time.sleep(0.05)
        assert cluster.deployments(marathon), "the PUT never reached the dev cluster"
        assert process.poll() is None, "the sync ended before its PUT was answered"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)


def test_sync_killed_with_a_put_in_flight_adopts_and_rolls_back_the_deployment(
    slow_devcluster: launch.RunningCluster, tmp_path: Path
) -> None:
    marathon = slow_devcluster.url
    repo = cluster.write_repo(tmp_path / "repo", [cluster.fast_app(APP, grace=2)], tag="v1")
    state = tmp_path / "state"
    first = cluster.sync(marathon, repo, state)  # a create is a POST: answered at once
    assert first.returncode == 0, cluster.explain(first)
    cluster.set_tag(repo, "v2-broken")

    kill_while_put_in_flight(marathon, repo, state)
    [in_flight] = cluster.deployments(marathon)

    resumed = cluster.sync(marathon, repo, state, "--timeout", "6")
    assert resumed.returncode != 0, cluster.explain(resumed)  # rolled back, quarantined
    assert not cluster.deployments(marathon), "the adopted deployment was left running"
    live = cluster.apps(marathon)[APP]
    assert cluster.image_of(live) == "lhcbdirac:v1", cluster.explain(resumed)
    # v1 created, v2-broken put once (the killed sync's), then the revert: no second PUT.
    assert len(cluster.versions(marathon, APP)) == 3, cluster.versions(marathon, APP)

    history = cluster.history(state)
    runs = [e for e in history if e["kind"] == "run"]
    assert runs[1]["outcome"] == "interrupted", runs
    changes = [e for e in history if e["kind"] == "change"
               and e.get("deployment_id") == in_flight["id"]]
    assert len(changes) == 1, history
    assert changes[0]["outcome"] == "rolled back", changes
    assert [e for e in history if e["kind"] == "rollback"], history
    tally.record(tally.Row(case="kill -9 of reconciler sync, PUT in flight", tried=1,
                           survived=1, duplicate_deployments=0))



def test_open_intents_of_a_dead_run_are_settled_as_applied_or_never_sent(
        devcluster: launch.RunningCluster, tmp_path: Path) -> None:
    repo = cluster.write_repo(tmp_path / "repo", [cluster.fast_app(APP, grace=1)], tag="v1")
    state = tmp_path / "state"
    assert cluster.sync(devcluster.url, repo, state).returncode == 0
    store = records.open_store(state)
    try:
        revision = store.runs()[0].revision
        definition = store.desired_definition(revision=revision, app_id=APP)
        assert definition is not None
        dead = store.start_run(revision=revision, trigger="cli", requested_by=None,
                               dry_run=False)
        for app_id, action, digest in (
                (APP, "update", records.definition_digest(definition)),
                ("/dirac/agents/never", "create", "sha256:0")):
            store.record_intent(run_id=dead, app_id=app_id, action=action, purpose="change",
                                revision=revision, digest=digest, previous_version=None,
                                deadline_seconds=60)
    finally:
        store.close()

    again = cluster.sync(devcluster.url, repo, state)
    assert again.returncode == 0, cluster.explain(again)
    store = records.open_store(state)
    try:
        settled = {i.app_id: resolution for i, resolution in store.intents(run_id=dead)}
        assert settled == {APP: "applied", "/dirac/agents/never": "never sent"}
        assert store.run(dead).outcome == "interrupted"
        assert [c.outcome for c in store.changes(run_id=dead)] == ["succeeded"]
    finally:
        store.close()
    assert len(cluster.versions(devcluster.url, APP)) == 1  # nothing was sent again
