"""``/v2/tasks`` and ``/v2/apps/{id}/tasks``: list tasks, kill them (and scale down)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from reconciler.devcluster import api, model, runtime

JSON = dict[str, Any]


async def app_tasks(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    if record is None:
        return api.not_found(app_id)
    return api.json_response({"tasks": [t.to_json() for t in record.tasks.values()]})


async def kill_app_task(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    if record is None:
        return api.not_found(app_id)
    task_id = request.match_info["task_id"]
    if task_id not in record.tasks:
        return api.json_response({"message": f"Task '{task_id}' does not exist"}, 404)
    return kill_response(request, cluster, {app_id: [task_id]})


def kill_response(
    request: web.Request, cluster: runtime.Cluster, by_app: dict[str, list[str]]
) -> web.Response:
    if api.flag(request, "scale"):
        # Marathon refuses a locked app before it kills anything (TaskKiller checks the lock).
        blocking = cluster.locking_deployments(list(by_app))
        if blocking and not api.flag(request, "force"):
            return api.locked(model.Locked(blocking))
        target: dict[str, JSON | None] = {}
        for app_id, task_ids in by_app.items():
            record = cluster.apps[app_id]
            instances = max(0, int(record.app["instances"]) - len(task_ids))
            cluster.kill_tasks(record, task_ids)
            target[app_id] = {**record.app, "instances": instances}
        try:
            deployment = cluster.start_deployment(target, force=api.flag(request, "force"))
        except model.Locked as e:
            return api.locked(e)
        return api.deployment_result(deployment)
    killed = []
    for app_id, task_ids in by_app.items():
        killed += cluster.kill_tasks(cluster.apps[app_id], task_ids)
    if len(by_app) == 1 and sum(len(v) for v in by_app.values()) == 1 and killed:
        return api.json_response({"task": killed[0].to_json()})
    return api.json_response({"tasks": [t.to_json() for t in killed]})


async def list_tasks(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    status = request.query.get("status")
    tasks = [t.to_json() for r in cluster.apps.values() for t in r.tasks.values()]
    if status:
        tasks = [t for t in tasks if t["state"].lower() == f"task_{status.lower()}"]
    return api.json_response({"tasks": tasks})


async def delete_tasks(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    body = await api.body(request)
    by_app: dict[str, list[str]] = {}
    for task_id in body.get("ids", []):
        owner = next((r for r in cluster.apps.values() if task_id in r.tasks), None)
        if owner is None:
            # Marathon (tasks.raml): unknown ids are a 400 and nothing is killed.
            return api.json_response({"message": f"Invalid task id {task_id}"}, 400)
        by_app.setdefault(owner.app["id"], []).append(task_id)
    if api.flag(request, "scale"):
        return kill_response(request, cluster, by_app)
    killed = [t for app_id, ids in by_app.items()
              for t in cluster.kill_tasks(cluster.apps[app_id], ids)]
    return api.json_response({"tasks": [t.to_json() for t in killed]})
