"""``/v2/deployments`` and ``/v2/queue``: what is being rolled out and what waits to launch."""

from __future__ import annotations

from aiohttp import web

from reconciler.devcluster import api


async def list_deployments(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    return api.json_response([d.to_json() for d in cluster.deployments.values()])


async def delete_deployment(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
    deployment = cluster.deployments.get(request.match_info["deployment_id"])
    if deployment is None:
        return api.json_response(
            {"message": f"DeploymentPlan {request.match_info['deployment_id']} does not exist"},
            404,
        )
    force = api.flag(request, "force")
    revert = cluster.cancel_deployment(deployment, force=force)
    if revert is None:
        return web.Response(status=202)
    return api.deployment_result(revert)


async def queue(request: web.Request) -> web.Response:
    cluster = request.app[api.CLUSTER]
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
            })
            if "lastUnusedOffers" in request.query.getall("embed", []):
                items[-1]["lastUnusedOffers"] = []  # QueueResource.index: only when embedded
    return api.json_response({"queue": items})


async def reset_delay(request: web.Request) -> web.Response:
    """``QueueResource.resetDelay``: 204 when the app waits to launch, else 404."""
    cluster = request.app[api.CLUSTER]
    app_id = "/" + request.match_info["app_id"].strip("/")
    record = cluster.apps.get(app_id)
    live = 0 if record is None else sum(1 for t in record.tasks.values() if not t.killing)
    if record is None or int(record.app["instances"]) <= live:
        return api.json_response(
            {"message": f"Application {app_id} not found in tasks queue."}, 404)
    record.reset_delay()
    cluster.launch_waiting(record)
    return web.Response(status=204)
