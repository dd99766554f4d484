"""The controller's web application: webhooks, operations, the on-call API and dashboard.

``create_app(controller)`` composes routers, each from its own module, so that a part can be
left out or added without touching the others, behind :func:`harden` (bounded request bodies,
security headers on every response). ``serve(app, host=..., port=...)`` runs
uvicorn in a daemon thread (``reconciler run`` does).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import fastapi
import uvicorn

from reconciler.shell import controller as controlling
from reconciler.web import api, context, dashboard, headers, limits, ops, webhooks

log = logging.getLogger(__name__)


def create_app(controller: controlling.Controller, *, with_dashboard: bool = True
               ) -> fastapi.FastAPI:
    app = fastapi.FastAPI(title="reconciler", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(webhooks.webhook_router(secret=controller.settings.webhook_secret,
                                               trigger_poll=controller.trigger_poll))
    app.include_router(ops.ops_router(ready=controller.not_ready_because,
                                      alive=lambda: controller.alive,
                                      before_scrape=lambda: _before_scrape(controller),
                                      status=lambda: controller.status().as_json()))

    @app.get(f"{api.PREFIX}/status")
    def status() -> dict[str, Any]:
        return controller.status().as_json()

    deps = context.Deps(records=controller.records, live_apps=controller.live_apps,
                      request_sync=controller.request_sync, rollback=controller.rollback,
                      preview_sync=controller.preview_sync,
                      token=controller.settings.api_token, board=controller.status_board)
    app.include_router(api.api_router(deps))
    if with_dashboard:
        app.include_router(dashboard.dashboard_router(deps))
    return harden(app)


def harden(app: fastapi.FastAPI) -> fastapi.FastAPI:
    """``app`` with every request body bounded before any work and security headers on every
    response, its refusals included (the last middleware added is the outermost)."""
    app.add_middleware(limits.BodyLimit,
                       by_prefix={"/webhooks/": limits.WEBHOOK_MAX_BODY})
    app.add_middleware(headers.SecurityHeaders)
    return app


def _before_scrape(controller: controlling.Controller) -> None:
    controller.refresh_metrics()
    controller.status_board.snapshot()  # the app gauges come with each new snapshot


class Server:
    """uvicorn serving an app in a daemon thread."""

    def __init__(self, app: fastapi.FastAPI, *, host: str, port: int) -> None:
        self._server = uvicorn.Server(uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)

    def start(self, *, timeout: float = 15.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the web server did not start (is the port in use?)")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
