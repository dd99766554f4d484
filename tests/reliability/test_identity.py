"""The state dir belongs to one Marathon: met with another one, ``sync`` and ``run`` refuse.

Records name one Marathon's deployments and versions; resuming them on another Marathon
would wait on (or roll back) deployments that are not ours. Each dev cluster has its own
``frameworkId``, as each Marathon has the one Mesos gave it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from reconciler.devcluster import launch
from tests.controller.stack import running
from tests.sync import cluster

pytestmark = pytest.mark.integration

APP = "/dirac/agents/identity"


def framework_id(url: str) -> str:
    found: str = requests.get(f"{url}/v2/info", timeout=10).json()["frameworkId"]
    return found


def test_sync_refuses_a_state_dir_that_belongs_to_another_marathon(
        devcluster: launch.RunningCluster, tmp_path: Path) -> None:
    repo = cluster.write_repo(tmp_path / "repo", [cluster.fast_app(APP, grace=2)], tag="v1")
    state = tmp_path / "state"
    assert cluster.sync(devcluster.url, repo, state).returncode == 0
    other = launch.launch(state_dir=tmp_path / "other-devcluster")
    try:
        refused = cluster.sync(other.url, repo, state)
        assert refused.returncode == 1, cluster.explain(refused)
        assert framework_id(devcluster.url) in refused.stderr
        assert framework_id(other.url) in refused.stderr
        assert APP not in cluster.apps(other.url), "the foreign Marathon was written to"
    finally:
        other.stop()
    again = cluster.sync(devcluster.url, repo, state)
    assert again.returncode == 0, cluster.explain(again)


def test_run_is_not_ready_and_applies_nothing_on_another_marathons_state_dir(
        devcluster: launch.RunningCluster, tmp_path: Path) -> None:
    repo = cluster.write_repo(tmp_path / "repo", [cluster.fast_app(APP, grace=2)], tag="v1")
    state = tmp_path / "ctl" / "state"
    assert cluster.sync(devcluster.url, repo, state).returncode == 0
    with running(tmp_path / "ctl", poll_interval=1) as controller:  # its own dev cluster
        def refused() -> list[str]:
            found: list[str] = requests.get(f"{controller.url}/readyz",
                                            timeout=10).json()["reasons"]
            return [r for r in found if framework_id(devcluster.url) in r
                    and framework_id(controller.marathon) in r]

        controller.wait("readyz to name both Marathons", refused, timeout=30)
        assert not controller.live(), "the controller wrote to a Marathon not its records'"
