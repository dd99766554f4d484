"""The dev cluster answers like Marathon: shapes, defaults, status codes and messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from reconciler.devcluster import launch
from tests.devcluster.helpers import app, docker_app, no_deployments, wait_until


def _reference(marathon_reference: Path, name: str) -> object:
    return json.loads((marathon_reference / "examples" / name).read_text())


def test_ping_and_info(devcluster: launch.RunningCluster, marathon_reference: Path) -> None:
    assert requests.get(f"{devcluster.url}/ping", timeout=5).text == "pong"
    info = requests.get(f"{devcluster.url}/v2/info", timeout=5).json()
    reference = _reference(marathon_reference, "info.json")
    assert isinstance(reference, dict)
    for key in ("name", "version", "elected", "leader", "frameworkId", "marathon_config",
                "zookeeper_config", "http_config"):
        assert key in info and key in reference
    assert info["name"] == "marathon"


def test_created_app_has_every_default_and_an_assigned_service_port(
    devcluster: launch.RunningCluster, marathon_reference: Path
) -> None:
    response = requests.post(f"{devcluster.url}/v2/apps",
                             json={"id": "web", "cmd": "sleep 600", "instances": 0}, timeout=5)
    assert response.status_code == 201
    created = response.json()
    assert created["deployments"] and "id" in created["deployments"][0]
    live = app(devcluster.url, "/web")
    assert live["id"] == "/web"
    expected = {"cpus": 1, "mem": 128, "disk": 0, "gpus": 0, "backoffSeconds": 1,
                "backoffFactor": 1.15, "maxLaunchDelaySeconds": 300, "requirePorts": False,
                "killSelection": "YOUNGEST_FIRST", "executor": "", "constraints": [],
                "healthChecks": [], "dependencies": [], "labels": {}, "env": {},
                "networks": [{"mode": "host"}],
                "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
                "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}}
    for key, value in expected.items():
        assert live[key] == value, key
    (port,) = live["portDefinitions"]
    assert 10000 <= port["port"] <= 20000 and port["protocol"] == "tcp"
    # Every non-deprecated key Marathon's reference app listing shows is present.
    listing = _reference(marathon_reference, "app_list.json")
    assert isinstance(listing, dict)
    deprecated = {"ports", "uris", "args", "user", "container", "acceptedResourceRoles"}
    missing = set(listing["apps"][0]) - deprecated - set(live)
    assert not missing
    assert live["version"] == live["versionInfo"]["lastConfigChangeAt"]


def test_service_ports_stay_with_the_app_and_are_unique(devcluster: launch.RunningCluster) -> None:
    for name in ("a", "b"):
        requests.post(f"{devcluster.url}/v2/apps",
                      json={"id": name, "cmd": "sleep 600", "instances": 0}, timeout=5)
    wait_until(lambda: no_deployments(devcluster.url))
    a_port = app(devcluster.url, "/a")["portDefinitions"][0]["port"]
    b_port = app(devcluster.url, "/b")["portDefinitions"][0]["port"]
    assert a_port != b_port
    requests.put(f"{devcluster.url}/v2/apps/a", json={"cmd": "sleep 601"}, timeout=5)
    wait_until(lambda: no_deployments(devcluster.url))
    assert app(devcluster.url, "/a")["portDefinitions"][0]["port"] == a_port


def test_errors_carry_marathons_status_and_message(devcluster: launch.RunningCluster) -> None:
    missing = requests.get(f"{devcluster.url}/v2/apps/nope", timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {"message": "App '/nope' does not exist"}
    for definition, path in (({"id": "/Bad_Id", "cmd": "true"}, "/id"),
                             ({"id": "/ok", "cmd": "true", "cpus": -1}, "/cpus")):
        invalid = requests.post(f"{devcluster.url}/v2/apps", json=definition, timeout=5)
        assert invalid.status_code == 422
        body = invalid.json()
        assert body["message"] in ("Object is not valid", "Invalid JSON")
        assert path in {d["path"] for d in body["details"]}
        assert all(isinstance(d["errors"], list) and d["errors"] for d in body["details"])
    requests.post(f"{devcluster.url}/v2/apps", json={"id": "dup", "cmd": "sleep 600",
                                                     "instances": 0}, timeout=5)
    again = requests.post(f"{devcluster.url}/v2/apps", json={"id": "dup", "cmd": "sleep 600"},
                          timeout=5)
    assert again.status_code == 409


def test_a_change_to_a_locked_app_gets_409_unless_forced(devcluster: launch.RunningCluster) -> None:
    # A broken image keeps its deployment running, so the app stays locked.
    requests.post(f"{devcluster.url}/v2/apps",
                  json=docker_app("locked", image="lhcbdirac:v1-broken"), timeout=5)
    blocked = requests.put(f"{devcluster.url}/v2/apps/locked", json={"instances": 2}, timeout=5)
    assert blocked.status_code == 409
    body = blocked.json()
    assert body["message"].startswith("App is locked by one or more deployments.")
    assert len(body["deployments"]) == 1 and "id" in body["deployments"][0]
    forced = requests.put(f"{devcluster.url}/v2/apps/locked", params={"force": "true"},
                          json={"instances": 0}, timeout=5)
    assert forced.status_code == 200
    assert set(forced.json()) == {"deploymentId", "version"}
    wait_until(lambda: no_deployments(devcluster.url))


def test_a_put_that_changes_nothing_restarts_nothing(devcluster: launch.RunningCluster) -> None:
    requests.post(f"{devcluster.url}/v2/apps", json={"id": "same", "cmd": "sleep 600"}, timeout=5)
    wait_until(lambda: app(devcluster.url, "/same")["tasksRunning"] == 1)
    wait_until(lambda: no_deployments(devcluster.url))
    before = app(devcluster.url, "/same", "tasks")
    requests.put(f"{devcluster.url}/v2/apps/same", json={"cmd": "sleep 600"}, timeout=5)
    wait_until(lambda: no_deployments(devcluster.url))
    after = app(devcluster.url, "/same", "tasks")
    assert [t["id"] for t in after["tasks"]] == [t["id"] for t in before["tasks"]]
    assert after["version"] == before["version"]


def test_scaling_moves_only_last_scaling_at(devcluster: launch.RunningCluster) -> None:
    requests.post(f"{devcluster.url}/v2/apps", json={"id": "s", "cmd": "sleep 600",
                                                     "instances": 1}, timeout=5)
    wait_until(lambda: no_deployments(devcluster.url))
    first = app(devcluster.url, "/s")
    requests.put(f"{devcluster.url}/v2/apps/s", json={"instances": 2}, timeout=5)
    wait_until(lambda: no_deployments(devcluster.url))
    scaled = app(devcluster.url, "/s")
    assert scaled["tasksRunning"] == 2
    assert scaled["versionInfo"]["lastConfigChangeAt"] == first["versionInfo"]["lastConfigChangeAt"]
    assert scaled["versionInfo"]["lastScalingAt"] > first["versionInfo"]["lastScalingAt"]
    requests.put(f"{devcluster.url}/v2/apps/s", json={"cmd": "sleep 601"}, timeout=5)
    wait_until(lambda: no_deployments(devcluster.url))
    changed = app(devcluster.url, "/s")
    assert changed["versionInfo"]["lastConfigChangeAt"] > first["versionInfo"]["lastConfigChangeAt"]
    versions = requests.get(f"{devcluster.url}/v2/apps/s/versions", timeout=5).json()["versions"]
    assert len(versions) == 3 and versions[0] == changed["version"]
    old = requests.get(f"{devcluster.url}/v2/apps/s/versions/{versions[-1]}", timeout=5).json()
    assert old["cmd"] == "sleep 600" and old["instances"] == 1


def test_filters_embeds_groups_tasks_and_queue(devcluster: launch.RunningCluster) -> None:
    for app_id, team in (("/dirac/fc", "dm"), ("/dirac/web", "web"), ("/other", "dm")):
        requests.post(f"{devcluster.url}/v2/apps", json={
            "id": app_id, "cmd": "sleep 600", "labels": {"team": team}}, timeout=5)
    wait_until(lambda: no_deployments(devcluster.url))
    by_id = requests.get(f"{devcluster.url}/v2/apps", params={"id": "/dirac"}, timeout=5).json()
    assert sorted(a["id"] for a in by_id["apps"]) == ["/dirac/fc", "/dirac/web"]
    by_label = requests.get(f"{devcluster.url}/v2/apps", params={"label": "team==dm"},
                            timeout=5).json()
    assert sorted(a["id"] for a in by_label["apps"]) == ["/dirac/fc", "/other"]
    # Every selector form of apps.raml; each needs the label to exist.
    for selector, expected in (("team!=dm", ["/dirac/web"]), ("owner!=nobody", []),
                               ("team in (web, ops)", ["/dirac/web"]),
                               ("team notin (web, ops)", ["/dirac/fc", "/other"]),
                               ("team, team!=web", ["/dirac/fc", "/other"])):
        selected = requests.get(f"{devcluster.url}/v2/apps", params={"label": selector},
                                timeout=5).json()["apps"]
        assert sorted(a["id"] for a in selected) == expected, selector
    embedded = requests.get(f"{devcluster.url}/v2/apps", params=[
        ("embed", "apps.tasks"), ("embed", "apps.counts")], timeout=5).json()["apps"]
    # apps.counts means the tasks* fields (always there); Marathon has no "counts" object.
    assert all(len(a["tasks"]) == 1 and a["tasksRunning"] == 1 and "counts" not in a
               for a in embedded)
    plain = requests.get(f"{devcluster.url}/v2/apps", timeout=5).json()["apps"]
    assert all("tasks" not in a and a["deployments"] == [] for a in plain)
    by_cmd = requests.get(f"{devcluster.url}/v2/apps", params={"cmd": "SLEEP"}, timeout=5)
    assert len(by_cmd.json()["apps"]) == 3
    group = requests.get(f"{devcluster.url}/v2/groups/dirac", timeout=5).json()
    assert group["id"] == "/dirac" and len(group["apps"]) == 2
    root = requests.get(f"{devcluster.url}/v2/groups", timeout=5).json()
    assert [g["id"] for g in root["groups"]] == ["/dirac"]
    tasks = requests.get(f"{devcluster.url}/v2/tasks", timeout=5).json()["tasks"]
    assert len(tasks) == 3
    task = tasks[0]
    scaled = requests.delete(f"{devcluster.url}/v2/apps{task['appId']}/tasks/{task['id']}",
                             params={"scale": "true"}, timeout=5)
    assert set(scaled.json()) == {"deploymentId", "version"}
    wait_until(lambda: no_deployments(devcluster.url))
    assert app(devcluster.url, task["appId"])["instances"] == 0
    assert "queue" in requests.get(f"{devcluster.url}/v2/queue", timeout=5).json()


def _actions(steps: list[dict[str, Any]]) -> list[list[tuple[str, str]]]:
    return [[(a["action"], a["app"]) for a in step["actions"]] for step in steps]


def test_group_put_with_dry_run_changes_nothing(devcluster: launch.RunningCluster) -> None:
    body = {"apps": [{"id": "a", "cmd": "sleep 600", "instances": 0},
                     {"id": "b", "cmd": "sleep 600", "instances": 0, "dependencies": ["a"]}]}
    plan = requests.put(f"{devcluster.url}/v2/groups/g", params={"dryRun": "true"}, json=body,
                        timeout=5).json()
    # GroupsResource.update with dryRun answers RAML DeploymentSteps only; the plan is
    # DeploymentPlan.apply's: all new apps started in one step, then scaled (even to 0) by
    # dependency class.
    assert set(plan) == {"steps"}
    assert _actions(plan["steps"]) == [
        [("StartApplication", "/g/a"), ("StartApplication", "/g/b")],
        [("ScaleApplication", "/g/a")], [("ScaleApplication", "/g/b")]]
    assert requests.get(f"{devcluster.url}/v2/apps/g/a", timeout=5).status_code == 404
    done = requests.put(f"{devcluster.url}/v2/groups/g", json=body, timeout=5)
    assert set(done.json()) == {"deploymentId", "version"}
    wait_until(lambda: no_deployments(devcluster.url))
    assert app(devcluster.url, "/g/b")["dependencies"] == ["/g/a"]
    # The group's app list is replaced: an app left out is stopped, in the plan and for real.
    only_a = {"apps": body["apps"][:1]}
    plan = requests.put(f"{devcluster.url}/v2/groups/g", params={"dryRun": "true"},
                        json=only_a, timeout=5).json()
    assert _actions(plan["steps"]) == [[("StopApplication", "/g/b")]]
    requests.put(f"{devcluster.url}/v2/groups/g", json=only_a, timeout=5).raise_for_status()
    wait_until(lambda: no_deployments(devcluster.url))
    assert requests.get(f"{devcluster.url}/v2/apps/g/b", timeout=5).status_code == 404


def test_service_ports_are_taken_only_by_writes_that_take_effect(
    devcluster: launch.RunningCluster,
) -> None:
    def create(app_id: str) -> int:
        response = requests.post(f"{devcluster.url}/v2/apps", json={
            "id": app_id, "cmd": "sleep 600", "instances": 0,
            "portDefinitions": [{"port": 0}]}, timeout=5)
        assert response.status_code == 201, response.text
        return int(app(devcluster.url, app_id)["portDefinitions"][0]["port"])

    first = create("/ports/first")
    for _ in range(3):  # dry runs plan with ports but keep none
        requests.put(f"{devcluster.url}/v2/groups/dry", params={"dryRun": "true"}, json={
            "apps": [{"id": "x", "cmd": "sleep 600", "portDefinitions": [{"port": 0}]}]},
            timeout=5).raise_for_status()
    refused = requests.put(f"{devcluster.url}/v2/apps", json=[  # one invalid app: nothing
        {"id": "/ports/ok", "cmd": "sleep 600", "portDefinitions": [{"port": 0}]},
        {"id": "/ports/bad", "cmd": "sleep 600", "cpus": -1}], timeout=5)
    assert refused.status_code == 422
    assert create("/ports/second") == first + 1
