"""What every route of the dev cluster's API shares: the cluster, Marathon's answers and flags.

Marathon's exact messages for 404, 409 and 422 are kept so clients see what a real Marathon
would send.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from reconciler.devcluster import defaults, model, runtime, serviceports, validation

JSON = dict[str, Any]


CLUSTER = web.AppKey("cluster", runtime.Cluster)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def not_found(app_id: str) -> web.Response:
    return json_response({"message": f"App '{app_id}' does not exist"}, 404)


def invalid(details: list[JSON]) -> web.Response:
    return json_response({"message": "Object is not valid", "details": details}, 422)


def rejected(definition: JSON) -> web.Response | None:
    """Marathon's 422 for an app definition (two phases: Invalid JSON, then rules), or None."""
    body = validation.rejection(definition)
    return None if body is None else json_response(body, 422)


def locked(error: model.Locked) -> web.Response:
    # MarathonExceptionMapper writes AppLockedException's fixed text, placeholder included.
    return json_response(
        {"message": model.LOCKED_MESSAGE, "deployments": [{"id": d.id} for d in error.deployments]},
        409,
    )


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    return default if value is None else value.lower() in ("true", "1", "")


@web.middleware
async def unknown_routes(request: web.Request, handler: Any) -> web.StreamResponse:
    """``MarathonExceptionMapper``: Jersey's ``NotFoundException`` (no route) becomes a 500
    with ``URI not found``."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPNotFound:
        return json_response({"message": "URI not found"}, 500)
    return response


@web.middleware
async def tentative_ports(request: web.Request, handler: Any) -> web.StreamResponse:
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
        kept = response.status < 300 and not flag(request, "dryRun")
        return response
    finally:
        serviceports.ALLOCATED_BY_REQUEST.reset(token)
        if not kept and allocated:
            request.app[CLUSTER].allocator.release(allocated)


_NO_CONTENT = {
    "message": "Please specify data in JSON format",
    "details": "No content to map due to end-of-input\n"
               ' at [Source: (String)""; line: 1, column: 0]',
}
"""``MarathonExceptionMapper`` for Jackson's ``JsonMappingException`` on an empty body."""


async def body(request: web.Request) -> Any:
    """The request's JSON; 400 as ``MarathonExceptionMapper`` writes Jackson's errors (the
    ``details`` string is the parser's own message: ours, not Jackson's)."""
    raw = await request.read()
    if not raw.strip():
        raise web.HTTPBadRequest(body=orjson.dumps(_NO_CONTENT), content_type="application/json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise web.HTTPBadRequest(
            body=orjson.dumps({"message": "Invalid JSON", "details": str(e)}),
            content_type="application/json",
        ) from e


_EMBED_PREFIXES = ("apps.", "app.", "group.apps.")


def embeds(request: web.Request) -> frozenset[str]:
    """``InfoEmbedResolver.resolveApp``: ``apps.tasks``, ``app.tasks`` or ``tasks`` -> ``tasks``;
    ``failures`` is the deprecated shorthand for ``lastTaskFailure`` and ``tasks``. Counts and
    deployments are always embedded, as Marathon's ``AppsResource`` still does."""
    embeds = set()
    for name in request.query.getall("embed", []):
        for prefix in _EMBED_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        embeds.add(name)
    if "failures" in embeds:
        embeds |= {"lastTaskFailure", "tasks"}
    return frozenset(embeds)


def deployment_result(deployment: model.Deployment, status: int = 200) -> web.Response:
    response = json_response({"version": deployment.version, "deploymentId": deployment.id}, status)
    response.headers["Marathon-Deployment-Id"] = deployment.id
    return response


def post_event(request: web.Request, app: JSON) -> None:
    cluster = request.app[CLUSTER]
    peer = request.remote or ""
    # Marathon sends the request URI without its query string.
    cluster.publish("api_post_event", clientIp=peer, uri=request.path, appDefinition=app)


def prepare(cluster: runtime.Cluster, definition: JSON, previous: JSON | None) -> JSON:
    return defaults.fill_defaults(definition, allocator=cluster.allocator, previous=previous)
