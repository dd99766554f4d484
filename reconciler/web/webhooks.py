"""Git hosting webhooks: a push or merge makes the controller poll Git now.

``POST /webhooks/gitlab`` checks ``X-Gitlab-Token`` and ``POST /webhooks/github`` checks
``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body), both in constant time. A bad or
missing secret is a 401; without a configured secret every webhook is refused. The body is
never trusted for *what* to apply: the poll reads the repo itself.

Before any work: a GitLab request is judged on its header alone (its body is only read, and
dropped, once the token is right); a
GitHub request without a well-formed signature header is refused before its body is read, and
a signed one is hashed chunk by chunk as it streams in, never held (its size is bounded by
:mod:`reconciler.web.limits`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Annotated, Any

import fastapi

from reconciler.core import model

TriggerPoll = Callable[[model.Trigger], None]
_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")


def webhook_router(*, secret: str | None, trigger_poll: TriggerPoll) -> fastapi.APIRouter:
    router = fastapi.APIRouter(prefix="/webhooks", tags=["webhooks"])

    def refuse(reason: str) -> fastapi.HTTPException:
        # Closing the connection: the server does not read (and drop) the rest of the body.
        return fastapi.HTTPException(status_code=401, detail=reason,
                                     headers={"Connection": "close"})

    @router.post("/gitlab", status_code=202)
    async def gitlab(
        request: fastapi.Request,
        x_gitlab_token: Annotated[str | None, fastapi.Header()] = None,
        x_gitlab_event: Annotated[str | None, fastapi.Header()] = None,
    ) -> dict[str, Any]:
        if secret is None:
            raise refuse("webhooks are disabled: no RECONCILER_WEBHOOK_SECRET configured")
        if not x_gitlab_token or not hmac.compare_digest(x_gitlab_token.encode(),
                                                         secret.encode()):
            raise refuse("missing or invalid X-Gitlab-Token")
        # Not needed, but read here, where its size is bounded, rather than drained unbounded
        # by the server after the answer.
        async for _ in request.stream():
            pass
        trigger_poll(model.Trigger.WEBHOOK)
        return {"accepted": True, "event": x_gitlab_event}

    @router.post("/github", status_code=202)
    async def github(
        request: fastapi.Request,
        x_hub_signature_256: Annotated[str | None, fastapi.Header()] = None,
        x_github_event: Annotated[str | None, fastapi.Header()] = None,
    ) -> dict[str, Any]:
        if secret is None:
            raise refuse("webhooks are disabled: no RECONCILER_WEBHOOK_SECRET configured")
        if not x_hub_signature_256 or not _SIGNATURE.fullmatch(x_hub_signature_256):
            raise refuse("missing or invalid X-Hub-Signature-256")
        digest = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        async for chunk in request.stream():
            digest.update(chunk)
        expected = "sha256=" + digest.hexdigest()
        if not hmac.compare_digest(x_hub_signature_256.encode(), expected.encode()):
            raise refuse("missing or invalid X-Hub-Signature-256")
        if x_github_event == "ping":
            return {"accepted": True, "event": "ping"}
        trigger_poll(model.Trigger.WEBHOOK)
        return {"accepted": True, "event": x_github_event}

    return router
