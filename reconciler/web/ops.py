"""Operations endpoints: ``/metrics`` (Prometheus), ``/healthz`` (the scheduler runs), ``/readyz``
(a revision has been reconciled and nothing stands in the way; ``reasons`` says what does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastapi
from fastapi import responses

from reconciler.shell import telemetry
from reconciler.web import offload


def ops_router(*, ready: Callable[[], list[str]], alive: Callable[[], bool] = lambda: True,
               before_scrape: Callable[[], None] | None = None,
               status: Callable[[], dict[str, Any]] | None = None) -> fastapi.APIRouter:
    router = fastapi.APIRouter(include_in_schema=False)

    @router.get("/metrics")
    @offload.operation
    def metrics() -> responses.Response:
        if before_scrape is not None:
            before_scrape()
        body, content_type = telemetry.metrics_text()
        return responses.Response(content=body, media_type=content_type)

    @router.get("/healthz")
    async def healthz() -> responses.JSONResponse:
        # 503 when the scheduler died: Marathon's health check then replaces the task.
        # On the loop itself: no thread to wait for while a release keeps them all busy.
        is_alive = alive()
        return responses.JSONResponse({"alive": is_alive}, status_code=200 if is_alive else 503)

    @router.get("/readyz")
    @offload.operation
    def readyz() -> responses.JSONResponse:
        reasons = ready()
        is_ready = not reasons
        body: dict[str, Any] = {"ready": is_ready, "reasons": reasons}
        if status is not None:
            body["status"] = status()
        return responses.JSONResponse(body, status_code=200 if is_ready else 503)

    return router
