"""Deployment plans, pure: the steps of a change in dependency order, the kill order."""

from __future__ import annotations

import math
from typing import Any

from reconciler.devcluster import changes, model

JSON = dict[str, Any]


def new_definitions(
    target: dict[str, JSON | None], *, live: dict[str, JSON | None], version: str, restart: bool,
) -> dict[str, JSON | None]:
    """``target`` with ``version`` and ``versionInfo`` as Marathon stores them (None: deleted).

    ``live`` holds each app's stored definition (None: new). Marathon's ``VersionInfo``: an
    unchanged app keeps its version, and so does one changed only in ``executorResources``
    (``GroupVersioningUtil.updateVersionInfoForChangedApps``); a scale moves ``version`` and
    ``lastScalingAt`` only; a config change moves all three; a restart (``withRestartChange``)
    moves ``version`` and ``lastConfigChangeAt``.
    ``version`` is the deployment's timestamp, given by the caller's clock.
    """
    stored: dict[str, JSON | None] = {}
    for app_id, app in target.items():
        if app is None:
            stored[app_id] = None
            continue
        new = dict(app)
        previous = live.get(app_id)
        kind = changes.change_kind(previous, new) if previous else "config"
        if restart and previous is not None and kind in ("none", "metadata"):
            new["version"] = version
            new["versionInfo"] = {**previous["versionInfo"], "lastConfigChangeAt": version}
        elif kind in ("none", "metadata") and previous is not None:
            new["version"] = previous["version"]
            new["versionInfo"] = previous["versionInfo"]
        else:
            new["version"] = version
            last_config = (
                previous["versionInfo"]["lastConfigChangeAt"]
                if previous is not None and kind == "scale" else version
            )
            new["versionInfo"] = {"lastScalingAt": version, "lastConfigChangeAt": last_config}
        stored[app_id] = new
    return stored


def upgrade_capacity(*, instances: int, strategy: JSON, healthy: int) -> tuple[int, int]:
    """``(minHealthy, maxCapacity)`` of a rolling upgrade (Marathon's ``TaskReplaceActor``).

    ``minHealthy = ceil(n * minimumHealthCapacity)`` old tasks are kept up front; old plus new
    tasks never exceed ``maxCapacity = floor(n * (1 + maximumOverCapacity))``, raised by one
    when it equals ``minHealthy`` and ``healthy`` tasks (old and new, healthy or running
    without checks: ``TaskReplaceActor``'s ``healthyNow``) already fill it, so the upgrade can
    start at all.
    """
    min_healthy = math.ceil(instances * float(strategy["minimumHealthCapacity"]))
    max_capacity = math.floor(instances * (1 + float(strategy["maximumOverCapacity"])))
    if min_healthy == max_capacity and max_capacity <= healthy:
        max_capacity += 1
    return min_healthy, max_capacity


def steps(
    *, original: dict[str, JSON | None], target: dict[str, JSON | None],
    graph: dict[str, list[str]] | None = None, restarted: frozenset[str] = frozenset(),
) -> list[list[JSON]]:
    """The steps taking each app from ``original`` to ``target`` (None: absent), as Marathon's
    ``DeploymentPlan.apply`` builds them.

    One step stops every removed app; one step starts every new app (with 0 instances); then,
    for the apps that get an action, one step per dependency class, classes ordered by the
    length of the longest dependency path in the whole target ``graph`` (app id to the apps and
    groups it depends on; by default the apps of ``target``). A new app is scaled (also to 0);
    a change of ``instances`` only, or to 0 instances, is a scale; a config change or a restart
    (``restarted``, ``needsRestart``) is a restart; any other change (``executorResources``) gets no
    action. Steps without actions are dropped (``DeploymentPlan.apply``): an empty plan has none.
    """
    stops = [{"action": "StopApplication", "app": a} for a, new in sorted(target.items())
             if new is None and original.get(a) is not None]
    starts = [{"action": "StartApplication", "app": a} for a, new in sorted(target.items())
              if new is not None and original.get(a) is None]
    actions: dict[str, JSON] = {}
    for app_id, new in target.items():
        old = original.get(app_id)
        if new is None:
            continue
        kind = "config" if old is None else changes.change_kind(old, new)
        changed = kind != "none" or app_id in restarted
        if old is None or kind == "scale" or changed and int(new.get("instances", 1)) == 0:
            actions[app_id] = {"action": "ScaleApplication", "app": app_id}
        elif kind == "config" or app_id in restarted:
            actions[app_id] = {"action": "RestartApplication", "app": app_id}
    if graph is None:
        graph = {a: list(app.get("dependencies") or []) for a, app in target.items() if app}
    by_length: dict[int, list[JSON]] = {}
    for app_id in sorted(actions):
        by_length.setdefault(longest_path(app_id, graph), []).append(actions[app_id])
    ordered = [by_length[length] for length in sorted(by_length)]
    return [step for step in [stops, starts, *ordered] if step]


def longest_path(app_id: str, graph: dict[str, list[str]]) -> int:
    """Apps on the longest dependency path from ``app_id`` (itself included), as
    ``DeploymentPlan.runSpecsGroupedByLongestPath``; a dependency on a group stands for every
    app in it. A cycle (Marathon refuses one) is cut where it closes."""
    memo: dict[str, int] = {}

    def walk(node: str, seen: frozenset[str]) -> int:
        if node in memo:
            return memo[node]
        below = [d for dep in graph.get(node, ()) for d in _apps_of(dep, graph)
                 if d not in seen]
        length = 1 + max((walk(d, seen | {d}) for d in below), default=0)
        memo[node] = length
        return length

    return walk(app_id, frozenset({app_id}))


def _apps_of(dependency: str, graph: dict[str, list[str]]) -> list[str]:
    if dependency in graph:
        return [dependency]
    prefix = dependency.rstrip("/") + "/"
    return [a for a in graph if a.startswith(prefix)]


def kill_order(tasks: list[model.Task], kill_selection: str | None) -> list[model.Task]:
    """Tasks in the order ``killSelection`` picks them (``YOUNGEST_FIRST`` by default)."""
    return sorted(tasks, key=lambda t: t.staged_at, reverse=kill_selection != "OLDEST_FIRST")
