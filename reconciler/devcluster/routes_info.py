"""``/ping``, ``/v2/info`` and ``/v2/events``: who this Marathon is, and its event stream."""

from __future__ import annotations

import asyncio
import getpass
from typing import Any

from aiohttp import web

from reconciler.devcluster import api, tree

JSON = dict[str, Any]


VERSION = "1.11.0-devcluster"


async def info(request: web.Request) -> web.Response:
    """``InfoResource.index``: every key of Marathon 1.11, defaults as its flags have them."""
    host = request.host
    port = request.url.port
    return api.json_response({
        "name": "marathon",
        "version": VERSION,
        "buildref": "devcluster",
        "elected": True,
        "leader": host,
        "frameworkId": request.app[api.CLUSTER].framework_id,
        "marathon_config": {
            "access_control_allow_origin": None, "checkpoint": True,
            "decline_offer_duration": 120000, "default_network_name": None,
            "env_vars_prefix": None, "executor": "//cmd", "failover_timeout": 604800,
            "features": [], "framework_name": "marathon", "ha": True,
            "hostname": request.url.host, "launch_token": 100,
            "launch_token_refresh_interval": 30000, "leader_proxy_connection_timeout_ms": 5000,
            "leader_proxy_read_timeout_ms": 10000, "local_port_max": 20000,
            "local_port_min": 10000, "master": "devcluster", "max_instances_per_offer": 5,
            "mesos_bridge_name": "mesos-bridge", "mesos_heartbeat_failure_threshold": 5,
            "mesos_heartbeat_interval": 15000, "mesos_leader_ui_url": None, "mesos_role": "*",
            "mesos_user": getpass.getuser(), "new_group_enforce_role": "Off",
            "min_revive_offers_interval": 5000, "offer_matching_timeout": 3000,
            "on_elected_prepare_timeout": 180000, "reconciliation_initial_delay": 15000,
            "reconciliation_interval": 600000, "scale_apps_initial_delay": 15000,
            "scale_apps_interval": 300000, "store_cache": True,
            "task_launch_confirm_timeout": 300000, "task_launch_timeout": 300000,
            "task_lost_expunge_initial_delay": 300000, "task_lost_expunge_interval": 30000,
            "task_reservation_timeout": 20000, "webui_url": None, "maintenance_mode": True,
        },
        "zookeeper_config": {
            "zk": "zk://devcluster/marathon", "zk_compression": True,
            "zk_compression_threshold": 65536, "zk_connection_timeout": 10000,
            "zk_max_node_size": 1024000, "zk_max_versions": tree.MAX_VERSIONS,
            "zk_session_timeout": 10000, "zk_timeout": 10000,
        },
        "http_config": {"http_port": port, "https_port": 8443},
    })


async def leader(request: web.Request) -> web.Response:
    """``LeaderResource.index``: this instance is always the elected one."""
    return api.json_response({"leader": request.host})


async def abdicate(request: web.Request) -> web.Response:
    """``LeaderResource.delete``: acknowledged; with one instance the same one is elected again,
    so nothing changes (running deployments simply go on, as after a real re-election)."""
    return api.json_response({"message": "Leadership abdicated"})


async def redirect_ui(request: web.Request) -> web.Response:
    """``SystemResource.redirectUI`` (there is no UI here)."""
    return web.Response(status=302, headers={"Location": "/ui/"})


async def plugins(request: web.Request) -> web.Response:
    """``PluginsResource``: no plugins here."""
    return api.json_response({"plugins": []})


_PING_TYPES = frozenset({"text/plain", "text/html", "application/json", "text/*",
                         "application/*", "*/*"})


async def ping(request: web.Request) -> web.Response:
    # Marathon's SystemResource produces JSON: a JSON client gets the string "pong", quoted
    # (marathon-deploy checks exactly that); plain clients get the bare word.
    accept = request.headers.get("Accept", "")
    types = {t.split(";", 1)[0].strip() for t in accept.split(",")}
    if accept and not types & _PING_TYPES:
        return web.Response(status=204)  # SystemResource.ping: no variant the client takes
    if "application/json" in accept:
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
    remote = request.remote or ""
    # HttpEventStreamHandleActor publishes both on the bus: every stream hears of every other.
    cluster.publish("event_stream_attached", remoteAddress=remote)
    try:
        while True:
            try:
                frame = await asyncio.wait_for(queue_.get(), 1.0)
            except TimeoutError:
                # A quiet stream notices its client left only here: aiohttp does not cancel.
                if request.transport is None or request.transport.is_closing():
                    break
                continue
            await response.write(frame)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        cluster.events.unsubscribe(subscriber)
        cluster.publish("event_stream_detached", remoteAddress=remote)
    return response
