"""Request bodies bounded before any work: an ASGI middleware in front of every route.

A body whose declared ``Content-Length`` is over the route's limit is refused (413) before the
application sees the request. A streamed (chunked) body is counted as it is received: on a
route with a small limit (every route but the webhooks) it is read, up to the limit, before
the application runs, so that the request is refused before any work; on a route with a large
limit the application streams it and the request is refused as soon as it goes past the limit.
No route ever holds more than its limit in memory, and a refusal closes the connection so
that the rest of the body is not even read. Limits go by path prefix (the longest wins),
:data:`DEFAULT_MAX_BODY` elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 64 * 1024
"""Enough for any action of the API (they take no body) and the dashboard (GET only)."""
WEBHOOK_MAX_BODY = 25 * 1024 * 1024
"""GitHub caps its webhook payloads at 25 MB; the body is hashed as it streams, never held."""


class BodyTooLarge(Exception):
    """The request body went past its route's limit while being received."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


class BodyLimit:
    """Refuse request bodies over a limit by path prefix (413), before the app reads them."""

    def __init__(self, app: ASGIApp, *, default: int = DEFAULT_MAX_BODY,
                 by_prefix: Mapping[str, int] | None = None) -> None:
        self._app = app
        self._default = default
        self._by_prefix = sorted((by_prefix or {}).items(), key=lambda kv: -len(kv[0]))
        self._read_ahead = DEFAULT_MAX_BODY
        """Bodies allowed up to this size are read before the application runs."""

    def limit_for(self, path: str) -> int:
        for prefix, limit in self._by_prefix:
            if path.startswith(prefix):
                return limit
        return self._default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared == -1:
            await _refuse(send, 400, "invalid Content-Length")
            return
        if declared is not None and declared > limit:
            await _refuse(send, 413, f"request body over {limit} bytes (Content-Length "
                                     f"{declared})")
            return
        if limit <= self._read_ahead:
            try:
                body, end = await _read_body(receive, limit)
            except BodyTooLarge as e:
                await _refuse(send, 413, str(e))
                return
            await self._app(scope, _replay(body, end, receive), send)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, limited, tracked)
        except BodyTooLarge as e:
            if started:
                raise
            await _refuse(send, 413, str(e))


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, Message | None]:
    """The whole body (at most ``limit`` bytes), and the disconnect message if one came."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), message
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts), None


def _replay(body: bytes, end: Message | None, receive: Receive) -> Receive:
    """A receive that gives ``body`` in one message, then what the server gives."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    if end is not None:
        pending.append(end)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent, -1 when not a number."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else -1
    return None


async def _refuse(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"detail": reason}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
