"""The dev cluster's HTTP server: Marathon's REST API v2 routes, served until a signal.

Handlers (the ``routes_*`` modules) parse and validate requests, then call
:class:`runtime.Cluster`. Once listening, the server writes its URL to ``--url-file`` (see
``launch.py``) and removes it on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

from aiohttp import web

from reconciler.devcluster import (
    api,
    catalog,
    faults,
    routes_apps,
    routes_deployments,
    routes_groups,
    routes_info,
    routes_tasks,
    runtime,
    writers,
)


def make_app(cluster: runtime.Cluster) -> web.Application:
    delay = faults.answer_delay()
    middlewares = [writers.recorder(cluster.state_dir), api.unknown_routes,
                   api.tentative_ports] + (
        [faults.late_answers(delay)] if delay else [])
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=middlewares)
    app[api.CLUSTER] = cluster
    r = app.router
    r.add_get("/", routes_info.redirect_ui)
    r.add_get("/ping", routes_info.ping)
    r.add_get("/v2/info", routes_info.info)
    r.add_get("/v2/apps", routes_apps.list_apps)
    r.add_post("/v2/apps", routes_apps.create_app)
    r.add_put("/v2/apps", routes_apps.update_apps)
    r.add_patch("/v2/apps", routes_apps.update_apps)
    r.add_get("/v2/apps/{app_id:.+}/versions", routes_apps.app_versions)
    r.add_get("/v2/apps/{app_id:.+}/versions/{version}", routes_apps.app_version)
    r.add_get("/v2/apps/{app_id:.+}/tasks", routes_tasks.app_tasks)
    r.add_delete("/v2/apps/{app_id:.+}/tasks/{task_id}", routes_tasks.kill_app_task)
    r.add_delete("/v2/apps/{app_id:.+}/tasks", routes_tasks.kill_app_tasks)
    r.add_post("/v2/apps/{app_id:.+}/restart", routes_apps.restart_app)
    r.add_get("/v2/apps/{app_id:.+}", routes_apps.get_app)
    r.add_put("/v2/apps/{app_id:.+}", routes_apps.update_app)
    r.add_patch("/v2/apps/{app_id:.+}", routes_apps.update_app)
    r.add_delete("/v2/apps/{app_id:.+}", routes_apps.delete_app)
    r.add_get("/v2/tasks", routes_tasks.list_tasks)
    r.add_post("/v2/tasks/delete", routes_tasks.delete_tasks)
    r.add_get("/v2/deployments", routes_deployments.list_deployments)
    r.add_delete("/v2/deployments/{deployment_id}", routes_deployments.delete_deployment)
    r.add_get("/v2/groups", routes_groups.get_group)
    r.add_get("/v2/groups/{group_id:.*}", routes_groups.get_group)
    r.add_put("/v2/groups", routes_groups.put_group)
    r.add_put("/v2/groups/{group_id:.*}", routes_groups.put_group)
    r.add_post("/v2/groups", routes_groups.post_group)
    r.add_post("/v2/groups/{group_id:.*}", routes_groups.post_group)
    r.add_delete("/v2/groups", routes_groups.delete_group)
    r.add_patch("/v2/groups/{group_id:.+}", routes_groups.patch_group)
    r.add_get("/v2/plugins", routes_info.plugins)
    r.add_delete("/v2/groups/{group_id:.*}", routes_groups.delete_group)
    r.add_get("/v2/queue", routes_deployments.queue)
    r.add_delete("/v2/queue/{app_id:.+}/delay", routes_deployments.reset_delay)
    r.add_get("/v2/leader", routes_info.leader)
    r.add_delete("/v2/leader", routes_info.abdicate)
    r.add_get("/v2/events", routes_info.events)
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
