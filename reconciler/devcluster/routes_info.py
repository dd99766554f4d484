"""``/ping``, ``/v2/info`` and ``/v2/events``: who this Marathon is, and its event stream."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from reconciler.devcluster import api
from reconciler.devcluster import events as events_

JSON = dict[str, Any]


VERSION = "1.11.0-devcluster"


async def info(request: web.Request) -> web.Response:
    host = request.host
    return api.json_response({
        "name": "marathon",
        "version": VERSION,
        "buildref": "devcluster",
        "elected": True,
        "leader": host,
        "frameworkId": request.app[api.CLUSTER].framework_id,
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
    cluster = request.app[api.CLUSTER]
    types = frozenset(request.query.getall("event_type", []))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    subscriber = cluster.events.subscribe(types)
    queue_, _ = subscriber
    try:
        attached = {"remoteAddress": request.remote or "", "eventType": "event_stream_attached",
                    "timestamp": cluster.timestamp()}
        if not types or "event_stream_attached" in types:
            await response.write(events_.frame("event_stream_attached", attached))
        while True:
            frame = await queue_.get()
            await response.write(frame)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        cluster.events.unsubscribe(subscriber)
    return response
