"""``/v2/groups``: read the group tree, and replace a group's apps in one deployment."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from reconciler.devcluster import api, groups, model, plans, runtime

JSON = dict[str, Any]


def _group_json(cluster: runtime.Cluster, group_id: str, embeds: frozenset[str]) -> JSON:
    prefix = group_id.rstrip("/")
    apps = [r for r in cluster.apps.values() if r.app["id"].startswith(prefix + "/")]
    direct = [cluster.app_json(r, embeds) for r in apps
              if r.app["id"].rsplit("/", 1)[0] == prefix]
    children = sorted({prefix + "/" + r.app["id"][len(prefix) + 1:].split("/", 1)[0]
                       for r in apps if "/" in r.app["id"][len(prefix) + 1:]})
    versions = [r.app["version"] for r in apps]
    return {
        "id": group_id if group_id != "" else "/",
        "apps": direct,
        "groups": [_group_json(cluster, c, embeds) for c in children],
        "pods": [],
        "dependencies": [],
        "version": max(versions) if versions else cluster.timestamp(),
        "enforceRole": False,
    }


async def get_group(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    group_id = "/" + request.match_info.get("group_id", "").strip("/")
    if group_id != "/" and not any(
        r.app["id"].startswith(group_id + "/") for r in cluster.apps.values()
    ):
        return api.json_response({"message": f"Group '{group_id}' does not exist"}, 404)
    tree = _group_json(cluster, "" if group_id == "/" else group_id, api.embeds(request))
    return api.json_response(tree)


async def put_group(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    group_id = "/" + request.match_info.get("group_id", "").strip("/")
    body = await api.body(request)
    if not isinstance(body, dict):
        return api.invalid([{"path": "/", "errors": ["error.expected.jsobject"]}])
    body = {k: v for k, v in body.items() if k != "id"}
    details = groups.validate_group({**body, "id": group_id})
    if details:
        return api.invalid(details)
    apps = groups.flatten_group(body, base=group_id)
    target: dict[str, JSON | None] = {}
    for app in apps:
        record = cluster.apps.get(app["id"])
        target[app["id"]] = api.prepare(cluster, app, record.app if record else None)
    if "apps" in body:
        # Marathon's group update replaces the group's app list: apps left out are stopped.
        for app_id in list(cluster.apps):
            if (app_id.rsplit("/", 1)[0] or "/") == group_id and app_id not in target:
                target[app_id] = None
    if api.flag(request, "dryRun"):
        original = {a: (cluster.apps[a].app if a in cluster.apps else None) for a in target}
        steps = plans.steps(original=original, target=target)
        return api.json_response({"id": "dry-run", "version": cluster.timestamp(),
                      "original": {"apps": [a for a in original.values() if a]},
                      "target": {"apps": [a for a in target.values() if a]},
                      "steps": [{"actions": s} for s in steps]})
    try:
        deployment = cluster.start_deployment(target, force=api.flag(request, "force"))
    except model.Locked as e:
        return api.locked(e)
    return api.deployment_result(deployment)
