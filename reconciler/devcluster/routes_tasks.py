"""``/v2/tasks`` and ``/v2/apps/{id}/tasks``: list tasks, kill them (and scale down)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from reconciler.devcluster import api, ids, model, plain, runtime

JSON = dict[str, Any]


async def app_tasks(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    if app_id == "/*" or app_id.endswith("/*"):
        # AppTasksResource.indexJson (GroupTasks): the tasks of every app of the group.
        group_id = ids.absolute_id(app_id[:-1])
        if not cluster.tree.exists(group_id):
            return api.json_response({"message": f"Group '{group_id}' does not exist"}, 404)
        prefix = "/" if group_id == "/" else group_id + "/"
        return api.json_response({"tasks": [t.to_json() for a, r in cluster.apps.items()
                                             if a.startswith(prefix) for t in r.tasks.values()]})
    record = cluster.apps.get(app_id)
    if record is None:
        return api.not_found(app_id)
    return api.json_response({"tasks": [t.to_json() for t in record.tasks.values()]})


_SCALE_AND_WIPE = {"message": "You cannot use scale and wipe at the same time."}


def _task_of(record: model.AppRecord | None, instance: str) -> str | None:
    if record is None:
        return None
    return next((t for t in record.tasks if model.instance_id(t) == instance), None)


def _parsed(task_id: str) -> str | web.Response:
    """The instance a task id names, or Marathon's answer to an id that does not parse."""
    try:
        return model.parse_task_id(task_id)
    except model.InvalidTaskId as e:  # Task.Id.parse's MatchError
        return api.json_response({"message": str(e)}, 400)
    except ValueError as e:  # UUID.fromString: IllegalArgumentException
        return api.json_response({"message": str(e)}, 422)


async def kill_app_task(request: web.Request) -> web.Response:
    """``AppTasksResource.deleteOne``: the task's instance is killed (and replaced, or with
    ``scale`` the app scaled down); an unknown task scales nothing."""
    cluster = request.app[api.CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    if api.flag(request, "scale") and api.flag(request, "wipe"):
        return api.json_response(_SCALE_AND_WIPE, 400)
    task_id = request.match_info["task_id"]
    instance = _parsed(task_id)
    if isinstance(instance, web.Response):
        return instance
    record = cluster.apps.get(app_id)
    found = _task_of(record, instance)
    if found is None and not api.flag(request, "scale"):
        return api.json_response({"message": f"Task '{task_id}' does not exist"}, 404)
    if record is None:
        return api.not_found(app_id)
    return kill_response(request, cluster, {app_id: [found] if found else []}, one=True)


async def kill_app_tasks(request: web.Request) -> web.Response:
    """``AppTasksResource.deleteMany`` (``TaskKiller``): every task of the app, or those on
    ``host`` (``*``: all)."""
    cluster = request.app[api.CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    scale = api.flag(request, "scale")
    if scale and api.flag(request, "wipe"):
        return api.json_response(_SCALE_AND_WIPE, 400)
    record = cluster.apps.get(app_id)
    if scale and (record is None or not record.tasks):
        # TaskKiller.killAndScale: PathNotFoundException.
        return api.json_response({"message": f"Path '{app_id}' does not exist"}, 404)
    if record is None:
        return api.not_found(app_id)
    host = request.query.get("host")
    selected = [t for t in record.tasks if host in (None, "*", model.HOST)]
    return kill_response(request, cluster, {app_id: selected})


def kill_response(
    request: web.Request, cluster: runtime.Cluster, by_app: dict[str, list[str]], *,
    one: bool = False,
) -> web.Response:
    if api.flag(request, "scale"):
        # Marathon refuses a locked app before it kills anything (TaskKiller checks the lock).
        blocking = cluster.locking_deployments(list(by_app))
        if blocking and not api.flag(request, "force"):
            return api.locked(model.Locked(blocking))
        target: dict[str, JSON | None] = {}
        for app_id, task_ids in by_app.items():
            record = cluster.apps[app_id]
            # Only active tasks that are not already being killed count (TaskKiller).
            doomed = [t for t in task_ids if t in record.tasks and not record.tasks[t].killing]
            instances = max(0, int(record.app["instances"]) - len(doomed))
            cluster.kill_tasks(record, doomed)
            target[app_id] = {**record.app, "instances": instances}
        try:
            deployment = cluster.start_deployment(target, force=api.flag(request, "force"))
        except model.Locked as e:
            return api.locked(e)
        return api.deployment_result(deployment)
    killed = []
    for app_id, task_ids in by_app.items():
        killed += cluster.kill_tasks(cluster.apps[app_id], task_ids)
    if one and killed:
        return api.json_response({"task": killed[0].to_json()})
    return api.json_response({"tasks": [t.to_json() for t in killed]})


async def list_tasks(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    # TasksResource.indexJson: status (repeatable, also as status[]) knows running and
    # staging only; any other value filters nothing.
    wanted = {f"TASK_{s.upper()}" for s in request.query.getall("status", [])
              + request.query.getall("status[]", []) if s.lower() in ("running", "staging")}
    tasks = [t.to_json() for r in cluster.apps.values() for t in r.tasks.values()]
    if wanted:
        tasks = [t for t in tasks if t["state"] in wanted]
    return api.json_response({"tasks": tasks})


async def delete_tasks(request: web.Request) -> web.Response:
    """``TasksResource.killTasks``: ids that do not parse are refused; ids of no task are
    skipped."""
    cluster = request.app[api.CLUSTER]
    if api.flag(request, "scale") and api.flag(request, "wipe"):
        return api.json_response(_SCALE_AND_WIPE, 400)
    body = await api.body(request)
    by_app: dict[str, list[str]] = {}
    for task_id in plain.as_list(plain.as_dict(body).get("ids")):
        instance = _parsed(str(task_id))
        if isinstance(instance, web.Response):
            return instance
        for record in cluster.apps.values():
            found = _task_of(record, instance)
            if found is not None:
                by_app.setdefault(record.app["id"], []).append(found)
                break
    if api.flag(request, "scale"):
        return kill_response(request, cluster, by_app)
    killed = [t for app_id, ids in by_app.items()
              for t in cluster.kill_tasks(cluster.apps[app_id], ids)]
    return api.json_response({"tasks": [t.to_json() for t in killed]})
