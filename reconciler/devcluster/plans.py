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
    unchanged app keeps its version; a scale moves ``version`` and ``lastScalingAt`` only; a
    config change (or a restart, ``withRestartChange``) moves ``lastConfigChangeAt`` too.
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
        if restart and previous is not None:
            new["version"] = version
            new["versionInfo"] = {**previous["versionInfo"], "lastConfigChangeAt": version}
        elif kind == "none" and previous is not None:
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


def upgrade_capacity(*, instances: int, strategy: JSON, running: int) -> tuple[int, int]:
    """``(minHealthy, maxCapacity)`` of a rolling upgrade (Marathon's ``TaskReplaceActor``).

    ``minHealthy = ceil(n * minimumHealthCapacity)`` old tasks are kept up front; old plus new
    tasks never exceed ``maxCapacity = floor(n * (1 + maximumOverCapacity))``, raised by one
    when it equals ``minHealthy`` and ``running`` tasks already fill it, so the upgrade can
    start at all.
    """
    min_healthy = math.ceil(instances * float(strategy["minimumHealthCapacity"]))
    max_capacity = math.floor(instances * (1 + float(strategy["maximumOverCapacity"])))
    if min_healthy == max_capacity and max_capacity <= running:
        max_capacity += 1
    return min_healthy, max_capacity


def steps(*, original: dict[str, JSON | None], target: dict[str, JSON | None]) -> list[list[JSON]]:
    """The steps of a deployment taking each app from ``original`` to ``target`` (None: absent).

    As Marathon's ``DeploymentPlan``: stops after starts, apps after the apps they depend on,
    and a new app started with 0 instances and then scaled, so its dependents wait for it.
    """
    actions: list[tuple[str, JSON]] = []
    for app_id in target:
        old, new = original.get(app_id), target[app_id]
        if new is None:
            actions.append((app_id, {"action": "StopApplication", "app": app_id}))
        elif old is None:
            actions.append((app_id, {"action": "StartApplication", "app": app_id}))
        else:
            kind = changes.change_kind(old, new)
            if kind == "config":
                actions.append((app_id, {"action": "RestartApplication", "app": app_id}))
            elif kind == "scale":
                actions.append((app_id, {"action": "ScaleApplication", "app": app_id}))
    order = dependency_order([a for a, _ in actions], target, original)
    by_app = dict(actions)
    steps: list[list[JSON]] = []
    for level in order:
        step = [by_app[a] for a in level if a in by_app]
        if step:
            steps.append(step)
        # Marathon starts a new app with 0 instances, then scales it, level by level, so
        # an app's dependents start only once it runs.
        scales = [{"action": "ScaleApplication", "app": a} for a in level
                  if by_app.get(a, {}).get("action") == "StartApplication"
                  and (target[a] or {}).get("instances", 0) > 0]
        if scales:
            steps.append(scales)
    return steps or [[]]


def dependency_order(
    app_ids: list[str], target: dict[str, JSON | None], original: dict[str, JSON | None]
) -> list[list[str]]:
    """Levels of apps: an app after the apps of this change that it depends on.

    Stops run in reverse: an app is stopped before the apps it depends on.
    """
    def deps(app_id: str) -> set[str]:
        app = target.get(app_id) or original.get(app_id) or {}
        return {d for d in app.get("dependencies") or [] if d in app_ids}

    levels: list[list[str]] = []
    placed: set[str] = set()
    remaining = set(app_ids)
    while remaining:
        level = sorted(a for a in remaining if deps(a) <= placed)
        if not level:  # a cycle: Marathon rejects it; here, just start the rest together
            level = sorted(remaining)
        levels.append(level)
        placed.update(level)
        remaining.difference_update(level)
    stops = [a for a in app_ids if target.get(a) is None]
    if stops:
        stop_levels = [[a for a in level if a in stops] for level in reversed(levels)]
        levels = [[a for a in level if a not in stops] for level in levels]
        levels = [lv for lv in levels if lv] + [lv for lv in stop_levels if lv]
    return levels


def kill_order(tasks: list[model.Task], kill_selection: str | None) -> list[model.Task]:
    """Tasks in the order ``killSelection`` picks them (``YOUNGEST_FIRST`` by default)."""
    return sorted(tasks, key=lambda t: t.staged_at, reverse=kill_selection != "OLDEST_FIRST")
