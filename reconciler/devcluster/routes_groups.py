"""``/v2/groups``: read the group tree and its versions; create, update, scale, revert, delete.

Marathon's ``GroupsResource`` over ``GroupApiService.updateGroup``: every write is one new root
(``cluster.start_deployment`` with the tree change), published as ``group_change_success`` for
the parent of the URL's group.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from reconciler.devcluster import api, changes, groups, ids, model, plans, runtime, tree

JSON = dict[str, Any]

_VERSIONS = re.compile(r"^(?:(?P<group>.*)/)?versions(?:/(?P<version>[^/]+))?$")
"""``GroupsResource.group``'s ``ListVersionsRE``/``GetVersionRE`` (and the root forms)."""
_APP_EMBEDS = ("counts", "tasks", "deployments", "lastTaskFailure")


def _group_id(request: web.Request) -> str:
    return ids.absolute_id(request.match_info.get("group_id", ""))


def unknown_group(group_id: str) -> web.Response:
    """``RestResource.unknownGroup`` (``UnknownGroupException`` reads the same)."""
    return api.json_response({"message": f"Group '{group_id}' does not exist"}, 404)


def _tree_json(
    group_id: str, *, groups: set[str] | frozenset[str], apps: dict[str, JSON], version: str,
    with_apps: bool = True, with_groups: bool = True,
) -> JSON:
    """``DefaultInfoService.selectGroup``: a group with its apps and subgroups, every group
    carrying the root's version (``RootGroup.updateVersion``)."""
    by_parent: dict[str, list[JSON]] = {}
    for app_id, app in apps.items():
        by_parent.setdefault(ids.parent_id(app_id), []).append(app)
    children: dict[str, list[str]] = {}
    for g in groups:
        children.setdefault(ids.parent_id(g), []).append(g)

    def build(gid: str) -> JSON:
        return {
            "id": gid,
            "apps": sorted(by_parent.get(gid, []), key=lambda a: a["id"]) if with_apps else [],
            "groups": [build(c) for c in sorted(children.get(gid, []))] if with_groups else [],
            "pods": [],
            "dependencies": [],
            "version": version,
            "enforceRole": False,
        }

    return build(group_id)


async def get_group(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    raw = request.match_info.get("group_id", "").strip("/")
    versions = _VERSIONS.match(raw)
    if versions is not None:
        group_id = ids.absolute_id(versions["group"] or "")
        return _group_versions(cluster, group_id, versions["version"])
    if raw == "apps" or raw.endswith("/apps"):
        group_id = ids.absolute_id(raw[: -len("apps")])
        return api.json_response([cluster.app_json(r) for a, r in cluster.apps.items()
                                  if tree.within(a, group_id) and a != group_id])
    group_id = ids.absolute_id(raw)
    if not cluster.tree.exists(group_id):
        return unknown_group(group_id)
    # InfoEmbedResolver.resolveAppGroup: group.apps, group.groups by default; app fields only
    # from group.apps.<x> (no counts or deployments otherwise).
    wanted = request.query.getall("embed", []) or ["group.apps", "group.groups"]
    app_embeds = frozenset(e.split(".", 2)[2] for e in wanted
                           if e.startswith("group.apps.") and e.count(".") == 2)
    if "failures" in app_embeds:
        app_embeds |= {"tasks", "lastTaskFailure", "deployments"}
    apps = {a: _app_in_group(cluster, r, app_embeds) for a, r in cluster.apps.items()
            if tree.within(a, group_id)}
    groups_ = {g for g in cluster.tree.groups if tree.within(g, group_id) and g != group_id}
    return api.json_response(_tree_json(
        group_id, groups=groups_, apps=apps, version=cluster.tree.version,
        with_apps="group.apps" in wanted or bool(app_embeds),
        with_groups="group.groups" in wanted))


def _app_in_group(
    cluster: runtime.Cluster, record: model.AppRecord, embeds: frozenset[str],
) -> JSON:
    full = cluster.app_json(record, embeds)
    app = changes.definition_of(full)
    app["version"], app["versionInfo"] = full["version"], full["versionInfo"]
    if "counts" in embeds or "tasks" in embeds:
        app.update({k: full[k] for k in ("tasksStaged", "tasksRunning", "tasksHealthy",
                                         "tasksUnhealthy")})
    if "deployments" in embeds or "tasks" in embeds:
        app["deployments"] = full["deployments"]
    for key in ("tasks", "lastTaskFailure"):
        if key in full:
            app[key] = full[key]
    return app


def _group_versions(cluster: runtime.Cluster, group_id: str, version: str | None) -> web.Response:
    if version is None:
        if not cluster.tree.exists(group_id):
            return unknown_group(group_id)
        # GroupManagerImpl.versions: a bare array of the root versions holding the group.
        return api.json_response(cluster.tree.versions_of(group_id))
    root = cluster.tree.at(group_id, model.timestamp_text(version))
    if root is None:
        return unknown_group(group_id)
    apps = {a: app for a, app in root.apps.items() if tree.within(a, group_id)}
    groups_ = {g for g in root.groups if tree.within(g, group_id) and g != group_id}
    return api.json_response(_tree_json(group_id, groups=groups_, apps=apps,
                                        version=root.version))


async def put_group(request: web.Request) -> web.Response:
    return await _update_group(request, create=False)


async def post_group(request: web.Request) -> web.Response:
    return await _update_group(request, create=True)


async def _update_group(request: web.Request, *, create: bool) -> web.Response:
    """``GroupsResource.update``/``create``: the body's ``id`` is resolved against the URL's
    path; ``version`` (revert) and ``scaleBy`` must be alone; else a structural update."""
    cluster = request.app[api.CLUSTER]
    url_id = _group_id(request)
    body = await api.body(request)
    if not isinstance(body, dict):
        return api.invalid([{"path": "/", "errors": ["error.expected.jsobject"]}])
    for key in ("version", "scaleBy"):
        if key in body and len(body) > 1:  # Validation.theOnlyDefinedOptionIn
            return api.invalid([{"path": f"/{key}",
                                 "errors": ["not allowed in conjunction with other properties."]}])
    raw_id = body.get("id")
    group_id = url_id
    if isinstance(raw_id, str) and raw_id:
        group_id = ids.absolute_id(raw_id, base=url_id)
    if create:
        if cluster.tree.exists(group_id):
            return api.json_response({"message": f"Group {group_id} is already created. "
                                                 "Use PUT to change this group."}, 409)
        if group_id in cluster.apps:
            return api.json_response(
                {"message": f"An app with the path {group_id} already exists."}, 409)
    change = _change(cluster, group_id, body)
    if isinstance(change, web.Response):
        return change
    target, tree_change = change
    if api.flag(request, "dryRun"):
        original = {a: (cluster.apps[a].app if a in cluster.apps else None) for a in target}
        steps = plans.steps(original=original, target=target)
        return api.json_response({"steps": [{"actions": s} for s in steps]})  # DeploymentSteps
    try:
        deployment = cluster.start_deployment(target, force=api.flag(request, "force"),
                                              group_id=ids.parent_id(url_id), groups=tree_change)
    except model.Locked as e:
        return api.locked(e)
    if not create:
        return api.deployment_result(deployment)
    response = api.deployment_result(deployment, 201)
    response.headers["Location"] = str(request.url.with_path(group_id).with_query(None))
    return response


Change = tuple[dict[str, JSON | None], Callable[[tree.GroupTree], None]]


def _change(cluster: runtime.Cluster, group_id: str, body: JSON) -> Change | web.Response:
    """The apps a group write changes, and what it does to the tree (``GroupApiService``)."""
    below = [a for a in cluster.apps if tree.within(a, group_id) and a != group_id]
    if "version" in body:
        version = model.timestamp_text(str(body["version"]))
        root = cluster.tree.at(group_id, version)
        if root is None:
            return api.json_response(
                {"message": f"Group {group_id} not available in version {version}"}, 422)
        then = {a: app for a, app in root.apps.items() if tree.within(a, group_id)}
        target: dict[str, JSON | None] = {a: None for a in below if a not in then}
        for app_id, app in then.items():
            record = cluster.apps.get(app_id)
            target[app_id] = api.prepare(cluster, changes.definition_of(app),
                                         record.app if record else None)
        old_groups = [g for g in root.groups if tree.within(g, group_id)]

        def revert(t: tree.GroupTree) -> None:
            t.remove(group_id)
            t.add([group_id, *old_groups], groups=True)

        return target, revert
    if "scaleBy" in body:
        factor = body["scaleBy"]
        if not isinstance(factor, int | float) or isinstance(factor, bool):
            return api.invalid([{"path": "/scaleBy", "errors": ["error.expected.jsnumber"]}])
        scaled: dict[str, JSON | None] = {
            a: {**cluster.apps[a].app, "instances": math.ceil(cluster.apps[a].app["instances"]
                                                              * factor)} for a in below}
        return scaled, lambda t: None
    structure = {k: v for k, v in body.items() if k != "id"}
    details = groups.validate_group({**structure, "id": group_id})
    if details:
        return api.invalid(details)
    target = {}
    for app in groups.flatten_group(structure, base=group_id):
        record = cluster.apps.get(app["id"])
        target[app["id"]] = api.prepare(cluster, app, record.app if record else None)
    gone_apps, gone_groups = groups.left_out(
        structure, base=group_id, apps=list(cluster.apps), groups=sorted(cluster.tree.groups))
    for app_id in gone_apps:
        target.setdefault(app_id, None)
    declared = groups.group_ids(structure, base=group_id)

    def restructure(t: tree.GroupTree) -> None:
        for gone in gone_groups:
            t.remove(gone)
        t.add(declared, groups=True)

    return target, restructure


async def delete_group(request: web.Request) -> web.Response:
    """``GroupsResource.delete``: the group and all below it leave the root at once."""
    cluster = request.app[api.CLUSTER]
    group_id = _group_id(request)
    if not cluster.tree.exists(group_id):
        return unknown_group(group_id)
    target: dict[str, JSON | None] = {a: None for a in cluster.apps if tree.within(a, group_id)}
    try:
        deployment = cluster.start_deployment(
            target, force=api.flag(request, "force"), group_id=ids.parent_id(group_id),
            groups=lambda t: t.remove(group_id))
    except model.Locked as e:
        return api.locked(e)
    return api.deployment_result(deployment)


async def patch_group(request: web.Request) -> web.Response:
    """``GroupsResource.patchGroup``: only ``enforceRole`` of a top-level group, empty 200
    (the dev cluster stores no roles: ``enforceRole`` stays false)."""
    cluster = request.app[api.CLUSTER]
    group_id = _group_id(request)
    if ids.parent_id(group_id) != "/" or group_id == "/":
        return api.invalid([{"path": "/", "errors": ["Path needs to be top-level"]}])
    if not cluster.tree.exists(group_id):
        return unknown_group(group_id)
    await api.body(request)
    return web.Response(status=200)
