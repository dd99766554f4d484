"""The deployment state machine without processes or sleeps: time is a value passed in."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from reconciler.devcluster import catalog, defaults, model, plans, runtime, serviceports

JSON = dict[str, Any]
T0, T1 = "2030-01-01T00:00:00.000Z", "2030-01-01T00:01:00.000Z"


def stored(definition: JSON, *, version: str = T0) -> JSON:
    app = defaults.fill_defaults(definition, allocator=serviceports.ServicePortAllocator())
    return {**app, "version": version,
            "versionInfo": {"lastScalingAt": version, "lastConfigChangeAt": version}}


def test_a_scale_moves_the_version_but_not_the_config_change() -> None:
    live = stored({"id": "/a", "cmd": "sleep 600", "instances": 1})
    target = {**live, "instances": 3}
    new = plans.new_definitions({"/a": target}, live={"/a": live}, version=T1, restart=False)
    assert new["/a"] is not None
    assert new["/a"]["version"] == T1
    assert new["/a"]["versionInfo"] == {"lastScalingAt": T1, "lastConfigChangeAt": T0}


def test_an_unchanged_app_keeps_its_version_and_a_restart_moves_its_config_change() -> None:
    live = stored({"id": "/a", "cmd": "sleep 600"})
    same = plans.new_definitions({"/a": live}, live={"/a": live}, version=T1, restart=False)
    assert same["/a"] is not None and same["/a"]["version"] == T0
    restarted = plans.new_definitions({"/a": live}, live={"/a": live}, version=T1, restart=True)
    assert restarted["/a"] is not None
    assert restarted["/a"]["versionInfo"] == {"lastScalingAt": T0, "lastConfigChangeAt": T1}


def actions(steps: list[list[JSON]]) -> list[list[tuple[str, str]]]:
    return [[(a["action"], a["app"]) for a in step] for step in steps]


def test_new_apps_start_together_then_scale_after_the_apps_they_depend_on() -> None:
    # DeploymentPlan.apply (core/deployment/DeploymentPlan.scala): one step of stops, one of
    # starts, then one step per dependency class (dependencyOrderedSteps); removals all at once.
    db = stored({"id": "/g/db", "cmd": "sleep 600"})
    web = stored({"id": "/g/web", "cmd": "sleep 600", "dependencies": ["/g/db"]})
    start = plans.steps(original={"/g/web": None, "/g/db": None},
                        target={"/g/web": web, "/g/db": db})
    assert actions(start) == [
        [("StartApplication", "/g/db"), ("StartApplication", "/g/web")],
        [("ScaleApplication", "/g/db")], [("ScaleApplication", "/g/web")],
    ]
    stop = plans.steps(original={"/g/web": web, "/g/db": db},
                       target={"/g/web": None, "/g/db": None})
    assert actions(stop) == [[("StopApplication", "/g/db"), ("StopApplication", "/g/web")]]


def test_stops_come_first_and_a_new_app_with_no_instances_is_still_scaled() -> None:
    # DeploymentPlan.apply: StopApplication step first; dependencyOrderedSteps gives a new app
    # a ScaleApplication even to 0 instances.
    old = stored({"id": "/old", "cmd": "sleep 600"})
    idle = stored({"id": "/idle", "cmd": "sleep 600", "instances": 0})
    plan = plans.steps(original={"/old": old, "/idle": None}, target={"/old": None, "/idle": idle})
    assert actions(plan) == [[("StopApplication", "/old")], [("StartApplication", "/idle")],
                             [("ScaleApplication", "/idle")]]


def test_dependency_classes_count_the_whole_target_graph() -> None:
    # runSpecsGroupedByLongestPath measures the longest path in the target root's dependency
    # graph, unchanged apps included: a -> b -> c with only a and c changed is [c], [a].
    a = stored({"id": "/a", "cmd": "sleep 600", "dependencies": ["/b"]})
    c = stored({"id": "/c", "cmd": "sleep 600"})
    graph = {"/a": ["/b"], "/b": ["/c"], "/c": []}
    plan = plans.steps(original={"/a": {**a, "cmd": "sleep 1"}, "/c": {**c, "cmd": "sleep 1"}},
                       target={"/a": a, "/c": c}, graph=graph)
    assert actions(plan) == [[("RestartApplication", "/c")], [("RestartApplication", "/a")]]


def test_unchanged_and_non_upgrade_edits_get_no_action_and_an_empty_plan_no_step() -> None:
    # dependencyOrderedSteps: "Other cases require no action" (executorResources is not in
    # AppDefinition.isUpgrade); DeploymentPlan.apply drops steps without actions.
    live = stored({"id": "/a", "cmd": "sleep 600"})
    assert plans.steps(original={"/a": live}, target={"/a": live}) == []
    edited = {**live, "executorResources": {"cpus": 0.2, "mem": 64, "disk": 0}}
    assert plans.steps(original={"/a": live}, target={"/a": edited}) == []
    new = plans.new_definitions({"/a": edited}, live={"/a": live}, version=T1, restart=False)
    assert new["/a"] is not None
    # GroupVersioningUtil.updateVersionInfoForChangedApps keeps the old versionInfo.
    assert new["/a"]["version"] == T0 and new["/a"]["executorResources"]["cpus"] == 0.2


def test_a_config_change_to_zero_instances_and_a_restart_at_zero_are_scales() -> None:
    # dependencyOrderedSteps: isOnlyScaleChange || isScaledToZero -> ScaleApplication, else
    # needsRestart -> RestartApplication.
    live = stored({"id": "/a", "cmd": "sleep 600", "instances": 2})
    to_zero = {**live, "cmd": "sleep 1", "instances": 0}
    assert actions(plans.steps(original={"/a": live}, target={"/a": to_zero})) == [
        [("ScaleApplication", "/a")]]
    idle = {**live, "instances": 0}
    assert actions(plans.steps(original={"/a": idle}, target={"/a": idle},
                               restarted=frozenset({"/a"}))) == [[("ScaleApplication", "/a")]]
    assert actions(plans.steps(original={"/a": live}, target={"/a": live},
                               restarted=frozenset({"/a"}))) == [[("RestartApplication", "/a")]]


def test_a_full_capacity_upgrade_may_go_one_task_over_to_make_progress() -> None:
    strict = {"minimumHealthCapacity": 1, "maximumOverCapacity": 0}
    assert plans.upgrade_capacity(instances=2, strategy=strict, healthy=2) == (2, 3)
    loose = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5}
    assert plans.upgrade_capacity(instances=4, strategy=loose, healthy=4) == (2, 6)
    # TaskReplaceActor.computeRestartStrategy counts healthy instances: with one of two old
    # tasks unhealthy the strict strategy gets no extra room.
    assert plans.upgrade_capacity(instances=2, strategy=strict, healthy=1) == (2, 2)


def test_the_launch_backoff_grows_by_its_factor_up_to_its_cap() -> None:
    app = stored({"id": "/a", "cmd": "exit 1", "backoffSeconds": 2, "backoffFactor": 3,
                  "maxLaunchDelaySeconds": 10})
    record = model.AppRecord(app=app, versions={T0: app})
    delays = []
    for now in (100.0, 200.0, 300.0):
        record.add_delay(now)
        delays.append(record.launch_delay_until - now)
    assert delays == [2.0, 6.0, 10.0]
    record.reset_delay()
    assert record.launch_delay_until == 0.0


def test_a_deployment_is_stamped_by_the_injected_clock_and_ends_when_its_steps_do(
    tmp_path: Path,
) -> None:
    now = [T0]

    async def scenario() -> tuple[str, str, str, list[str]]:
        cluster = runtime.Cluster(images=catalog.load(None), state_dir=tmp_path,
                                  clock=lambda: 0.0, timestamp=lambda: now[0])
        app = defaults.fill_defaults({"id": "/idle", "cmd": "sleep 600", "instances": 0},
                                     allocator=cluster.allocator)
        first = cluster.start_deployment({"/idle": app}, force=False)
        assert first.runner is not None
        await first.runner
        now[0] = T1
        again = cluster.start_deployment({"/idle": app}, force=False)
        assert again.runner is not None
        await again.runner
        return (first.version, again.version, cluster.apps["/idle"].app["version"],
                list(cluster.deployments))

    first, again, version, left = asyncio.run(scenario())
    assert (first, again) == (T0, T1)
    assert version == first  # the same definition again is no change: the version stays
    assert left == []
