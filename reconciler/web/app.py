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
import urllib.parse
from typing import Any

import fastapi
import uvicorn

from reconciler.shell import config
from reconciler.shell import controller as controlling
from reconciler.web import (
    api,
    auth,
    context,
    dashboard,
    headers,
    leader,
    limits,
    offload,
    oidc,
    ops,
    webhooks,
)

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

    # Who may read and act: machine tokens, sign-on, roles (web/auth.py, web/oidc.py).
    policy = auth.Access.from_settings(controller.settings)
    reads = [fastapi.Depends(policy.reader(pages=False))]

    @app.get(f"{api.PREFIX}/status", dependencies=reads)
    @offload.route
    def status() -> dict[str, Any]:
        return controller.status().as_json()

    deps = context.Deps(records=controller.records, live_apps=controller.live_apps,
                      live_app=controller.live_app,
                      request_sync=controller.request_sync, rollback=controller.rollback,
                      preview_sync=controller.preview_sync,
                      closed_window=controller.closed_window,
                      override_sync=controller.request_sync,
                      token=controller.settings.api_token, access=policy,
                      board=controller.status_board,
                      replica=lambda: controller.status().as_json())
    oncall(app, deps, settings=controller.settings, with_dashboard=with_dashboard)
    if controller.leadership is not None:
        # Outermost: a follower refuses an action before anything else looks at it.
        app.add_middleware(leader.FollowersRefuseActions, view=controller.leadership.view)
    return app


def oncall(app: fastapi.FastAPI, deps: context.Deps, *, settings: config.Settings,
           with_dashboard: bool = True) -> fastapi.FastAPI:
    """The API and the dashboard on ``app``, behind ``deps.policy``, with sign-on when the
    settings name a provider; hardened."""
    policy = deps.policy
    app.include_router(api.api_router(deps),
                       dependencies=[fastapi.Depends(policy.reader(pages=False))])
    if with_dashboard:
        app.include_router(dashboard.dashboard_router(deps),
                           dependencies=[fastapi.Depends(policy.reader(pages=True))])
    oidc.install(app, settings=settings, policy=policy)
    return harden(app, form_targets=origins(settings.oidc_issuer))


def harden(app: fastapi.FastAPI, *, form_targets: tuple[str, ...] = ()) -> fastapi.FastAPI:
    """``app`` with every request body bounded before any work and security headers on every
    response, its refusals included (the last middleware added is the outermost)."""
    app.add_middleware(limits.BodyLimit,
                       by_prefix={"/webhooks/": limits.WEBHOOK_MAX_BODY})
    app.add_middleware(headers.SecurityHeaders, form_targets=form_targets)
    app.add_exception_handler(fastapi.exceptions.RequestValidationError, _refuse_invalid)
    return app


async def _refuse_invalid(_: fastapi.Request, error: Exception) -> fastapi.responses.Response:
    """422 naming each refused parameter and why, never echoing its value: a 60 KB query
    must not come back whole (nor a secret sent to the wrong parameter)."""
    problems = error.errors() if isinstance(error, fastapi.exceptions.RequestValidationError) \
        else []
    detail = [{"loc": [str(part)[:100] for part in p.get("loc", ())][:10],
               "msg": str(p.get("msg", ""))[:200], "type": str(p.get("type", ""))}
              for p in problems[:20]]
    return fastapi.responses.JSONResponse(status_code=422, content={"detail": detail})


def origins(url: str | None) -> tuple[str, ...]:
    if url is None:
        return ()
    parts = urllib.parse.urlsplit(url)
    return (f"{parts.scheme}://{parts.netloc}",)


def _before_scrape(controller: controlling.Controller) -> None:
    controller.refresh_metrics()
    controller.status_board.snapshot()  # the app gauges come with each new snapshot


class Server:
    """uvicorn serving an app in a daemon thread."""

    def __init__(self, app: fastapi.FastAPI, *, host: str, port: int) -> None:
        self._server = uvicorn.Server(uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off",
            ws="none",  # no WebSocket route: not loading a WebSocket stack
            # In C, parsing and the loop take fewer turns of the interpreter's lock per
            # request, each a wait while a release keeps the other threads busy.
            http="httptools", loop="uvloop"))
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
