"""Test-only fault: answer writes late, so a client can be killed while its write is in flight.

``DEVCLUSTER_ANSWER_DELAY_PUT=<seconds>`` (read once, when the server starts) makes every
``PUT /v2/apps/{id}`` take effect at once (the deployment starts, as on a real Marathon whose
answer is lost or slow) and answer only after that many seconds. Unset or 0: no delay. The
reliability tests use it to kill ``reconciler`` between Marathon's change and its answer.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiohttp import web

ENV = "DEVCLUSTER_ANSWER_DELAY_PUT"


def answer_delay() -> float:
    """The delay asked for in the environment, in seconds (0 when unset or not a number)."""
    try:
        return max(0.0, float(os.environ.get(ENV, "0") or 0))
    except ValueError:
        return 0.0


def late_answers(delay: float) -> Any:
    """A middleware that holds the answer of each app PUT for ``delay`` seconds."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if request.method == "PUT" and request.path.startswith("/v2/apps/"):
            await asyncio.sleep(delay)
        return response

    return middleware
