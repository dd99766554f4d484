"""The Marathon client against the dev cluster subprocess: the calls the controller makes."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from reconciler.shell import marathon
from tests.support import polling

pytestmark = pytest.mark.integration


def settled(client: marathon.MarathonClient) -> bool:
    return not client.list_deployments()


def broken_app(app_id: str) -> dict[str, Any]:
    """An app whose tasks never pass their health check: its deployment never ends."""
    return {
        "id": app_id, "instances": 1, "cpus": 0.1, "mem": 64,
        "networks": [{"mode": "container/bridge"}],
        "container": {"type": "DOCKER", "docker": {"image": "lhcbdirac:v8r2p44-broken"},
                      "portMappings": [{"containerPort": 8080, "name": "http"}]},
        "healthChecks": [{"protocol": "HTTP", "portIndex": 0, "path": "/ping",
                          "intervalSeconds": 1, "timeoutSeconds": 1,
                          "gracePeriodSeconds": 60, "maxConsecutiveFailures": 3}],
    }


def test_create_list_update_scale_and_delete(client: marathon.MarathonClient) -> None:
    created = client.create_app({"id": "/dirac/fts", "cmd": "sleep 600", "instances": 1,
                                 "cpus": 0.1, "mem": 32})
    assert created.deployment_id and created.version
    polling.eventually("no deployment left", lambda: settled(client))

    [live] = client.list_apps(prefix="/dirac", embed=("apps.tasks", "apps.deployments"))
    assert live["id"] == "/dirac/fts"
    assert live["version"] == created.version
    assert len(live["tasks"]) == 1 and live["deployments"] == []
    assert client.list_apps(prefix="/elsewhere") == []

    updated = client.update_app("/dirac/fts", {**_without_server_fields(live),
                                               "cmd": "sleep 601"})
    assert updated.deployment_id != created.deployment_id
    assert updated.version > created.version
    polling.eventually("no deployment left", lambda: settled(client))
    assert client.get_app("/dirac/fts")["cmd"] == "sleep 601"

    scaled = client.scale_app("/dirac/fts", 2)
    polling.eventually("no deployment left", lambda: settled(client))
    after_scale = client.get_app("/dirac/fts", embed=("app.tasks",))
    assert after_scale["instances"] == 2 and len(after_scale["tasks"]) == 2
    assert after_scale["version"] == scaled.version
    assert len(client.list_tasks("/dirac/fts")) == 2

    versions = client.list_versions("/dirac/fts")
    assert versions[0] == scaled.version and created.version in versions
    assert client.get_app_version("/dirac/fts", created.version)["cmd"] == "sleep 600"

    client.delete_app("/dirac/fts")
    polling.eventually("no deployment left", lambda: settled(client))
    with pytest.raises(marathon.NotFound, match="does not exist"):
        client.get_app("/dirac/fts")


def test_a_locked_app_is_a_conflict_naming_its_deployment_and_can_be_cancelled(
    client: marathon.MarathonClient,
) -> None:
    created = client.create_app(broken_app("/dirac/broken"))
    [running] = client.list_deployments()
    assert running["id"] == created.deployment_id
    assert "/dirac/broken" in running["affectedApps"]

    with pytest.raises(marathon.Conflict, match="locked") as caught:
        client.scale_app("/dirac/broken", 2)
    assert caught.value.deployment_ids == [created.deployment_id]

    rollback = client.cancel_deployment(created.deployment_id)
    assert rollback is not None and rollback.deployment_id != created.deployment_id
    polling.eventually("no deployment left", lambda: settled(client))
    # Cancelling the creation of an app rolls back to no app at all.
    with pytest.raises(marathon.NotFound):
        client.get_app("/dirac/broken")


def test_force_overrides_the_lock(client: marathon.MarathonClient) -> None:
    client.create_app(broken_app("/dirac/stuck"))
    forced = client.scale_app("/dirac/stuck", 0, force=True)
    assert forced.deployment_id
    polling.eventually("no deployment left", lambda: settled(client))
    assert client.get_app("/dirac/stuck")["instances"] == 0


def test_an_invalid_definition_is_unprocessable_with_paths(
    client: marathon.MarathonClient,
) -> None:
    for definition, path in (({"id": "/dirac/Bad_Id", "cmd": "true"}, "/id"),
                             ({"id": "/dirac/ok", "cmd": "true", "cpus": -1}, "/cpus")):
        with pytest.raises(marathon.Unprocessable) as caught:
            client.create_app(definition)
        assert caught.value.status == 422
        assert path in {d["path"] for d in caught.value.details}
        assert all(d["errors"] for d in caught.value.details)
    assert client.list_apps() == []


def test_missing_apps_and_deployments_are_not_found(client: marathon.MarathonClient) -> None:
    with pytest.raises(marathon.NotFound, match="App '/nope' does not exist"):
        client.get_app("/nope")
    with pytest.raises(marathon.NotFound):
        client.cancel_deployment("no-such-deployment")


def test_ping_and_info(client: marathon.MarathonClient) -> None:
    client.ping()
    assert "version" in client.info()


def test_events_follow_a_deployment(client: marathon.MarathonClient) -> None:
    seen: list[marathon.Event] = []
    attached = threading.Event()

    def follow() -> None:
        stream = client.events(event_types=("event_stream_attached", "deployment_success",
                                            "api_post_event"), idle_timeout=20.0)
        try:
            for event in stream:
                seen.append(event)
                if event.event_type == "event_stream_attached":
                    attached.set()
                if event.event_type == "deployment_success":
                    return
        finally:
            stream.close()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert attached.wait(10), "the event stream never attached"
    created = client.create_app({"id": "/dirac/events", "cmd": "sleep 600", "instances": 1,
                                 "cpus": 0.1, "mem": 32})
    follower.join(timeout=30)
    assert not follower.is_alive(), f"no deployment_success; saw {[e.event_type for e in seen]}"
    kinds = {e.event_type for e in seen}
    assert kinds <= {"event_stream_attached", "deployment_success", "api_post_event"}
    [success] = [e for e in seen if e.event_type == "deployment_success"]
    assert success.data["id"] == created.deployment_id
    posts = [e for e in seen if e.event_type == "api_post_event"]
    assert posts and posts[0].data["appDefinition"]["id"] == "/dirac/events"


def _without_server_fields(app: dict[str, Any]) -> dict[str, Any]:
    """What a client may PUT back: Marathon refuses its read-only fields in a definition."""
    read_only = {"version", "versionInfo", "tasks", "deployments", "tasksRunning",
                 "tasksStaged", "tasksHealthy", "tasksUnhealthy", "lastTaskFailure"}
    return {k: v for k, v in app.items() if k not in read_only}
