"""The rest of the API: TCP and COMMAND health checks, restart, bulk PUT, PATCH, task deletion,
and the deployment and task events an event-stream client sees."""

from __future__ import annotations

import json
import sys
import threading

import requests

from reconciler.devcluster import launch
from tests.devcluster.helpers import app, no_deployments, wait_until

_LISTEN = (f"{sys.executable} -c \"import socket,os,time; s=socket.socket(); "
           f"s.bind(('127.0.0.1', int(os.environ['PORT0']))); s.listen(); time.sleep(600)\"")


def test_tcp_and_command_health_checks_are_performed(devcluster: launch.RunningCluster) -> None:
    requests.post(f"{devcluster.url}/v2/apps", json={
        "id": "/tcp", "cmd": _LISTEN,
        "healthChecks": [{"protocol": "TCP", "intervalSeconds": 1, "gracePeriodSeconds": 5}],
    }, timeout=5)
    requests.post(f"{devcluster.url}/v2/apps", json={
        "id": "/cmdcheck", "cmd": "sleep 600",
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "test -n \"$MESOS_TASK_ID\""},
                          "intervalSeconds": 1, "gracePeriodSeconds": 5}],
    }, timeout=5)
    requests.post(f"{devcluster.url}/v2/apps", json={
        "id": "/cmdfail", "cmd": "sleep 600",
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "false"},
                          "intervalSeconds": 1, "gracePeriodSeconds": 1,
                          "maxConsecutiveFailures": 1}],
    }, timeout=5)
    wait_until(lambda: app(devcluster.url, "/tcp")["tasksHealthy"] == 1)
    wait_until(lambda: app(devcluster.url, "/cmdcheck")["tasksHealthy"] == 1)
    first = wait_until(lambda: app(devcluster.url, "/cmdfail", "tasks")["tasks"])[0]["id"]
    # Killed once its check fails after the grace period, and relaunched.
    wait_until(lambda: (tasks := app(devcluster.url, "/cmdfail", "tasks")["tasks"])
               and tasks[0]["id"] != first, timeout=15)
    results = app(devcluster.url, "/tcp", "tasks")["tasks"][0]["healthCheckResults"]
    assert results[0]["alive"] is True and results[0]["consecutiveFailures"] == 0


def test_restart_bulk_put_patch_and_task_deletion(devcluster: launch.RunningCluster) -> None:
    bulk = requests.put(f"{devcluster.url}/v2/apps", json=[
        {"id": "/b/one", "cmd": "sleep 600"}, {"id": "/b/two", "cmd": "sleep 600"}], timeout=5)
    assert bulk.status_code == 200 and set(bulk.json()) == {"deploymentId", "version"}
    wait_until(lambda: no_deployments(devcluster.url))
    before = app(devcluster.url, "/b/one", "tasks")
    restart = requests.post(f"{devcluster.url}/v2/apps/b/one/restart", timeout=5)
    assert set(restart.json()) == {"deploymentId", "version"}
    wait_until(lambda: no_deployments(devcluster.url))
    after = app(devcluster.url, "/b/one", "tasks")
    assert {t["id"] for t in after["tasks"]}.isdisjoint({t["id"] for t in before["tasks"]})
    # VersionInfo.withRestartChange: a restart is a config change, not a scale.
    assert after["version"] == restart.json()["version"] > before["version"]
    assert after["versionInfo"]["lastConfigChangeAt"] == after["version"]
    assert after["versionInfo"]["lastScalingAt"] == before["versionInfo"]["lastScalingAt"]

    patched = requests.patch(f"{devcluster.url}/v2/apps/b/two", json={"labels": {"x": "y"}},
                             timeout=5)
    assert patched.status_code == 200
    wait_until(lambda: no_deployments(devcluster.url))
    two = app(devcluster.url, "/b/two", "tasks")
    assert two["labels"] == {"x": "y"} and two["cmd"] == "sleep 600"
    missing = requests.patch(f"{devcluster.url}/v2/apps/b/none", json={"cpus": 1}, timeout=5)
    assert missing.status_code == 404

    task_id = two["tasks"][0]["id"]
    unknown = requests.post(f"{devcluster.url}/v2/tasks/delete",
                            json={"ids": [task_id, "not_known"]}, timeout=5)
    # TasksResource.killTasks parses every id first (Task.Id.parse): "not_known" has the shape
    # of a legacy <app>_<uuid> id, so UUID.fromString refuses it, 422, and nothing is killed.
    assert (unknown.status_code, unknown.json()) == (
        422, {"message": "Invalid UUID string: known"})
    assert app(devcluster.url, "/b/two", "tasks")["tasks"][0]["id"] == task_id  # none killed
    killed = requests.post(f"{devcluster.url}/v2/tasks/delete", json={"ids": [task_id]},
                           timeout=5)
    assert killed.status_code == 200
    assert [t["id"] for t in killed.json()["tasks"]] == [task_id]
    # Without scale, Marathon replaces the killed task.
    wait_until(lambda: (tasks := app(devcluster.url, "/b/two", "tasks")["tasks"])
               and tasks[0]["id"] != task_id and tasks[0]["state"] == "TASK_RUNNING")


def test_event_stream_carries_deployment_task_and_health_events(
    devcluster: launch.RunningCluster,
) -> None:
    seen: list[dict[str, object]] = []
    ready = threading.Event()

    def follow() -> None:
        with requests.get(f"{devcluster.url}/v2/events", stream=True, timeout=30) as stream:
            for line in stream.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    seen.append(event)
                    ready.set()
                    if event["eventType"] == "app_terminated_event":
                        return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert ready.wait(10)
    requests.post(f"{devcluster.url}/v2/apps", json={
        "id": "/ev", "cmd": _LISTEN,
        "healthChecks": [{"protocol": "TCP", "intervalSeconds": 1, "gracePeriodSeconds": 5}],
    }, timeout=5)
    wait_until(lambda: no_deployments(devcluster.url) and app(devcluster.url, "/ev")
               ["tasksHealthy"] == 1)
    requests.delete(f"{devcluster.url}/v2/apps/ev", timeout=5)
    follower.join(30)
    types = [e["eventType"] for e in seen]
    for expected in ("event_stream_attached", "api_post_event", "deployment_info",
                     "status_update_event", "health_status_changed_event",
                     "deployment_step_success", "deployment_success", "app_terminated_event"):
        assert expected in types, expected
    # InstanceChangedEventsGenerator: TASK_STAGING, TASK_STARTING, then TASK_RUNNING.
    updates = [e["taskStatus"] for e in seen if e["eventType"] == "status_update_event"]
    assert updates[:3] == ["TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"]
    running = next(e for e in seen if e["eventType"] == "status_update_event"
                   and e["taskStatus"] == "TASK_RUNNING")
    assert running["appId"] == "/ev"
    success = next(e for e in seen if e["eventType"] == "deployment_success")
    # DeploymentPlanConversion: an event's plan is RAML DeploymentPlan (id, steps, version).
    assert set(success["plan"]) == {"id", "steps", "version"}  # type: ignore[arg-type]
    assert {"action": "StartApplication", "app": "/ev"} in [
        a for s in success["plan"]["steps"] for a in s["actions"]]  # type: ignore[index]
