"""Followers refuse actions: only the leading replica changes Marathon (an ASGI middleware).

With ``RECONCILER_ZK_URL`` several replicas serve the dashboard and the read API from the
shared records; an action (any ``POST`` under ``/api/v1/``) reaching a follower is refused
before any work with ``409 Conflict``, naming the leader and its address (also in the
``Location`` header), so that a script can send it there. Webhooks are accepted by every
replica: a follower's is a no-op, the leader polls Git on its own schedule.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from reconciler.shell import leadership
from reconciler.web import limits

ACTIONS_PREFIX = "/api/v1/"


class FollowersRefuseActions:
    def __init__(self, app: limits.ASGIApp, *,
                 view: Callable[[], leadership.View] | None) -> None:
        self._app = app
        self._view = view

    async def __call__(self, scope: limits.Scope, receive: limits.Receive,
                       send: limits.Send) -> None:
        if (self._view is None or scope["type"] != "http" or scope.get("method") != "POST"
                or not str(scope.get("path", "")).startswith(ACTIONS_PREFIX)):
            await self._app(scope, receive, send)
            return
        view = self._view()
        if view.role is leadership.Role.LEADER:
            await self._app(scope, receive, send)
            return
        await _refuse(send, view)


async def _refuse(send: limits.Send, view: leadership.View) -> None:
    if view.leader_url:
        detail = (f"this replica ({view.replica}) does not lead: send the action to the "
                  f"leader {view.leader} at {view.leader_url}")
    else:
        detail = (f"this replica ({view.replica}) does not lead and no leader is known now"
                  + (f" ({view.problem})" if view.problem else "") + ": try again shortly")
    body = json.dumps({"detail": detail, "leader": view.leader,
                       "leaderUrl": view.leader_url}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if view.leader_url:
        headers.append((b"location", view.leader_url.encode()))
    await send({"type": "http.response.start", "status": 409, "headers": headers})
    await send({"type": "http.response.body", "body": body})
