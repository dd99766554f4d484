"""Rolling upgrades follow Marathon's upgradeStrategy; broken versions never finish."""

from __future__ import annotations

import math
import threading
import time

import pytest
import requests

from reconciler.devcluster import launch
from tests.devcluster.helpers import app, deployments, docker_app, no_deployments, wait_until


def _sample_until_done(url: str, app_id: str) -> list[tuple[int, int]]:
    """(healthy, total) task counts, sampled every 50 ms until no deployment is left."""
    samples: list[tuple[int, int]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        live = app(url, app_id, "tasks")
        tasks = live["tasks"]
        healthy = sum(1 for t in tasks
                      if t.get("healthCheckResults") and all(h["alive"]
                                                             for h in t["healthCheckResults"]))
        samples.append((healthy, len(tasks)))
        if not live["deployments"]:
            return samples
        time.sleep(0.05)
    raise TimeoutError("the upgrade did not finish")


@pytest.mark.parametrize(("n", "minimum", "maximum"), [(4, 0.5, 0.25), (2, 1.0, 0.0)])
def test_rolling_upgrade_stays_within_its_strategy(
    devcluster: launch.RunningCluster, n: int, minimum: float, maximum: float
) -> None:
    definition = docker_app("/roll", instances=n, minimum=minimum, maximum=maximum, grace=5)
    requests.post(f"{devcluster.url}/v2/apps", json=definition, timeout=5)
    wait_until(lambda: app(devcluster.url, "/roll")["tasksHealthy"] == n)
    wait_until(lambda: no_deployments(devcluster.url))
    upgraded = {**definition, "container": {**definition["container"],
                                            "docker": {"image": "lhcbdirac:v2"}}}
    response = requests.put(f"{devcluster.url}/v2/apps/roll", json=upgraded, timeout=5)
    assert response.status_code == 200
    samples = _sample_until_done(devcluster.url, "/roll")
    assert len(samples) > 5, "the rollout was not observed"
    min_healthy = math.ceil(n * minimum)
    max_capacity = math.floor(n * (1 + maximum))
    if min_healthy == max_capacity:
        max_capacity += 1  # TaskReplaceActor's one task of over-capacity, so it can start
    assert min(h for h, _ in samples) >= min_healthy
    assert max(t for _, t in samples) <= max_capacity
    assert max(t for _, t in samples) > n, "the upgrade never used its over-capacity"
    final = app(devcluster.url, "/roll", "tasks")
    assert final["tasksHealthy"] == n
    assert {t["version"] for t in final["tasks"]} == {final["version"]}


def test_a_version_that_never_becomes_healthy_never_finishes_and_reverts_on_delete(
    devcluster: launch.RunningCluster,
) -> None:
    definition = docker_app("/bad", instances=2, minimum=0.5, maximum=0.5, grace=2)
    requests.post(f"{devcluster.url}/v2/apps", json=definition, timeout=5)
    wait_until(lambda: app(devcluster.url, "/bad")["tasksHealthy"] == 2)
    wait_until(lambda: no_deployments(devcluster.url))
    good_version = app(devcluster.url, "/bad")["version"]
    broken = {**definition, "container": {**definition["container"],
                                          "docker": {"image": "lhcbdirac:v2-broken"}}}
    requests.put(f"{devcluster.url}/v2/apps/bad", json=broken, timeout=5)
    new_version = app(devcluster.url, "/bad")["version"]

    def new_task_ids() -> set[str]:
        tasks = app(devcluster.url, "/bad", "tasks")["tasks"]
        return {t["id"] for t in tasks if t["version"] == new_version}

    first = wait_until(new_task_ids)
    # Killed by its health checks (grace 2 s, then 2 failures 1 s apart) and relaunched.
    wait_until(lambda: new_task_ids() - first, timeout=20)
    live = app(devcluster.url, "/bad", "tasks", "lastTaskFailure")
    # Mesos reports a health-check kill as TASK_KILLED, which Marathon does not record as a
    # task failure (TaskFailure.isFailureState): the cause shows in the health results.
    assert "lastTaskFailure" not in live

    def new_results() -> list[dict[str, object]]:
        return [r for t in app(devcluster.url, "/bad", "tasks")["tasks"]
                if t["version"] == new_version for r in t.get("healthCheckResults", [])]

    assert not any(r["alive"] for r in wait_until(new_results))
    # Marathon keeps the deployment (and relaunches the task) rather than give up.
    (stuck,) = deployments(devcluster.url)
    assert stuck["affectedApps"] == ["/bad"] and stuck["currentStep"] == 1
    assert stuck["currentActions"][0]["action"] == "RestartApplication"
    assert live["tasksHealthy"] >= 1  # capacity kept during the failure
    # A kill-and-scale on the locked app is refused before anything is killed.
    old_task = next(t["id"] for t in app(devcluster.url, "/bad", "tasks")["tasks"]
                    if t["version"] != new_version)
    refused = requests.delete(f"{devcluster.url}/v2/apps/bad/tasks/{old_task}",
                              params={"scale": "true"}, timeout=5)
    assert refused.status_code == 409
    assert refused.json()["deployments"] == [{"id": stuck["id"]}]
    time.sleep(1)
    assert old_task in {t["id"] for t in app(devcluster.url, "/bad", "tasks")["tasks"]}
    revert = requests.delete(f"{devcluster.url}/v2/deployments/{stuck['id']}", timeout=5)
    assert revert.status_code == 200
    assert revert.json()["deploymentId"] != stuck["id"]
    wait_until(lambda: no_deployments(devcluster.url), timeout=30)
    reverted = app(devcluster.url, "/bad", "tasks")
    assert reverted["container"]["docker"]["image"] == "lhcbdirac:v1"
    # The revert is a config change of its own: the old definition under a new version.
    assert reverted["version"] == revert.json()["version"] > good_version
    assert reverted["versionInfo"]["lastConfigChangeAt"] == reverted["version"]
    wait_until(lambda: app(devcluster.url, "/bad")["tasksHealthy"] == 2)


def test_force_deleting_a_deployment_only_stops_it(devcluster: launch.RunningCluster) -> None:
    requests.post(f"{devcluster.url}/v2/apps",
                  json=docker_app("/stop", image="lhcbdirac:v1-broken"), timeout=5)
    (running,) = wait_until(lambda: deployments(devcluster.url))
    response = requests.delete(f"{devcluster.url}/v2/deployments/{running['id']}",
                               params={"force": "true"}, timeout=5)
    assert response.status_code == 202
    assert no_deployments(devcluster.url)
    assert app(devcluster.url, "/stop")["container"]["docker"]["image"] == "lhcbdirac:v1-broken"


def test_dependencies_start_first(devcluster: launch.RunningCluster) -> None:
    started: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for task in requests.get(f"{devcluster.url}/v2/tasks", timeout=5).json()["tasks"]:
                if task["state"] == "TASK_RUNNING":
                    started.setdefault(task["appId"], time.monotonic())
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        body = {"apps": [
            {**docker_app("portal"), "dependencies": ["/g/config"]},
            docker_app("config"),
        ]}
        requests.put(f"{devcluster.url}/v2/groups/g", json=body, timeout=5)
        wait_until(lambda: no_deployments(devcluster.url), timeout=40)
        wait_until(lambda: len(started) == 2)
    finally:
        stop.set()
        watcher.join()
    assert started["/g/config"] < started["/g/portal"]


def test_an_unknown_image_fails_like_an_unpullable_one(devcluster: launch.RunningCluster) -> None:
    requests.post(f"{devcluster.url}/v2/apps",
                  json=docker_app("/nopull", image="nosuchimage:1"), timeout=5)
    failure = wait_until(
        lambda: app(devcluster.url, "/nopull", "lastTaskFailure").get("lastTaskFailure"))
    assert failure["state"] == "TASK_FAILED"
    assert "nosuchimage" in failure["message"]
