"""Groups as Marathon 1.11 keeps them: objects in a versioned root, created, changed, scaled,
reverted and deleted through ``/v2/groups``. Each test names the Scala source
(``src/main/scala/mesosphere/marathon/``) it follows."""

from __future__ import annotations

from typing import Any

import requests

from reconciler.devcluster import launch
from tests.devcluster.helpers import EventLog, app, deployments, no_deployments, wait_until

JSON = dict[str, Any]


def _actions(plan: JSON) -> list[list[tuple[str, str]]]:
    return [[(a["action"], a["app"]) for a in s["actions"]] for s in plan["steps"]]


def test_a_group_is_created_once_with_post_and_outlives_its_last_app(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    body = {"id": "/g", "apps": [{"id": "a", "cmd": "sleep 600", "instances": 0}]}
    # GroupsResource.create -> createWithPath: 201 with Location and the deployment header.
    created = requests.post(f"{url}/v2/groups", json=body, timeout=5)
    assert created.status_code == 201, created.text
    assert set(created.json()) == {"version", "deploymentId"}
    assert created.headers["Marathon-Deployment-Id"] == created.json()["deploymentId"]
    assert created.headers["Location"].endswith("/g")
    again = requests.post(f"{url}/v2/groups", json=body, timeout=5)
    assert (again.status_code, again.json()) == (
        409, {"message": "Group /g is already created. Use PUT to change this group."})
    wait_until(lambda: no_deployments(url))
    assert [a["id"] for a in requests.get(f"{url}/v2/groups/g", timeout=5).json()["apps"]] == [
        "/g/a"]
    # An empty group can be created on its own (RootGroup.putGroup).
    assert requests.post(f"{url}/v2/groups", json={"id": "/empty"}, timeout=5).status_code == 201
    empty = requests.get(f"{url}/v2/groups/empty", timeout=5).json()
    assert (empty["apps"], empty["groups"]) == ([], [])
    # RootGroup.removeApp leaves the group, empty, with every group key.
    requests.delete(f"{url}/v2/apps/g/a", timeout=5).raise_for_status()
    group = requests.get(f"{url}/v2/groups/g", timeout=5)
    assert group.status_code == 200
    assert set(group.json()) == {"id", "apps", "groups", "pods", "dependencies", "version",
                                 "enforceRole"}
    assert group.json()["apps"] == []


def test_every_group_carries_the_version_of_the_last_root_change(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    requests.put(f"{url}/v2/apps/a/x", json={"cmd": "sleep 600", "instances": 0},
                 timeout=5).raise_for_status()
    second = requests.put(f"{url}/v2/apps/b/y", json={"cmd": "sleep 600", "instances": 0},
                          timeout=5)
    # GroupVersioningUtil.updateVersionInfoForChangedApps -> RootGroup.updateVersion.
    assert requests.get(f"{url}/v2/groups/a", timeout=5).json()["version"] == second.json()[
        "version"]
    assert requests.get(f"{url}/v2/groups", timeout=5).json()["version"] == second.json()[
        "version"]


def test_group_versions_list_every_root_version_holding_the_group(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    first = requests.put(f"{url}/v2/groups/v", json={"apps": [
        {"id": "a", "cmd": "sleep 600", "instances": 0}]}, timeout=5).json()["version"]
    second = requests.put(f"{url}/v2/apps/other", json={"cmd": "sleep 600", "instances": 0},
                          timeout=5).json()["version"]
    # GroupManagerImpl.versions: a bare array, newest first, growing with any root change.
    versions = requests.get(f"{url}/v2/groups/v/versions", timeout=5).json()
    assert versions[:2] == [second, first]
    # ListRootVersionRE: the root's versions.
    assert requests.get(f"{url}/v2/groups/versions", timeout=5).json()[:2] == [second, first]
    old = requests.get(f"{url}/v2/groups/v/versions/{first}", timeout=5).json()
    assert old["id"] == "/v" and [a["id"] for a in old["apps"]] == ["/v/a"]
    # RestResource.unknownGroup, without the version.
    for path in ("/v2/groups/nope/versions", "/v2/groups/v/versions/2001-01-01T00:00:00.000Z"):
        missing = requests.get(url + path, timeout=5)
        assert missing.status_code == 404
    assert requests.get(f"{url}/v2/groups/nope/versions", timeout=5).json() == {
        "message": "Group '/nope' does not exist"}


def test_groups_in_an_update_replace_the_subgroups(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    requests.put(f"{url}/v2/groups/g", json={"groups": [
        {"id": "s1", "apps": [{"id": "a", "cmd": "sleep 600", "instances": 0}]},
        {"id": "s2", "apps": [{"id": "b", "cmd": "sleep 600", "instances": 0}]}]},
        timeout=5).raise_for_status()
    wait_until(lambda: no_deployments(url))
    # UpdateGroupStructureOp.execute: subgroups not listed go, with their apps.
    keep = {"groups": [{"id": "s1", "apps": [{"id": "a", "cmd": "sleep 600", "instances": 0}]}]}
    plan = requests.put(f"{url}/v2/groups/g", params={"dryRun": "true"}, json=keep,
                        timeout=5).json()
    assert _actions(plan) == [[("StopApplication", "/g/s2/b")]]
    requests.put(f"{url}/v2/groups/g", json=keep, timeout=5).raise_for_status()
    assert requests.get(f"{url}/v2/groups/g/s2", timeout=5).status_code == 404
    assert requests.get(f"{url}/v2/apps/g/s1/a", timeout=5).status_code == 200


def test_a_group_delete_stops_every_app_below_it_in_one_step(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    requests.put(f"{url}/v2/groups/d", json={"apps": [
        {"id": "a", "cmd": "sleep 600"}, {"id": "b", "cmd": "sleep 600"}]},
        timeout=5).raise_for_status()
    wait_until(lambda: no_deployments(url))
    log = EventLog(url)
    # GroupsResource.delete: the group leaves the root at once; one step of StopApplication.
    deleted = requests.delete(f"{url}/v2/groups/d", timeout=5)
    assert deleted.status_code == 200 and set(deleted.json()) == {"version", "deploymentId"}
    assert requests.get(f"{url}/v2/groups/d", timeout=5).status_code == 404
    success = log.wait_for("deployment_success", id=deleted.json()["deploymentId"])
    assert _actions(success["plan"]) == [[("StopApplication", "/d/a"), ("StopApplication", "/d/b")]]
    # GroupManagerImpl publishes group_change_success for the URL group's parent.
    assert log.of("group_change_success", groupId="/", version=deleted.json()["version"])
    missing = requests.delete(f"{url}/v2/groups/d", timeout=5)
    assert (missing.status_code, missing.json()) == (404, {"message": "Group '/d' does not exist"})


def test_scale_by_scales_every_app_of_the_group(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    requests.put(f"{url}/v2/groups/sc", json={"apps": [
        {"id": "a", "cmd": "sleep 600", "instances": 1},
        {"id": "b", "cmd": "sleep 600", "instances": 2}]}, timeout=5).raise_for_status()
    wait_until(lambda: no_deployments(url))
    before = app(url, "/sc/a")
    # GroupApiService.updateGroup (scaleChange): instances = ceil(instances * scaleBy).
    scaled = requests.put(f"{url}/v2/groups/sc", json={"scaleBy": 1.5}, timeout=5)
    assert scaled.status_code == 200, scaled.text
    wait_until(lambda: no_deployments(url))
    after = app(url, "/sc/a")
    assert (after["instances"], app(url, "/sc/b")["instances"]) == (2, 3)
    assert after["versionInfo"]["lastConfigChangeAt"] == before["versionInfo"]["lastConfigChangeAt"]
    # Group.validNestedGroupUpdateWithBase: scaleBy must be alone.
    mixed = requests.put(f"{url}/v2/groups/sc", json={"id": "/sc", "scaleBy": 2}, timeout=5)
    assert (mixed.status_code, mixed.json()["details"]) == (422, [
        {"path": "/scaleBy", "errors": ["not allowed in conjunction with other properties."]}])


def test_a_group_version_can_be_put_back(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    first = requests.put(f"{url}/v2/groups/rv", json={"apps": [
        {"id": "a", "cmd": "sleep 600", "instances": 0}]}, timeout=5).json()["version"]
    wait_until(lambda: no_deployments(url))
    requests.put(f"{url}/v2/groups/rv", json={"apps": [
        {"id": "b", "cmd": "sleep 600", "instances": 0}]}, timeout=5).raise_for_status()
    wait_until(lambda: no_deployments(url))
    # GroupApiService.updateGroup (revertToOlderVersion): the group as it was in that version.
    back = requests.put(f"{url}/v2/groups/rv", json={"version": first}, timeout=5)
    assert back.status_code == 200, back.text
    wait_until(lambda: no_deployments(url))
    apps = requests.get(f"{url}/v2/groups/rv", timeout=5).json()["apps"]
    assert [a["id"] for a in apps] == ["/rv/a"]
    unknown = requests.put(f"{url}/v2/groups/rv", json={"version": "2001-01-01T00:00:00.000Z"},
                           timeout=5)
    assert (unknown.status_code, unknown.json()) == (422, {
        "message": "Group /rv not available in version 2001-01-01T00:00:00.000Z"})
    assert not deployments(url)


def test_group_apps_carry_no_counts_unless_embedded(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    requests.put(f"{url}/v2/apps/e/a", json={"cmd": "sleep 600", "instances": 0},
                 timeout=5).raise_for_status()
    # InfoEmbedResolver.resolveAppGroup: app fields only from group.apps.<embed>.
    (plain,) = requests.get(f"{url}/v2/groups/e", timeout=5).json()["apps"]
    assert "tasksRunning" not in plain and "deployments" not in plain
    (counted,) = requests.get(f"{url}/v2/groups/e", params={"embed": "group.apps.counts"},
                              timeout=5).json()["apps"]
    assert counted["tasksRunning"] == 0
