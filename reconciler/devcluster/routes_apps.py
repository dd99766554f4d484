"""``/v2/apps``: list, create, read, update, delete, restart apps and read their versions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from reconciler.devcluster import api, changes, defaults, ids, labels, model, shapes, validation

JSON = dict[str, Any]


async def list_apps(request: web.Request) -> web.StreamResponse:
    cluster = request.app[api.CLUSTER]
    embeds = api.embeds(request)
    prefix = request.query.get("id")
    label = request.query.get("label")
    cmd = request.query.get("cmd")
    records = list(cluster.apps.values())
    if prefix:
        needle = prefix.lower()
        records = [r for r in records if needle in r.app["id"].lower()]
    if cmd:
        needle = cmd.lower()
        records = [r for r in records if needle in (r.app.get("cmd") or "").lower()]
    if label is not None:
        try:
            selectors = labels.parse(label)
        except labels.SelectorError as e:  # IllegalArgumentException: 422 with its message
            return api.json_response(
                {"message": f"Can not parse label selector {label}. Reason: {e}"}, 422)
        records = [r for r in records if labels.matches(r.app.get("labels") or {}, selectors)]
    # The apps as of now (AppsResource.index selects them, then writes): then written as
    # they are serialized, not assembled first (RestResource.RestStreamingBody writes through
    # a buffered stream, so Marathon's answer is chunked too).
    parts = [cluster.app_bytes(r, embeds) for r in records]
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"apps":[')
    for start in range(0, len(parts), _APPS_PER_WRITE):
        await response.write((b"," if start else b"")
                             + b",".join(parts[start:start + _APPS_PER_WRITE]))
    await response.write(b"]}")
    await response.write_eof()
    return response


_APPS_PER_WRITE = 200
"""About 300 kB a write: the reader parses the first apps while the rest are sent."""


async def create_app(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    definition = await api.body(request)
    if not isinstance(definition, dict):
        return api.invalid([{"path": "/", "errors": ["error.expected.jsobject"]}])
    rejected = api.rejected(definition)
    if rejected is not None:
        return rejected
    app_id = ids.absolute_id(definition["id"])
    if app_id in cluster.apps:
        return api.json_response({"message": f"An app with id [{app_id}] already exists."}, 409)
    app = api.prepare(cluster, definition, None)
    try:
        deployment = cluster.start_deployment({app_id: app}, force=api.flag(request, "force"),
                                              group_id=ids.parent_id(app_id))
    except model.Locked as e:
        return api.locked(e)
    # AppsResource.create answers (and posts) the definition before the group manager saw it:
    # service ports as submitted, only a version, no versionInfo.
    submitted = {**defaults.canonical(definition), "version": deployment.version}
    api.post_event(request, submitted)
    body = {**submitted, "tasksStaged": 0, "tasksRunning": 0, "tasksHealthy": 0,
            "tasksUnhealthy": 0, "deployments": [{"id": deployment.id}]}
    response = api.json_response(body, 201)
    response.headers["Location"] = app_id
    response.headers["Marathon-Deployment-Id"] = deployment.id
    return response


async def get_app(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    if record is None:
        return await _group_or_404(request, app_id)
    # Marathon's AppsResource.show always adds tasks, counts, deployments and lastTaskFailure.
    embeds = api.embeds(request) | {"tasks", "lastTaskFailure"}
    return api.json_response({"app": cluster.app_json(record, embeds)})


async def _group_or_404(request: web.Request, app_id: str) -> web.Response:
    """``AppsResource.show``'s ``ListApps``: ``/v2/apps/{group}/*`` lists the group's apps,
    transitively, under the key ``*``; anything else is an unknown app."""
    cluster = request.app[api.CLUSTER]
    if not request.path.endswith("*"):
        return api.not_found(app_id)
    group_id = ids.absolute_id(request.match_info["app_id"].rstrip("*"))
    if not cluster.tree.exists(group_id):
        return api.json_response({"message": f"Group '{group_id}' does not exist"}, 404)
    embeds = api.embeds(request) | {"tasks", "lastTaskFailure"}
    prefix = "/" if group_id == "/" else group_id + "/"
    return api.json_response({"*": [cluster.app_json(r, embeds) for a, r in cluster.apps.items()
                                     if a.startswith(prefix)]})


async def update_app(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    update = await api.body(request)
    if not isinstance(update, dict):
        return api.invalid([{"path": "/", "errors": ["error.expected.jsobject"]}])
    record = cluster.apps.get(app_id)
    if record is None and request.method == "PATCH":
        return api.not_found(app_id)
    partial = request.method == "PATCH" or api.flag(request, "partialUpdate", True)
    if partial and "version" in update:
        # AppHelpers.updateOrRollback: {"version": v} puts that stored version back
        # (AppValidation.validateAppUpdateVersion: only with ``id``).
        if set(update) - {"id", "version"}:
            return api.invalid([{"path": "/", "errors": [
                "The 'version' field may only be combined with the 'id' field."]}])
        restored = record.versions.get(str(update["version"])) if record else None
        if record is not None and restored is None:
            return api.not_found(app_id)  # rollback: AppNotFoundException, no version named
        update = {} if restored is None else changes.definition_of(restored)
        partial = restored is None
    if record is not None and partial:
        definition = changes.apply_partial_update(record.app, update)
    else:
        definition = dict(update)
    # AppsResource.canonicalAppUpdateFromJson: the URL id replaces whatever id the body has.
    definition["id"] = app_id
    rejected = api.rejected(definition)
    if rejected is not None:
        return rejected
    app = api.prepare(cluster, definition, record.app if record else None)
    try:
        deployment = cluster.start_deployment({app_id: app}, force=api.flag(request, "force"),
                                              group_id=ids.parent_id(app_id))
    except model.Locked as e:
        return api.locked(e)
    # AppsResource.update posts plan.target.app(appId): as stored, with version and versionInfo.
    api.post_event(request, deployment.target.get(app_id) or app)
    if record is None:
        response = api.deployment_result(deployment, 201)
        response.headers["Location"] = app_id
        return response
    return api.deployment_result(deployment)


async def update_apps(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    updates = await api.body(request)
    if not isinstance(updates, list):
        return api.invalid([{"path": "/", "errors": ["error.expected.jsarray"]}])
    # PATCH /v2/apps (AppsResource.patchMultiple): a partial update that creates nothing.
    patch = request.method == "PATCH"
    partial = patch or api.flag(request, "partialUpdate", True)
    definitions: list[tuple[JSON, model.AppRecord | None]] = []
    for update in updates:
        if not isinstance(update, dict):
            return api.invalid([{"path": "/", "errors": ["error.expected.jsobject"]}])
        if partial and not update.get("id"):
            # AppsResource.canonicalAppUpdatesFromJson: a Scala require, mapped to 422.
            return api.json_response(
                {"message": "requirement failed: App Update must have app id set"}, 422)
        app_id = ids.absolute_id(str(update.get("id", "")))
        record = cluster.apps.get(app_id)
        if patch and record is None:
            return api.not_found(app_id)
        definition = (
            changes.apply_partial_update(record.app, update) if record and partial else update
        )
        definitions.append(({**definition, "id": app_id}, record))
    # The RAML reader reads the whole array first (play-json paths carry the index); then
    # AppsResource.updateMultiple validates app by app and throws on the first invalid one,
    # its paths relative to that app (AppHelpers.updateOrCreate -> validateOrThrow).
    shape_details: list[JSON] = []
    for i, (definition, _) in enumerate(definitions):
        problems = shapes.Problems()
        shapes.check_shapes(definition, problems)
        shape_details += [{"path": f"({i}){d['path']}", "errors": d["errors"]}
                          for d in problems.details()]
    if shape_details:
        return api.json_response({"message": validation.INVALID_JSON,
                                  "details": shape_details}, 422)
    target: dict[str, JSON | None] = {}
    for definition, record in definitions:
        rejected = validation.rule_rejection(definition)
        if rejected is not None:
            return api.json_response(rejected, 422)
        target[definition["id"]] = api.prepare(cluster, definition,
                                               record.app if record else None)
    try:
        deployment = cluster.start_deployment(target, force=api.flag(request, "force"))
    except model.Locked as e:
        return api.locked(e)
    # Marathon's AppsResource.updateMultiple posts no api_post_event (only single-app writes do).
    return api.deployment_result(deployment)


async def delete_app(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    if app_id not in cluster.apps:
        return api.not_found(app_id)
    # AppsResource.delete: force defaults to true, so a delete overrides a running deployment.
    try:
        deployment = cluster.start_deployment(
            {app_id: None}, force=api.flag(request, "force", True), group_id=ids.parent_id(app_id))
    except model.Locked as e:
        return api.locked(e)
    return api.deployment_result(deployment)


async def restart_app(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    if record is None:
        return api.not_found(app_id)
    try:
        deployment = cluster.start_deployment(
            {app_id: record.app}, force=api.flag(request, "force"), restart=True,
            group_id=ids.parent_id(app_id))
    except model.Locked as e:
        return api.locked(e)
    return api.deployment_result(deployment)


async def app_versions(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    if record is None:
        return api.not_found(app_id)
    return api.json_response({"versions": sorted(record.versions, reverse=True)})


async def app_version(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    if record is None:
        return api.not_found(app_id)
    version = request.match_info["version"]
    app = record.versions.get(version)
    if app is None:
        # AppVersionsResource.show: the version as Timestamp.toString prints it.
        message = f"App '{app_id}' does not exist in version {model.timestamp_text(version)}"
        return api.json_response({"message": message}, 404)
    return api.json_response(app)
