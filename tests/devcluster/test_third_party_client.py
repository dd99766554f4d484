"""A real third-party Marathon client (marathon-python) works against the dev cluster."""

from __future__ import annotations

import collections
import collections.abc
import json
import threading

import marathon
import requests
from marathon.models import MarathonApp

from reconciler.devcluster import launch
from tests.devcluster.helpers import no_deployments, wait_until

# marathon-python 0.13.0 (its last release) still uses collections.Iterable, which Python 3.10
# removed; restore the alias for it, as its users on current Pythons have to.
collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]


def test_marathon_python_creates_lists_updates_scales_and_kills(
    devcluster: launch.RunningCluster,
) -> None:
    client = marathon.MarathonClient(devcluster.url)
    assert client.ping()
    created = client.create_app("dirac-web", MarathonApp(cmd="sleep 600", instances=1,
                                                          cpus=0.1, mem=32))
    assert created.id == "/dirac-web"
    wait_until(lambda: client.get_app("dirac-web").tasks_running == 1)
    assert [a.id for a in client.list_apps()] == ["/dirac-web"]

    client.scale_app("dirac-web", instances=2)
    wait_until(lambda: client.get_app("dirac-web").tasks_running == 2)
    wait_until(lambda: no_deployments(devcluster.url))

    app = client.get_app("dirac-web")
    app.cmd = "sleep 601"
    deployment = client.update_app("dirac-web", app)
    assert "deploymentId" in deployment
    assert any(d.id == deployment["deploymentId"] for d in client.list_deployments()) or \
        no_deployments(devcluster.url)
    wait_until(lambda: no_deployments(devcluster.url), timeout=30)
    assert client.get_app("dirac-web").cmd == "sleep 601"

    tasks = client.list_tasks("dirac-web")
    assert len(tasks) == 2
    client.kill_task("dirac-web", tasks[0].id, scale=True)
    wait_until(lambda: client.get_app("dirac-web").instances == 1)
    assert len(client.list_versions("dirac-web")) >= 3


def test_marathon_python_follows_the_event_stream(devcluster: launch.RunningCluster) -> None:
    client = marathon.MarathonClient(devcluster.url)
    seen: list[str] = []
    attached = threading.Event()

    def follow() -> None:
        for event in client.event_stream(event_types=["event_stream_attached",
                                                      "api_post_event", "deployment_success"]):
            seen.append(event.event_type)
            attached.set()
            if event.event_type == "deployment_success":
                return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert attached.wait(10)
    requests.post(f"{devcluster.url}/v2/apps", json={"id": "/evt", "cmd": "sleep 600"},
                  timeout=5)
    follower.join(30)
    assert seen[:1] == ["event_stream_attached"]
    assert "api_post_event" in seen and seen[-1] == "deployment_success"


def test_api_post_event_carries_client_address_and_uri(devcluster: launch.RunningCluster) -> None:
    lines: list[str] = []
    with requests.get(f"{devcluster.url}/v2/events", params={"event_type": "api_post_event"},
                      stream=True, timeout=10) as stream:
        requests.put(f"{devcluster.url}/v2/apps/scaled", json={"cmd": "sleep 600"}, timeout=5)
        for line in stream.iter_lines(decode_unicode=True):
            lines.append(line)
            if line.startswith("data:"):
                break
    event = json.loads(lines[-1][len("data:"):])
    assert event["eventType"] == "api_post_event"
    assert event["clientIp"] == "127.0.0.1"
    assert event["uri"].startswith("/v2/apps/scaled")
    assert event["appDefinition"]["id"] == "/scaled"
