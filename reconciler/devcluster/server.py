"""The dev cluster's HTTP API: Marathon's REST API v2 routes, status codes and JSON bodies.

Handlers parse and validate requests, then call :class:`runtime.Cluster`; Marathon's exact
messages for 404, 409 and 422 are kept so clients see what a real Marathon would send.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from reconciler.devcluster import (
    catalog,
    changes,
    defaults,
    groups,
    ids,
    runtime,
    serviceports,
    validation,
)

JSON = dict[str, Any]
CLUSTER = web.AppKey("cluster", runtime.Cluster)
VERSION = "1.11.0-devcluster"


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _not_found(app_id: str) -> web.Response:
    return _json({"message": f"App '{app_id}' does not exist"}, 404)


def _invalid(details: list[JSON]) -> web.Response:
    return _json({"message": "Object is not valid", "details": details}, 422)


def _rejected(definition: JSON) -> web.Response | None:
    """Marathon's 422 for an app definition (two phases: Invalid JSON, then rules), or None."""
    body = validation.rejection(definition)
    return None if body is None else _json(body, 422)


def _locked(error: runtime.Locked) -> web.Response:
    ids = [d.id for d in error.deployments]
    return _json(
        {
            "message": "App is locked by one or more deployments. Override with the option "
            f"'?force=true'. View details at '/v2/deployments/{ids[0]}'.",
            "deployments": [{"id": i} for i in ids],
        },
        409,
    )


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    return default if value is None else value.lower() in ("true", "1", "")


@web.middleware
async def _tentative_ports(request: web.Request, handler: Any) -> web.StreamResponse:
    """Service ports a write allocated are only kept if the write took effect: a 409, a 422
    or a dry run gives them back, as Marathon allocates ports only for the deployed plan."""
    if request.method in ("GET", "HEAD"):
        response: web.StreamResponse = await handler(request)
        return response
    allocated: list[int] = []
    token = serviceports.ALLOCATED_BY_REQUEST.set(allocated)
    kept = False
    try:
        response = await handler(request)
        kept = response.status < 300 and not _flag(request, "dryRun")
        return response
    finally:
        serviceports.ALLOCATED_BY_REQUEST.reset(token)
        if not kept and allocated:
            request.app[CLUSTER].allocator.release(allocated)


async def _body(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as e:
        raise web.HTTPBadRequest(
            body=orjson.dumps({"message": f"Invalid JSON: {e}"}), content_type="application/json"
        ) from e


def _embeds(request: web.Request) -> frozenset[str]:
    """``apps.tasks``/``app.tasks`` -> ``tasks``; ``failures`` is the deprecated shorthand for
    ``lastTaskFailure`` and ``tasks``. Counts and deployments are always embedded, as Marathon
    still does."""
    embeds = {e.split(".", 1)[1] for e in request.query.getall("embed", []) if "." in e}
    if "failures" in embeds:
        embeds |= {"lastTaskFailure", "tasks"}
    return frozenset(embeds)


def _deployment_result(deployment: runtime.Deployment, status: int = 200) -> web.Response:
    response = _json({"version": deployment.version, "deploymentId": deployment.id}, status)
    response.headers["Marathon-Deployment-Id"] = deployment.id
    return response


def _api_post_event(request: web.Request, app: JSON) -> None:
    cluster = request.app[CLUSTER]
    peer = request.remote or ""
    # Marathon sends the request URI without its query string.
    cluster.publish("api_post_event", clientIp=peer, uri=request.path, appDefinition=app)


# -- apps ---------------------------------------------------------------------------------------


async def list_apps(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    embeds = _embeds(request)
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
    if label:
        records = [r for r in records if _label_matches(r.app.get("labels") or {}, label)]
    if not embeds & {"tasks", "lastTaskFailure"}:
        parts = b",".join(cluster.app_bytes(r) for r in records)
        return web.Response(body=b'{"apps":[' + parts + b"]}", content_type="application/json")
    return _json({"apps": [cluster.app_json(r, embeds) for r in records]})


_LABEL_CLAUSE = re.compile(
    r"\s*(?P<key>(?:\\.|[^\s,=!()\\])+)\s*"
    r"(?:(?P<op>==|!=)\s*(?P<value>(?:\\.|[^,\\])*?)"
    r"|\s(?P<set>in|notin)\s*\((?P<values>[^)]*)\))?\s*(?:,|$)")


def _label_matches(labels: dict[str, str], selector: str) -> bool:
    """Marathon's label selector (apps.raml): ``key``, ``key==v``, ``key!=v``,
    ``key in (a, b)``, ``key notin (a, b)``, comma separated, ``\\`` escaping; every form
    needs the label to exist (LabelSelector.matches)."""
    def unescape(text: str) -> str:
        return re.sub(r"\\(.)", r"\1", text.strip())

    position = 0
    while position < len(selector):
        match = _LABEL_CLAUSE.match(selector, position)
        if match is None or match.end() == position:
            return False  # Marathon answers 400 on a bad selector; here nothing matches
        position = match.end()
        key = unescape(match["key"])
        if key not in labels:
            return False
        value = labels[key]
        if match["op"] == "==" and value != unescape(match["value"]):
            return False
        if match["op"] == "!=" and value == unescape(match["value"]):
            return False
        if match["set"]:
            members = {unescape(v) for v in re.split(r"(?<!\\),", match["values"])}
            if (value in members) != (match["set"] == "in"):
                return False
    return True


def _prepare(cluster: runtime.Cluster, definition: JSON, previous: JSON | None) -> JSON:
    return defaults.fill_defaults(definition, allocator=cluster.allocator, previous=previous)


async def create_app(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    definition = await _body(request)
    if not isinstance(definition, dict):
        return _invalid([{"path": "/", "errors": ["error.expected.jsobject"]}])
    rejected = _rejected(definition)
    if rejected is not None:
        return rejected
    app_id = ids.absolute_id(definition["id"])
    if app_id in cluster.apps:
        return _json({"message": f"An app with id [{app_id}] already exists."}, 409)
    app = _prepare(cluster, definition, None)
    try:
        deployment = cluster.start_deployment({app_id: app}, force=_flag(request, "force"))
    except runtime.Locked as e:
        return _locked(e)
    _api_post_event(request, app)
    body = cluster.app_json(cluster.apps[app_id])
    body["deployments"] = [{"id": deployment.id}]
    response = _json(body, 201)
    response.headers["Location"] = app_id
    response.headers["Marathon-Deployment-Id"] = deployment.id
    return response


async def get_app(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    if record is None:
        return await _group_or_404(request, app_id)
    # Marathon's AppsResource.show always adds tasks, counts, deployments and lastTaskFailure.
    return _json({"app": cluster.app_json(record, _embeds(request) | {"tasks", "lastTaskFailure"})})


async def _group_or_404(request: web.Request, app_id: str) -> web.Response:
    # GET /v2/apps/{group}/ lists the group's apps in Marathon; a plain miss is a 404.
    cluster = request.app[CLUSTER]
    if request.match_info["app_id"].endswith("/") or request.path.endswith("/*"):
        apps = [cluster.app_json(r) for r in cluster.apps.values()
                if r.app["id"].startswith(app_id.rstrip("*").rstrip("/") + "/")]
        return _json({"apps": apps})
    return _not_found(app_id)


async def update_app(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    update = await _body(request)
    if not isinstance(update, dict):
        return _invalid([{"path": "/", "errors": ["error.expected.jsobject"]}])
    record = cluster.apps.get(app_id)
    if record is None and request.method == "PATCH":
        return _not_found(app_id)
    partial = request.method == "PATCH" or _flag(request, "partialUpdate", True)
    if record is not None and partial:
        definition = changes.apply_partial_update(record.app, update)
    else:
        definition = dict(update)
    definition["id"] = app_id
    if "id" in update and ids.absolute_id(update["id"]) != app_id:
        return _invalid([{"path": "/id", "errors": ["The id in the body does not match the URL"]}])
    rejected = _rejected(definition)
    if rejected is not None:
        return rejected
    app = _prepare(cluster, definition, record.app if record else None)
    try:
        deployment = cluster.start_deployment({app_id: app}, force=_flag(request, "force"))
    except runtime.Locked as e:
        return _locked(e)
    _api_post_event(request, app)
    status = 201 if record is None else 200
    return _deployment_result(deployment, status)


async def update_apps(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    updates = await _body(request)
    if not isinstance(updates, list):
        return _invalid([{"path": "/", "errors": ["error.expected.jsarray"]}])
    partial = _flag(request, "partialUpdate", True)
    target: dict[str, JSON | None] = {}
    details: list[JSON] = []
    for i, update in enumerate(updates):
        app_id = ids.absolute_id(update.get("id", ""))
        record = cluster.apps.get(app_id)
        definition = (
            changes.apply_partial_update(record.app, update) if record and partial else update
        )
        definition = {**definition, "id": app_id}
        problems = validation.validate_app(definition)
        details += [{"path": f"({i}){p['path']}", "errors": p["errors"]} for p in problems]
        if not problems:
            target[app_id] = _prepare(cluster, definition, record.app if record else None)
    if details:
        return _invalid(details)
    try:
        deployment = cluster.start_deployment(target, force=_flag(request, "force"))
    except runtime.Locked as e:
        return _locked(e)
    # Marathon's AppsResource.updateMultiple posts no api_post_event (only single-app writes do).
    return _deployment_result(deployment)


async def delete_app(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    if app_id not in cluster.apps:
        return _not_found(app_id)
    try:
        deployment = cluster.start_deployment({app_id: None}, force=_flag(request, "force"))
    except runtime.Locked as e:
        return _locked(e)
    return _deployment_result(deployment)


async def restart_app(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    if record is None:
        return _not_found(app_id)
    try:
        deployment = cluster.start_deployment({app_id: record.app}, force=_flag(request, "force"),
                                              restart=True)
    except runtime.Locked as e:
        return _locked(e)
    return _deployment_result(deployment)


async def app_versions(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    if record is None:
        return _not_found(app_id)
    return _json({"versions": sorted(record.versions, reverse=True)})


async def app_version(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    if record is None:
        return _not_found(app_id)
    version = request.match_info["version"]
    app = record.versions.get(version)
    if app is None:
        return _json({"message": f"Version '{version}' of app '{app_id}' does not exist"}, 404)
    return _json(app)


async def app_tasks(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    if record is None:
        return _not_found(app_id)
    return _json({"tasks": [t.to_json() for t in record.tasks.values()]})


async def kill_app_task(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    if record is None:
        return _not_found(app_id)
    task_id = request.match_info["task_id"]
    if task_id not in record.tasks:
        return _json({"message": f"Task '{task_id}' does not exist"}, 404)
    return _kill_response(request, cluster, {app_id: [task_id]})


def _kill_response(
    request: web.Request, cluster: runtime.Cluster, by_app: dict[str, list[str]]
) -> web.Response:
    if _flag(request, "scale"):
        # Marathon refuses a locked app before it kills anything (TaskKiller checks the lock).
        blocking = cluster.locking_deployments(list(by_app))
        if blocking and not _flag(request, "force"):
            return _locked(runtime.Locked(blocking))
        target: dict[str, JSON | None] = {}
        for app_id, task_ids in by_app.items():
            record = cluster.apps[app_id]
            instances = max(0, int(record.app["instances"]) - len(task_ids))
            cluster.kill_tasks(record, task_ids)
            target[app_id] = {**record.app, "instances": instances}
        try:
            deployment = cluster.start_deployment(target, force=_flag(request, "force"))
        except runtime.Locked as e:
            return _locked(e)
        return _deployment_result(deployment)
    killed = []
    for app_id, task_ids in by_app.items():
        killed += cluster.kill_tasks(cluster.apps[app_id], task_ids)
    if len(by_app) == 1 and sum(len(v) for v in by_app.values()) == 1 and killed:
        return _json({"task": killed[0].to_json()})
    return _json({"tasks": [t.to_json() for t in killed]})


async def list_tasks(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    status = request.query.get("status")
    tasks = [t.to_json() for r in cluster.apps.values() for t in r.tasks.values()]
    if status:
        tasks = [t for t in tasks if t["state"].lower() == f"task_{status.lower()}"]
    return _json({"tasks": tasks})


async def delete_tasks(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    body = await _body(request)
    by_app: dict[str, list[str]] = {}
    for task_id in body.get("ids", []):
        owner = next((r for r in cluster.apps.values() if task_id in r.tasks), None)
        if owner is None:
            # Marathon (tasks.raml): unknown ids are a 400 and nothing is killed.
            return _json({"message": f"Invalid task id {task_id}"}, 400)
        by_app.setdefault(owner.app["id"], []).append(task_id)
    if _flag(request, "scale"):
        return _kill_response(request, cluster, by_app)
    killed = [t for app_id, ids in by_app.items()
              for t in cluster.kill_tasks(cluster.apps[app_id], ids)]
    return _json({"tasks": [t.to_json() for t in killed]})


# -- deployments ----------------------------------------------------------------------------


async def list_deployments(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    return _json([d.to_json() for d in cluster.deployments.values()])


async def delete_deployment(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    deployment = cluster.deployments.get(request.match_info["deployment_id"])
    if deployment is None:
        return _json(
            {"message": f"DeploymentPlan {request.match_info['deployment_id']} does not exist"},
            404,
        )
    force = _flag(request, "force")
    revert = cluster.cancel_deployment(deployment, force=force)
    if revert is None:
        return web.Response(status=202)
    return _deployment_result(revert)


# -- groups, queue, info, events ------------------------------------------------------------


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
        "version": max(versions) if versions else runtime.now_iso(),
        "enforceRole": False,
    }


async def get_group(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    group_id = "/" + request.match_info.get("group_id", "").strip("/")
    if group_id != "/" and not any(
        r.app["id"].startswith(group_id + "/") for r in cluster.apps.values()
    ):
        return _json({"message": f"Group '{group_id}' does not exist"}, 404)
    return _json(_group_json(cluster, "" if group_id == "/" else group_id, _embeds(request)))


async def put_group(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    group_id = "/" + request.match_info.get("group_id", "").strip("/")
    body = await _body(request)
    if not isinstance(body, dict):
        return _invalid([{"path": "/", "errors": ["error.expected.jsobject"]}])
    body = {k: v for k, v in body.items() if k != "id"}
    details = groups.validate_group({**body, "id": group_id})
    if details:
        return _invalid(details)
    apps = groups.flatten_group(body, base=group_id)
    target: dict[str, JSON | None] = {}
    for app in apps:
        record = cluster.apps.get(app["id"])
        target[app["id"]] = _prepare(cluster, app, record.app if record else None)
    if "apps" in body:
        # Marathon's group update replaces the group's app list: apps left out are stopped.
        for app_id in list(cluster.apps):
            if (app_id.rsplit("/", 1)[0] or "/") == group_id and app_id not in target:
                target[app_id] = None
    if _flag(request, "dryRun"):
        original = {a: (cluster.apps[a].app if a in cluster.apps else None) for a in target}
        steps = cluster._steps(original, target)  # noqa: SLF001 (same package)
        return _json({"id": "dry-run", "version": runtime.now_iso(),
                      "original": {"apps": [a for a in original.values() if a]},
                      "target": {"apps": [a for a in target.values() if a]},
                      "steps": [{"actions": s} for s in steps]})
    try:
        deployment = cluster.start_deployment(target, force=_flag(request, "force"))
    except runtime.Locked as e:
        return _locked(e)
    return _deployment_result(deployment)


async def queue(request: web.Request) -> web.Response:
    cluster = request.app[CLUSTER]
    items = []
    for record in cluster.apps.values():
        live = [t for t in record.tasks.values() if not t.killing]
        waiting = int(record.app["instances"]) - len(live)
        delay = max(0.0, record.launch_delay_until - cluster.clock())
        if waiting > 0 or delay > 0:
            items.append({
                "app": cluster.app_json(record),
                "count": max(waiting, 0),
                "role": record.app.get("role", "*"),
                "delay": {"timeLeftSeconds": int(delay), "overdue": delay == 0},
                "since": record.app["versionInfo"]["lastConfigChangeAt"],
                "processedOffersSummary": {"processedOffersCount": 0,
                                           "unusedOffersCount": 0, "rejectSummaryLastOffers": []},
                "lastUnusedOffers": [],
            })
    return _json({"queue": items})


async def info(request: web.Request) -> web.Response:
    host = request.host
    return _json({
        "name": "marathon",
        "version": VERSION,
        "buildref": "devcluster",
        "elected": True,
        "leader": host,
        "frameworkId": "devcluster-framework-0000",
        "marathon_config": {"master": "devcluster", "local_port_min": 10000,
                            "local_port_max": 20000, "task_launch_timeout": 300000},
        "zookeeper_config": {"zk": "none"},
        "http_config": {"http_port": request.url.port},
        "event_subscriber": None,
    })


async def ping(request: web.Request) -> web.Response:
    # Marathon's SystemResource produces JSON: a JSON client gets the string "pong", quoted
    # (marathon-deploy checks exactly that); plain clients get the bare word.
    if "application/json" in request.headers.get("Accept", ""):
        return web.Response(text='"pong"', content_type="application/json")
    return web.Response(text="pong", content_type="text/plain")


async def events(request: web.Request) -> web.StreamResponse:
    cluster = request.app[CLUSTER]
    types = frozenset(request.query.getall("event_type", []))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    queue_: asyncio.Queue[bytes] = asyncio.Queue()
    subscriber = (queue_, types)
    cluster.subscribers.append(subscriber)
    try:
        attached = {"remoteAddress": request.remote or "", "eventType": "event_stream_attached",
                    "timestamp": runtime.now_iso()}
        if not types or "event_stream_attached" in types:
            await response.write(b"event: event_stream_attached\ndata: "
                                 + orjson.dumps(attached) + b"\n\n")
        while True:
            frame = await queue_.get()
            await response.write(frame)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        cluster.subscribers.remove(subscriber)
    return response


def make_app(cluster: runtime.Cluster) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[_tentative_ports])
    app[CLUSTER] = cluster
    r = app.router
    r.add_get("/ping", ping)
    r.add_get("/v2/info", info)
    r.add_get("/v2/apps", list_apps)
    r.add_post("/v2/apps", create_app)
    r.add_put("/v2/apps", update_apps)
    r.add_get("/v2/apps/{app_id:.+}/versions", app_versions)
    r.add_get("/v2/apps/{app_id:.+}/versions/{version}", app_version)
    r.add_get("/v2/apps/{app_id:.+}/tasks", app_tasks)
    r.add_delete("/v2/apps/{app_id:.+}/tasks/{task_id}", kill_app_task)
    r.add_post("/v2/apps/{app_id:.+}/restart", restart_app)
    r.add_get("/v2/apps/{app_id:.+}", get_app)
    r.add_put("/v2/apps/{app_id:.+}", update_app)
    r.add_patch("/v2/apps/{app_id:.+}", update_app)
    r.add_delete("/v2/apps/{app_id:.+}", delete_app)
    r.add_get("/v2/tasks", list_tasks)
    r.add_post("/v2/tasks/delete", delete_tasks)
    r.add_get("/v2/deployments", list_deployments)
    r.add_delete("/v2/deployments/{deployment_id}", delete_deployment)
    r.add_get("/v2/groups", get_group)
    r.add_get("/v2/groups/{group_id:.*}", get_group)
    r.add_put("/v2/groups/{group_id:.*}", put_group)
    r.add_get("/v2/queue", queue)
    r.add_get("/v2/events", events)
    return app


def serve(
    *, host: str, port: int, state_dir: Path, images: Path | None, url_file: Path | None = None
) -> None:
    """Run in the foreground until SIGINT/SIGTERM; every task started is stopped on the way out.

    ``port`` 0 listens on a free port; ``url_file`` gets the URL once the API listens (so a
    launcher needs no HTTP probe) and is removed on the way out.
    """
    asyncio.run(_serve(host=host, port=port, state_dir=state_dir, images=images,
                       url_file=url_file))


def _listening_port(runner: web.AppRunner) -> int:
    address = runner.addresses[0]
    return int(address[1])


def _write_url(url_file: Path, url: str) -> None:
    # By rename: whoever waits for the file never reads it half written.
    url_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = url_file.with_name(url_file.name + ".tmp")
    tmp.write_text(url + "\n")
    tmp.replace(url_file)


async def _serve(
    *, host: str, port: int, state_dir: Path, images: Path | None, url_file: Path | None
) -> None:
    cluster = runtime.Cluster(images=catalog.load(images), state_dir=state_dir,
                              clock=time.monotonic)
    await cluster.start()
    web_app = make_app(cluster)
    runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    url = f"http://{host}:{_listening_port(runner)}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"dev cluster: Marathon API on {url} (state in {state_dir})", flush=True)
    if url_file is not None:
        _write_url(url_file, url)
    try:
        await stop.wait()
    finally:
        if url_file is not None:
            with contextlib.suppress(FileNotFoundError):
                url_file.unlink()
        with contextlib.suppress(Exception):
            await cluster.stop()
        await runner.cleanup()


