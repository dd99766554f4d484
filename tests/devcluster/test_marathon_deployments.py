"""Deployments as Marathon 1.11 builds and reports them: what a GitOps controller sees when it
PUTs apps. Each test names the Scala source (``src/main/scala/mesosphere/marathon/``) it
follows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from reconciler.devcluster import launch
from tests.devcluster.helpers import (
    NEVER_HEALTHY_CHECK,
    EventLog,
    app,
    deployments,
    no_deployments,
    wait_until,
)

JSON = dict[str, Any]
LOCKED = ("App is locked by one or more deployments. Override with the option '?force=true'. "
          "View details at '/v2/deployments/<DEPLOYMENT_ID>'.")


def _create(url: str, *definitions: JSON) -> None:
    requests.put(f"{url}/v2/apps", json=list(definitions), timeout=5).raise_for_status()
    wait_until(lambda: no_deployments(url))


def _stuck_upgrade(url: str, app_id: str) -> str:
    """Start a rolling upgrade of ``app_id`` that never ends; its deployment id."""
    response = requests.put(f"{url}/v2/apps{app_id}", json={
        "cmd": "sleep 601", "healthChecks": [NEVER_HEALTHY_CHECK]}, timeout=5)
    response.raise_for_status()
    return str(response.json()["deploymentId"])


def test_only_apps_with_an_action_are_locked_and_affected(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    _create(url, {"id": "/b", "cmd": "sleep 600"}, {"id": "/c", "cmd": "sleep 600"})
    c_version = app(url, "/c")["version"]
    # DeploymentPlan.affectedRunSpecIds: only apps that appear in an action; an unchanged app
    # of a bulk PUT gets no step and no lock (MarathonSchedulerActor.deploy -> addLocks).
    bulk = requests.put(f"{url}/v2/apps", json=[
        {"id": "/b", "cmd": "sleep 601", "healthChecks": [NEVER_HEALTHY_CHECK]},
        {"id": "/c", "cmd": "sleep 600"}], timeout=5)
    assert bulk.status_code == 200
    (running,) = deployments(url)
    assert running["affectedApps"] == ["/b"]
    assert [[(a["action"], a["app"]) for a in s["actions"]] for s in running["steps"]] == [
        [("RestartApplication", "/b")]]
    assert app(url, "/c")["deployments"] == [] and app(url, "/c")["version"] == c_version
    assert requests.put(f"{url}/v2/apps/c", json={"cmd": "sleep 602"}, timeout=5).status_code == 200


def test_an_empty_plan_has_no_step_no_lock_and_no_deployment_info(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    _create(url, {"id": "/same", "cmd": "sleep 600"})
    stuck = _stuck_upgrade(url, "/same")
    log = EventLog(url)
    # DeploymentActor has no step to run: deployment_success at once, no deployment_info;
    # GroupManagerImpl.updateRootEither still publishes group_change_success. The empty plan
    # locks nothing (affectedRunSpecIds is empty), so it is not refused.
    definition = {k: v for k, v in app(url, "/same").items()
                  if k in ("cmd", "healthChecks", "instances")}
    again = requests.put(f"{url}/v2/apps/same", json=definition, timeout=5)
    assert again.status_code == 200, again.text
    deployment_id = again.json()["deploymentId"]
    log.wait_for("deployment_success", id=deployment_id)
    assert log.of("group_change_success", version=again.json()["version"])
    assert log.of("api_post_event")
    assert not [e for e in log.of("deployment_info") if e["plan"]["id"] == deployment_id]
    success = log.of("deployment_success", id=deployment_id)[0]
    assert success["plan"]["steps"] == []
    assert [d["id"] for d in deployments(url)] == [stuck]


def test_a_refused_write_gets_the_fixed_lock_text_and_failure_events(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    _create(url, {"id": "/g/locked", "cmd": "sleep 600"})
    stuck = _stuck_upgrade(url, "/g/locked")
    log = EventLog(url)
    refused = requests.put(f"{url}/v2/apps/g/locked", json={"cmd": "sleep 602"}, timeout=5)
    # Exception.scala AppLockedException, written by MarathonExceptionMapper: the message is
    # fixed text, its <DEPLOYMENT_ID> placeholder is not replaced.
    assert (refused.status_code, refused.json()) == (
        409, {"message": LOCKED, "deployments": [{"id": stuck}]})
    # MarathonSchedulerActor.deploy publishes deployment_failed with the reason, and
    # GroupManagerImpl group_change_failed for the parent group; no api_post_event.
    failed = log.wait_for("deployment_failed")
    assert failed["reason"] == LOCKED and set(failed["plan"]) == {"id", "steps", "version"}
    changed = log.wait_for("group_change_failed")
    assert (changed["groupId"], changed["reason"]) == ("/g", LOCKED)
    assert not log.of("api_post_event")


def test_a_forced_write_cancels_the_running_deployment_with_its_reason(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    _create(url, {"id": "/forced", "cmd": "sleep 600"})
    stuck = _stuck_upgrade(url, "/forced")
    log = EventLog(url)
    forced = requests.put(f"{url}/v2/apps/forced", params={"force": "true"},
                          json={"cmd": "sleep 603", "healthChecks": []}, timeout=5)
    assert forced.status_code == 200
    # DeploymentManagerActor.startConflictingDeployment: the stopped deployment fails with
    # DeploymentCanceledException; DeploymentActor reports no step failure on cancel.
    failed = log.wait_for("deployment_failed", id=stuck)
    assert failed["reason"] == "The upgrade has been cancelled"
    log.wait_for("deployment_success", id=forced.json()["deploymentId"])
    assert not log.of("deployment_step_failure")


def test_a_put_of_a_version_puts_that_definition_back(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    _create(url, {"id": "/rb", "cmd": "sleep 600"})
    v1 = app(url, "/rb")["version"]
    requests.put(f"{url}/v2/apps/rb", json={"cmd": "sleep 602"}, timeout=5).raise_for_status()
    wait_until(lambda: no_deployments(url))
    v2 = app(url, "/rb")["version"]
    # AppHelpers.updateOrRollback -> rollback: the stored version becomes the target, stamped
    # as a config change (GroupVersioningUtil), so the app gets a new version.
    back = requests.put(f"{url}/v2/apps/rb", json={"version": v1}, timeout=5)
    assert back.status_code == 200, back.text
    wait_until(lambda: no_deployments(url))
    restored = app(url, "/rb")
    assert restored["cmd"] == "sleep 600" and restored["version"] > v2
    # AppValidation.validateAppUpdateVersion: version goes only with id.
    mixed = requests.put(f"{url}/v2/apps/rb", json={"version": v1, "cmd": "x"}, timeout=5)
    assert (mixed.status_code, mixed.json()["details"]) == (422, [
        {"path": "/", "errors": ["The 'version' field may only be combined with the 'id' field."]}])
    # rollback throws AppNotFoundException(appId) for a version it does not hold.
    unknown = requests.put(f"{url}/v2/apps/rb", json={"version": "2001-01-01T00:00:00.000Z"},
                           timeout=5)
    assert (unknown.status_code, unknown.json()) == (404, {"message": "App '/rb' does not exist"})


def test_a_delete_overrides_locks_and_the_app_is_gone_at_once(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    _create(url, {"id": "/gone/x", "cmd": "sleep 600"})
    stuck = _stuck_upgrade(url, "/gone/x")
    log = EventLog(url)
    # AppsResource.delete: force defaults to true; RootGroup.removeApp takes the app out of
    # the root before its tasks are killed.
    deleted = requests.delete(f"{url}/v2/apps/gone/x", timeout=5)
    assert deleted.status_code == 200
    assert requests.get(f"{url}/v2/apps/gone/x", timeout=5).status_code == 404
    assert log.wait_for("deployment_failed", id=stuck)["reason"] == "The upgrade has been cancelled"
    log.wait_for("app_terminated_event", appId="/gone/x")
    # The group stays (RootGroup.removeApp removes only the app).
    assert requests.get(f"{url}/v2/groups/gone", timeout=5).json()["apps"] == []


def test_a_description_edit_restarts_nothing_and_keeps_the_version(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    _create(url, {"id": "/desc", "cmd": "sleep 600", "description": "one"})
    before = wait_until(lambda: (a := app(url, "/desc", "tasks"))["tasksRunning"] == 1 and a)
    edited = requests.put(f"{url}/v2/apps/desc", json={"description": "two"}, timeout=5)
    assert edited.status_code == 200
    wait_until(lambda: no_deployments(url))
    after = app(url, "/desc", "tasks")
    # 1.11's RAML App and AppDefinition (state/AppDefinition.scala) have no description: the
    # reader drops it, so the edit is no change (empty plan, same version, same tasks).
    assert "description" not in after
    assert after["version"] == before["version"]
    assert [t["id"] for t in after["tasks"]] == [t["id"] for t in before["tasks"]]
    versions = requests.get(f"{url}/v2/apps/desc/versions", timeout=5).json()["versions"]
    assert versions == [before["version"]]


def test_the_url_id_wins_and_an_unknown_version_is_named(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    # AppsResource.canonicalAppUpdateFromJson: the URL id replaces the body's.
    created = requests.put(f"{url}/v2/apps/urlwins", json={"id": "/other", "cmd": "sleep 600"},
                           timeout=5)
    assert created.status_code == 201
    assert requests.get(f"{url}/v2/apps/other", timeout=5).status_code == 404
    assert app(url, "/urlwins")["cmd"] == "sleep 600"
    # AppVersionsResource.show: the version printed by Timestamp.toString.
    missing = requests.get(f"{url}/v2/apps/urlwins/versions/2001-01-01T00:00:00Z", timeout=5)
    assert (missing.status_code, missing.json()) == (
        404, {"message": "App '/urlwins' does not exist in version 2001-01-01T00:00:00.000Z"})


def test_a_refused_write_still_lists_its_version(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    _create(url, {"id": "/kept", "cmd": "sleep 600"})
    _stuck_upgrade(url, "/kept")
    live = app(url, "/kept")
    refused = requests.put(f"{url}/v2/apps/kept", json={"cmd": "sleep 604"}, timeout=5)
    assert refused.status_code == 409
    # GroupManagerImpl.updateRootEither: storeRootVersion runs before deploy refuses the plan,
    # so the refused definition is a stored version, though the app did not change.
    versions = requests.get(f"{url}/v2/apps/kept/versions", timeout=5).json()["versions"]
    assert len(versions) == 3 and versions[0] > live["version"]
    assert app(url, "/kept")["version"] == live["version"]
    refused_app = requests.get(f"{url}/v2/apps/kept/versions/{versions[0]}", timeout=5).json()
    assert refused_app["cmd"] == "sleep 604"
    # ... and the root version with it (GroupRepositoryImpl.storeRootVersion).
    assert requests.get(f"{url}/v2/groups/versions", timeout=5).json()[0] == versions[0]


def test_a_rolling_upgrade_kills_unhealthy_old_tasks_first(
    devcluster: launch.RunningCluster, tmp_path: Path,
) -> None:
    url = devcluster.url
    # A task is unhealthy once the test drops a file named after it.
    check = {"protocol": "COMMAND", "command": {"value": 'test ! -e "$MARK/$MESOS_TASK_ID"'},
             "gracePeriodSeconds": 0, "intervalSeconds": 1, "maxConsecutiveFailures": 1000}
    base = {"id": "/order", "cmd": "sleep 600", "env": {"MARK": str(tmp_path)},
            "healthChecks": [check], "killSelection": "YOUNGEST_FIRST",
            "upgradeStrategy": {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}}
    _create(url, {**base, "instances": 1})
    wait_until(lambda: app(url, "/order")["tasksHealthy"] == 1)
    requests.put(f"{url}/v2/apps/order", json={"instances": 2}, timeout=5).raise_for_status()
    wait_until(lambda: app(url, "/order")["tasksHealthy"] == 2 and no_deployments(url))
    oldest = min(app(url, "/order", "tasks")["tasks"], key=lambda t: t["stagedAt"])
    (tmp_path / oldest["id"]).touch()
    wait_until(lambda: app(url, "/order")["tasksUnhealthy"] == 1)
    log = EventLog(url)
    requests.put(f"{url}/v2/apps/order", json={"cmd": "sleep 601"}, timeout=5).raise_for_status()
    # TaskReplaceActor: killNow = healthy (1) - minHealthy (0), old instances unhealthy first,
    # whatever killSelection says (YOUNGEST_FIRST would pick the healthy one).
    first = log.wait_for("instance_changed_event", condition="Killing")
    assert first["instanceId"] == oldest["id"].rsplit("._app.", 1)[0]
