"""The live cache's packed apps (``reconciler/shell/liveapps.py``): whole when asked for,
statuses read only their part, and the memory is that of the JSON, not of parsed apps."""

from __future__ import annotations

import tracemalloc

import orjson
import pytest

from reconciler.core import model
from reconciler.shell import liveapps, marathon


def app(number: int) -> model.JSON:
    return {"id": f"/dirac/site{number}/fts", "version": f"2026-11-30T00:00:{number % 60:02}Z",
            "cmd": "fts-manager --config /etc/fts.cfg", "cpus": 0.5, "mem": 1024,
            "instances": 2, "env": {f"VAR{i}": "value" * 4 for i in range(20)},
            "container": {"type": "DOCKER", "docker": {"image": "lhcbdirac:v8r2p44"}},
            "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/health"}],
            "tasks": [{"id": f"t{number}", "state": "TASK_RUNNING", "host": "agent1"}],
            "deployments": [], "versionInfo": {"lastConfigChangeAt": "2026-11-29T00:00:00Z"}}


def test_an_app_comes_back_whole_and_statuses_read_only_their_part() -> None:
    apps = [app(n) for n in range(3)]
    live = liveapps.LiveApps.of(apps)

    assert live.get("/dirac/site1/fts") == apps[1]
    assert live.get("/dirac/nowhere") is None
    assert live.versions() == {a["id"]: a["version"] for a in apps}
    view = next(v for v in live.status_views() if v["id"] == "/dirac/site2/fts")
    assert view["container"] == {"docker": {"image": "lhcbdirac:v8r2p44"}}
    assert view["tasks"] == apps[2]["tasks"] and view["healthChecks"] == apps[2]["healthChecks"]
    assert "env" not in view and "cmd" not in view
    assert set(view) <= {*liveapps.STATUS_FIELDS, "container"}



def test_status_views_by_id_are_the_same_views_unpacked_when_looked_up() -> None:
    apps = [app(n) for n in range(3)]
    live = liveapps.LiveApps.of(apps)
    by_id = live.status_views_by_id()

    assert dict(by_id) == {v["id"]: v for v in live.status_views()}
    assert "/dirac/site1/fts" in by_id and "/dirac/nowhere" not in by_id
    assert by_id.get("/dirac/nowhere") is None
    assert by_id["/dirac/site1/fts"] is not by_id["/dirac/site1/fts"]  # never kept

def test_marks_tell_a_status_view_that_moved_at_the_same_version_from_one_that_did_not(
) -> None:
    """The status board keeps an app's row by its mark: a resync at the same version with a
    task's state changed must give a new mark, one with nothing changed the same."""
    read = app(1)
    held = liveapps.Held.of(read)
    same = liveapps.Held.of({**read}, known=held)
    failing = liveapps.Held.of(
        {**read, "tasks": [{**read["tasks"][0], "state": "TASK_FAILED"}]}, known=held)
    event = liveapps.Held.of(read, from_event=True)  # an api_post_event, read again later
    again = liveapps.Held.of(read, known=event)

    def mark(h: liveapps.Held) -> object:
        return liveapps.LiveApps({"/dirac/site1/fts": h}).status_views_by_id().marks()[
            "/dirac/site1/fts"]

    assert mark(same) == mark(held)
    assert mark(failing) != mark(held)
    assert mark(again) == mark(event) == mark(held)


def test_a_thousand_apps_held_take_about_their_json_not_a_parse_buffer_each() -> None:
    apps = [app(n) for n in range(1000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        live = liveapps.LiveApps.of(apps)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(live.versions()) == 1000
    # Both parts packed, primed: about 0.46 kB per app (0.46 MB). The status part held as
    # plain JSON and the rest compressed alone took 0.7 MB; orjson's 16 kB working buffer
    # kept per app would be 32 MB.
    assert held < 0.6 * 1024 * 1024, f"{held} bytes held for 1000 apps"


def test_an_app_that_is_not_plain_json_is_a_marathon_error_not_a_crash() -> None:
    with pytest.raises(marathon.MarathonError, match="not plain JSON"):
        liveapps.LiveApps.of([{**app(1), "instances": 2**70}])


def test_a_definition_is_reused_only_from_a_read_of_the_same_version_never_from_an_event() -> None:
    # A resync packs again only the status part of a version it read before. An event's
    # definition is refetched, never kept by a resync; fields that change without a new
    # version (readinessCheckResults...) are never reused.
    held = liveapps.Held
    read = held.of(app(1))
    again = held.of({**app(1), "cmd": "changed", "readinessCheckResults": [1]},
                               known=read)
    assert again.packed_rest is read.packed_rest
    assert again.unpacked()["readinessCheckResults"] == [1]
    newer = held.of({**app(1), "version": "later", "cmd": "changed"}, known=read)
    assert newer.unpacked()["cmd"] == "changed"
    heard = held.of({**app(1), "cmd": "from the event"}, from_event=True)
    after = held.of(app(1), known=heard)
    assert after.unpacked()["cmd"] == app(1)["cmd"]


def test_a_resync_keeps_the_object_held_for_an_app_that_did_not_change_at_all() -> None:
    # Every resync of a release made a new object per app, long-lived ones strewn among the
    # release's short-lived ones: memory never handed back once the release was over.
    held = liveapps.Held
    read = held.of(app(1))
    assert held.of(app(1), known=read) is read
    moved = held.of({**app(1), "tasks": []}, known=read)  # the same version, new tasks
    assert moved is not read and moved.version is read.version
    assert moved.unpacked()["tasks"] == []
    heard = held.of(app(1), from_event=True)
    assert held.of(app(1), known=heard) is not heard  # an event's is always read again


def as_marathon_answers(number: int) -> model.JSON:
    """An app as Marathon's ``GET /v2/apps`` answers it: every field written, in Marathon's
    order (``examples/app_list.json`` of the reference; ``AppInfo`` in app.raml)."""
    at = f"2026-11-30T14:41:{number % 60:02}.432Z"
    return {
        "id": f"/lhcb/site{number:04}/requestmanagement/reqmanager", "cmd": None,
        "args": ["dirac-service", "RequestManagement/ReqManager"], "user": None,
        "env": {"DIRAC_SETUP": "LHCb-Production", "DIRAC_COMPONENT": "ReqManager"},
        "instances": 0, "cpus": 0.1, "mem": 256, "disk": 0, "gpus": 0, "executor": "",
        "constraints": [["hostname", "MAX_PER", "2"]], "fetch": [], "storeUrls": [],
        "backoffSeconds": 1, "backoffFactor": 1.15, "maxLaunchDelaySeconds": 300,
        "container": {"type": "DOCKER", "docker": {"forcePullImage": False,
                      "privileged": False, "parameters": [], "image": "lhcbdirac:v8r2p44"},
                      "portMappings": [{"containerPort": 9140, "protocol": "tcp",
                                        "servicePort": 10000 + number, "name": "dips",
                                        "hostPort": 0, "labels": {}}], "volumes": []},
        "requirePorts": False,
        "healthChecks": [{"gracePeriodSeconds": 10, "intervalSeconds": 2, "timeoutSeconds": 2,
                          "maxConsecutiveFailures": 3, "delaySeconds": 15,
                          "ipProtocol": "IPv4", "protocol": "MESOS_HTTP", "path": "/",
                          "portIndex": 0}],
        "readinessChecks": [], "dependencies": [], "labels": {"team": "lhcb-dirac"},
        "acceptedResourceRoles": None, "secrets": {}, "killSelection": "YOUNGEST_FIRST",
        "role": "*", "upgradeStrategy": {"minimumHealthCapacity": 0.5,
                                         "maximumOverCapacity": 0.2},
        "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
        "networks": [{"mode": "container/bridge"}], "version": at,
        "versionInfo": {"lastScalingAt": at, "lastConfigChangeAt": at},
        "tasksStaged": 0, "tasksRunning": 0, "tasksHealthy": 0, "tasksUnhealthy": 0,
        "deployments": [], "tasks": []}


def test_an_app_packs_to_a_third_of_its_json_or_less_primed_with_marathon_s_defaults() -> None:
    # Compressed alone, an app kept 77 % of its JSON (10,000 apps: 11 MB); zlib primed with
    # an app of Marathon's defaults finds the field names and defaults every app repeats.
    # These apps are at rest and close to the primer's shape: a good case.
    for number in (1, 2, 3):
        answer = as_marathon_answers(number)
        held = liveapps.Held.of(answer)
        packed = len(held.packed_view) + len(held.packed_rest)
        assert packed <= len(orjson.dumps(answer)) / 3
        assert held.unpacked() == answer
