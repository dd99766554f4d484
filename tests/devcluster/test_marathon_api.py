"""Endpoints, errors and response shapes as Marathon 1.11 answers them. Each test names the
Scala source (``src/main/scala/mesosphere/marathon/``) it follows."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from reconciler.devcluster import labels as dl
from reconciler.devcluster import launch
from tests.devcluster.helpers import EventLog, app, no_deployments, wait_until

JSON = dict[str, Any]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"


def _running(url: str, app_id: str, count: int = 1) -> JSON:
    found: JSON = wait_until(lambda: (a := app(url, app_id, "tasks"))["tasksRunning"] == count
                             and no_deployments(url) and a)
    return found


def test_leader_is_this_instance_and_abdication_is_acknowledged(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    info = requests.get(f"{url}/v2/info", timeout=5).json()
    # api/v2/LeaderResource.scala: index and delete.
    leader = requests.get(f"{url}/v2/leader", timeout=5)
    assert (leader.status_code, leader.json()) == (200, {"leader": info["leader"]})
    abdicated = requests.delete(f"{url}/v2/leader", timeout=5)
    assert (abdicated.status_code, abdicated.json()) == (200, {"message": "Leadership abdicated"})


def test_info_has_every_field_of_marathon_1_11(devcluster: launch.RunningCluster) -> None:
    info = requests.get(f"{devcluster.url}/v2/info", timeout=5).json()
    # api/v2/InfoResource.scala index: no event_subscriber in 1.11; options written as null.
    assert list(info) == ["name", "version", "buildref", "elected", "leader", "frameworkId",
                          "marathon_config", "zookeeper_config", "http_config"]
    for key in ("checkpoint", "executor", "failover_timeout", "features", "framework_name",
                "ha", "hostname", "local_port_max", "local_port_min", "master",
                "mesos_role", "mesos_user", "task_launch_timeout", "webui_url",
                "new_group_enforce_role", "maintenance_mode", "mesos_leader_ui_url"):
        assert key in info["marathon_config"], key
    assert info["zookeeper_config"]["zk_max_versions"] == 50
    assert set(info["http_config"]) == {"http_port", "https_port"}


def test_task_ids_are_instance_ids_with_an_incarnation(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    requests.post(f"{url}/v2/apps", json={"id": "/ids/app", "cmd": "sleep 600"},
                  timeout=5).raise_for_status()
    task = _running(url, "/ids/app")["tasks"][0]
    # core/instance/Instance.scala (Id.forRunSpec, time-based UUIDs) and core/task/Task.scala
    # (TaskIdWithIncarnation): <app path with _>.instance-<uuid>._app.<incarnation>.
    assert re.fullmatch(rf"ids_app\.instance-{UUID}\._app\.1", task["id"]), task["id"]


def test_killing_the_tasks_of_an_app(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    requests.post(f"{url}/v2/apps", json={"id": "/k", "cmd": "sleep 600", "instances": 2},
                  timeout=5).raise_for_status()
    before = _running(url, "/k", 2)["tasks"]
    # api/v2/AppTasksResource.scala deleteMany: every (or host's) task, replaced; with scale
    # the app is scaled down by the number killed.
    both = requests.delete(f"{url}/v2/apps/k/tasks", params={"host": "elsewhere"}, timeout=5)
    assert (both.status_code, both.json()) == (200, {"tasks": []})
    killed = requests.delete(f"{url}/v2/apps/k/tasks", timeout=5)
    assert sorted(t["id"] for t in killed.json()["tasks"]) == sorted(t["id"] for t in before)
    _running(url, "/k", 2)
    scaled = requests.delete(f"{url}/v2/apps/k/tasks", params={"scale": "true", "host": "*"},
                             timeout=5)
    assert set(scaled.json()) == {"version", "deploymentId"}
    wait_until(lambda: no_deployments(url) and not app(url, "/k", "tasks")["tasks"])
    assert app(url, "/k")["instances"] == 0
    both_flags = requests.delete(f"{url}/v2/apps/k/tasks",
                                 params={"scale": "true", "wipe": "true"}, timeout=5)
    assert (both_flags.status_code, both_flags.json()) == (
        400, {"message": "You cannot use scale and wipe at the same time."})
    # TaskKiller.killAndScale: nothing to kill at all is a PathNotFoundException.
    none = requests.delete(f"{url}/v2/apps/k/tasks", params={"scale": "true"}, timeout=5)
    assert (none.status_code, none.json()) == (404, {"message": "Path '/k' does not exist"})


def test_unknown_task_ids_are_skipped_when_killing(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    requests.post(f"{url}/v2/apps", json={"id": "/skip", "cmd": "sleep 600"},
                  timeout=5).raise_for_status()
    task_id = _running(url, "/skip")["tasks"][0]["id"]
    other = task_id.replace(task_id.split(".instance-")[1][:8], "00000000")
    # api/v2/TasksResource.scala killTasks: ids that parse but match nothing are skipped.
    killed = requests.post(f"{url}/v2/tasks/delete", json={"ids": [task_id, other]}, timeout=5)
    assert killed.status_code == 200
    assert [t["id"] for t in killed.json()["tasks"]] == [task_id]
    # Task.Id.parse: an id of no known shape is a MatchError, 400.
    bad = requests.post(f"{url}/v2/tasks/delete", json={"ids": ["foo"]}, timeout=5)
    assert (bad.status_code, bad.json()) == (400, {
        "message": "Invalid task id 'foo'. [taskId foo no valid identifier "
                   "(of class java.lang.String)]"})
    # AppTasksResource.deleteOne with scale: an unknown task scales nothing, still 200.
    scaled = requests.delete(f"{url}/v2/apps/skip/tasks/{other}", params={"scale": "true"},
                             timeout=5)
    assert scaled.status_code == 200 and set(scaled.json()) == {"version", "deploymentId"}


def test_resetting_the_launch_delay(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    # api/v2/QueueResource.scala resetDelay: 204 when the app waits to launch, else 404.
    missing = requests.delete(f"{url}/v2/queue/nothing/delay", timeout=5)
    assert (missing.status_code, missing.json()) == (
        404, {"message": "Application /nothing not found in tasks queue."})
    requests.post(f"{url}/v2/apps", json={"id": "/crash", "cmd": "exit 1",
                                          "backoffSeconds": 60}, timeout=5).raise_for_status()
    wait_until(lambda: app(url, "/crash").get("lastTaskFailure")
               or app(url, "/crash", "lastTaskFailure").get("lastTaskFailure"))
    reset = requests.delete(f"{url}/v2/queue/crash/delay", timeout=5)
    assert (reset.status_code, reset.content) == (204, b"")


def test_request_errors_as_marathon_maps_them(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    # api/MarathonExceptionMapper.scala: Jackson parse errors.
    broken = requests.post(f"{url}/v2/apps", data=b'{"id":"/test"', timeout=5,
                           headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["message"] == "Invalid JSON"
    assert isinstance(broken.json()["details"], str)
    empty = requests.post(f"{url}/v2/apps", data=b"", timeout=5,
                          headers={"Content-Type": "application/json"})
    assert (empty.status_code, empty.json()["message"]) == (
        400, "Please specify data in JSON format")
    # The generated RAML reader checks strings.PathId's pattern before any model validation.
    upper = requests.post(f"{url}/v2/apps", json={"id": "/Foo", "cmd": "x"}, timeout=5)
    assert (upper.status_code, upper.json()) == (422, {
        "message": "Invalid JSON", "details": [{"path": "/id", "errors": ["error.pattern"]}]})
    # state/PathId.scala reservedKeywords in 1.11.
    reserved = requests.post(f"{url}/v2/apps", json={"id": "/a/versions", "cmd": "sleep 1"},
                             timeout=5)
    assert reserved.status_code == 422
    assert reserved.json()["details"] == [{"path": "/id", "errors": [
        "must not end with any of the following reserved keywords: restart, tasks, versions, "
        "., .."]}]
    # api/v2/LabelSelector.scala: an unparsable selector is an IllegalArgumentException, 422.
    label = requests.get(f"{url}/v2/apps", params={"label": "env==a/b"}, timeout=5)
    assert label.status_code == 422
    assert label.json()["message"].startswith(
        "Can not parse label selector env==a/b. Reason: ")


def test_readiness_and_task_stats_embeds(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    requests.post(f"{url}/v2/apps", json={"id": "/st", "cmd": "sleep 600"},
                  timeout=5).raise_for_status()
    _running(url, "/st")
    # api/v2/InfoEmbedResolver.scala: embed names with or without prefix; readiness and
    # taskStats (core/appinfo/TaskStatsByVersion.scala).
    got = requests.get(f"{url}/v2/apps/st", params=[("embed", "readiness"),
                                                     ("embed", "taskStats")], timeout=5).json()
    assert got["app"]["readinessCheckResults"] == []
    stats = got["app"]["tasksStats"]
    assert set(stats) == {"startedAfterLastScaling", "withLatestConfig", "totalSummary"}
    assert stats["totalSummary"]["stats"]["counts"] == {
        "staged": 0, "running": 1, "healthy": 0, "unhealthy": 0}
    assert "averageSeconds" in stats["totalSummary"]["stats"]["lifeTime"]
    listed = requests.get(f"{url}/v2/apps", params={"embed": "tasks"}, timeout=5).json()
    assert listed["apps"][0]["tasks"]


def test_a_listed_app_is_the_app_read_alone_whatever_it_embeds(
        devcluster: launch.RunningCluster) -> None:
    # AppsResource.index and AppsResource.show both write AppInfo for the resolved embeds
    # (api/v2/AppsResource.scala, InfoEmbedResolver.scala). The listing serves apps with
    # nothing to embed from cached bytes: the same app, the same fields in the same order.
    url = devcluster.url
    for definition in ({"id": "/quiet/a", "cmd": "sleep 600", "instances": 0},
                       {"id": "/quiet/b", "cmd": "sleep 600", "instances": 0,
                        "healthChecks": [{"protocol": "COMMAND",
                                          "command": {"value": "true"}}]}):
        requests.post(f"{url}/v2/apps", json=definition, timeout=5).raise_for_status()
    no_deployments(url)
    for embeds in ([], ["apps.tasks"], ["apps.readiness"], ["apps.lastTaskFailure"],
                   ["apps.tasks", "apps.lastTaskFailure", "apps.deployments"],
                   ["tasks", "readiness"], ["apps.taskStats"]):
        listed = requests.get(f"{url}/v2/apps", params=[("embed", e) for e in embeds],
                              timeout=5).json()["apps"]
        assert [a["id"] for a in listed] == ["/quiet/a", "/quiet/b"]
        for got in listed:
            # AppsResource.show always embeds the tasks and the last failure.
            alone = requests.get(f"{url}/v2/apps{got['id']}", timeout=5, params=[
                ("embed", e.replace("apps.", "app.")) for e in embeds]).json()["app"]
            named = " ".join(embeds)
            if "tasks" not in named:
                del alone["tasks"]
            assert list(got.items()) == list(alone.items()), embeds


def test_instance_changes_are_published(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    log = EventLog(url)
    requests.post(f"{url}/v2/apps", json={"id": "/inst", "cmd": "sleep 600"},
                  timeout=5).raise_for_status()
    # core/instance/update/InstanceChangedEventsGenerator.scala
    # (api/v2/json/Formats.scala InstanceChangedEventWrites).
    running = log.wait_for("instance_changed_event", condition="Running")
    assert running["runSpecId"] == "/inst"
    assert set(running) == {"instanceId", "condition", "runSpecId", "agentId", "host",
                            "runSpecVersion", "timestamp", "eventType"}
    assert ".instance-" in running["instanceId"]


def test_a_bulk_update_reports_its_first_invalid_app(devcluster: launch.RunningCluster) -> None:
    # AppsResource.updateMultiple -> AppHelpers.updateOrCreate -> validateOrThrow: the first
    # invalid app, with paths relative to it.
    refused = requests.put(f"{devcluster.url}/v2/apps", json=[
        {"id": "/ok", "cmd": "sleep 1"}, {"id": "/bad", "cmd": "sleep 1", "args": ["x"]},
        {"id": "/worse"}], timeout=5)
    assert refused.status_code == 422
    assert refused.json()["message"] == "Object is not valid"
    assert [d["path"] for d in refused.json()["details"]] == ["/"]
    # Shape errors come from reading the whole array: play-json paths carry the index.
    shapes = requests.put(f"{devcluster.url}/v2/apps", json=[
        {"id": "/ok", "cmd": "sleep 1"}, {"id": "/bad", "cmd": "sleep 1", "cpus": -1},
        {"id": "/worse", "cmd": "sleep 1", "mem": -1}], timeout=5)
    assert (shapes.status_code, shapes.json()) == (422, {"message": "Invalid JSON", "details": [
        {"path": "(1)/cpus", "errors": ["error.min"]},
        {"path": "(2)/mem", "errors": ["error.min"]}]})


def test_label_selectors_follow_marathons_grammar() -> None:
    # api/v2/LabelSelector.scala (LabelSelectorParsers): terms of [-A-Za-z0-9_.] or escapes;
    # every selector needs the label to exist.
    def select(selector: str, labels: dict[str, str]) -> bool:
        return dl.matches(labels, dl.parse(selector))

    assert select("env==prod", {"env": "prod"})
    assert select(r"env==a\/b", {"env": "a/b"})
    assert not select("tier notin (web)", {"env": "prod"})
    assert select("tier notin (web), env", {"tier": "db", "env": "x"})
    assert not select("tier in ()", {"tier": "db"})
    assert select("", {})
    for bad in ("env==a/b", "env==", "a b", "env in (x"):
        with pytest.raises(dl.SelectorError):
            dl.parse(bad)


def test_health_events_carry_marathons_keys(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    log = EventLog(url)
    requests.post(f"{url}/v2/apps", json={"id": "/hc/ok", "cmd": "sleep 600", "healthChecks": [
        {"protocol": "COMMAND", "command": {"value": "true"}, "intervalSeconds": 1}]},
        timeout=5).raise_for_status()
    requests.post(f"{url}/v2/apps", json={"id": "/hc/bad", "cmd": "sleep 600", "healthChecks": [
        {"protocol": "COMMAND", "command": {"value": "false"}, "intervalSeconds": 1,
         "gracePeriodSeconds": 0, "maxConsecutiveFailures": 1}]}, timeout=5).raise_for_status()
    # core/health/impl/HealthCheckActor.scala; api/v2/json/Formats.scala.
    changed = log.wait_for("health_status_changed_event", appId="/hc/ok")
    assert set(changed) == {"appId", "instanceId", "version", "alive", "eventType", "timestamp"}
    failed = log.wait_for("failed_health_check_event", appId="/hc/bad")
    assert set(failed) == {"appId", "eventType", "healthCheck", "taskId", "timestamp"}
    assert "._app." not in failed["taskId"]  # FailedHealthCheckWrites: the instance id
    killed = log.wait_for("unhealthy_instance_kill_event", appId="/hc/bad")
    # checkConsecutiveFailures: the reason is the failure's cause, not a sentence of ours, and
    # the time is that of the last failure.
    assert killed["reason"] and "consecutive" not in killed["reason"]
    assert killed["timestamp"] <= log.wait_for("status_update_event", appId="/hc/bad",
                                               taskStatus="TASK_KILLED")["timestamp"]


def test_every_stream_hears_of_streams_attaching_and_detaching(
    devcluster: launch.RunningCluster,
) -> None:
    # core/event/impl/stream/HttpEventStreamHandleActor.scala: preStart and postStop publish.
    first = EventLog(devcluster.url)
    with requests.get(f"{devcluster.url}/v2/events", stream=True, timeout=10):
        wait_until(lambda: len(first.of("event_stream_attached")) == 2)
    first.wait_for("event_stream_detached")


def test_small_shapes_of_groups_tasks_and_queue(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    requests.put(f"{url}/v2/groups/sh", json={"id": "inner", "apps": [
        {"id": "a", "cmd": "sleep 600", "instances": 0}]}, timeout=5).raise_for_status()
    # GroupsResource.update: the body id is resolved against the URL path.
    assert requests.get(f"{url}/v2/apps/sh/inner/a", timeout=5).status_code == 200
    # AppsResource.show (ListApps): transitive apps of the group under the key "*".
    listed = requests.get(f"{url}/v2/apps/sh/*", timeout=5).json()
    assert [a["id"] for a in listed["*"]] == ["/sh/inner/a"]
    assert requests.get(f"{url}/v2/apps/sh/", timeout=5).json() == {
        "message": "App '/sh' does not exist"}
    # GroupsResource.group (ListApps): a bare array.
    assert [a["id"] for a in requests.get(f"{url}/v2/groups/sh/apps", timeout=5).json()] == [
        "/sh/inner/a"]
    # AppsResource.canonicalAppUpdatesFromJson: an item without id.
    no_id = requests.put(f"{url}/v2/apps", json=[{"cmd": "sleep 1"}], timeout=5)
    assert (no_id.status_code, no_id.json()) == (
        422, {"message": "requirement failed: App Update must have app id set"})
    # TasksResource.indexJson: only running and staging filter.
    assert requests.get(f"{url}/v2/tasks", params={"status": "killed"}, timeout=5).ok
    requests.post(f"{url}/v2/apps", json={"id": "/q", "cmd": "exit 1", "backoffSeconds": 60},
                  timeout=5).raise_for_status()
    queued = wait_until(lambda: requests.get(f"{url}/v2/queue", timeout=5).json()["queue"])
    # QueueResource.index: lastUnusedOffers only with its embed.
    assert "lastUnusedOffers" not in queued[0]
    embedded = requests.get(f"{url}/v2/queue", params={"embed": "lastUnusedOffers"},
                            timeout=5).json()["queue"]
    assert embedded[0]["lastUnusedOffers"] == []


def test_a_crashed_task_is_relaunched_as_the_same_instance(
    devcluster: launch.RunningCluster,
) -> None:
    url = devcluster.url
    requests.post(f"{url}/v2/apps", json={"id": "/again", "cmd": "sleep 1; exit 1",
                                          "backoffSeconds": 1}, timeout=5).raise_for_status()
    first = wait_until(lambda: app(url, "/again", "tasks")["tasks"])[0]["id"]
    # Instance.isScheduled: the instance outlives its task; Task.Id.nextIncarnationFor.
    instance = first.rsplit("._app.", 1)[0]
    assert first == f"{instance}._app.1"
    wait_until(lambda: [t["id"] for t in app(url, "/again", "tasks")["tasks"]]
               == [f"{instance}._app.2"], timeout=20)


def test_a_create_answers_the_definition_as_submitted(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    created = requests.post(f"{url}/v2/apps", json={
        "id": "/sub", "cmd": "sleep 600", "instances": 0, "portDefinitions": [{"port": 0}]},
        timeout=5)
    # AppsResource.create: the validated definition before GroupManager assigned service ports
    # (updateRootEither), with only its version; counts 0 and the new deployment.
    body = created.json()
    assert created.status_code == 201
    assert body["portDefinitions"][0]["port"] == 0 and "versionInfo" not in body
    assert body["deployments"] == [{"id": created.headers["Marathon-Deployment-Id"]}]
    assert app(url, "/sub")["portDefinitions"][0]["port"] >= 10000


def test_a_bulk_patch_updates_but_creates_nothing(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    requests.post(f"{url}/v2/apps", json={"id": "/bp", "cmd": "sleep 600", "instances": 0},
                  timeout=5).raise_for_status()
    wait_until(lambda: no_deployments(url))
    # AppsResource.patchMultiple -> AppHelpers.updateOrCreate without creation.
    patched = requests.patch(f"{url}/v2/apps", json=[{"id": "/bp", "labels": {"a": "b"}}],
                             timeout=5)
    assert patched.status_code == 200 and set(patched.json()) == {"version", "deploymentId"}
    wait_until(lambda: no_deployments(url))
    assert app(url, "/bp")["labels"] == {"a": "b"} and app(url, "/bp")["cmd"] == "sleep 600"
    unknown = requests.patch(f"{url}/v2/apps", json=[{"id": "/nope", "cmd": "x"}], timeout=5)
    assert (unknown.status_code, unknown.json()) == (404, {"message": "App '/nope' does not exist"})


def test_the_rest_of_the_v2_endpoints(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    log = EventLog(url)
    requests.post(f"{url}/v2/apps", json={"id": "/rest/a", "cmd": "sleep 600", "healthChecks": [
        {"protocol": "COMMAND", "command": {"value": "true"}, "intervalSeconds": 1}]},
        timeout=5).raise_for_status()
    _running(url, "/rest/a")
    # AppTasksResource.indexJson (GroupTasks): tasks of every app of a group.
    tasks = requests.get(f"{url}/v2/apps/rest/*/tasks", timeout=5).json()["tasks"]
    assert [t["appId"] for t in tasks] == ["/rest/a"]
    missing = requests.get(f"{url}/v2/apps/nope/*/tasks", timeout=5)
    assert (missing.status_code, missing.json()) == (
        404, {"message": "Group '/nope' does not exist"})
    # GroupsResource.patchGroup: top-level groups only.
    assert requests.patch(f"{url}/v2/groups/rest", json={"enforceRole": False},
                          timeout=5).status_code == 200
    nested = requests.patch(f"{url}/v2/groups/rest/x", json={}, timeout=5)
    assert nested.status_code == 422
    # PluginsResource.
    assert requests.get(f"{url}/v2/plugins", timeout=5).json() == {"plugins": []}
    # AppHealthCheckActor: instance_health_changed_event.
    changed = log.wait_for("instance_health_changed_event", runSpecId="/rest/a")
    assert changed["healthy"] is True and set(changed) == {
        "instanceId", "runSpecId", "healthy", "runSpecVersion", "timestamp", "eventType"}


def test_unknown_routes_and_the_root(devcluster: launch.RunningCluster) -> None:
    url = devcluster.url
    # api/MarathonExceptionMapper.scala: NotFoundException -> 500 "URI not found".
    unknown = requests.get(f"{url}/v2/nothing", timeout=5)
    assert (unknown.status_code, unknown.json()) == (500, {"message": "URI not found"})
    # api/SystemResource.scala redirectUI.
    root = requests.get(url + "/", allow_redirects=False, timeout=5)
    assert (root.status_code, root.headers["Location"]) == (302, "/ui/")


def test_ping_answers_in_a_type_the_client_takes(devcluster: launch.RunningCluster) -> None:
    # api/SystemResource.scala ping: text, JSON, or 204 without a body when no variant fits.
    url = devcluster.url
    assert requests.get(f"{url}/ping", timeout=5).text == "pong"
    assert requests.get(f"{url}/ping", headers={"Accept": "application/json"},
                        timeout=5).json() == "pong"
    none = requests.get(f"{url}/ping", headers={"Accept": "image/png"}, timeout=5)
    assert (none.status_code, none.content) == (204, b"")
