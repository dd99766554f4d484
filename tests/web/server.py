"""A real HTTP server for web tests: uvicorn serving a FastAPI app in a thread, on a free port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import fastapi
import uvicorn

from reconciler.shell.ports import free_port
from reconciler.web import api, context, dashboard
from reconciler.web import app as web_app


def oncall_app(deps: context.Deps) -> fastapi.FastAPI:
    """The on-call routers mounted as the controller's create_app mounts them."""
    app = fastapi.FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(api.api_router(deps))
    app.include_router(dashboard.dashboard_router(deps))
    return web_app.harden(app)


@contextmanager
def serving(app: fastapi.FastAPI, *, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (on ``port``, else a free one) until the block ends;
    yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
