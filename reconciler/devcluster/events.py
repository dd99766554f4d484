"""The event bus behind ``GET /v2/events``: Marathon's events as server-sent-event frames."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

Subscriber = tuple[asyncio.Queue[bytes], frozenset[str]]
"""A stream's queue of frames and the event types it asked for (none: every type)."""


def frame(event_type: str, body: dict[str, Any]) -> bytes:
    """One server-sent event, as Marathon writes it: ``event:`` line, ``data:`` line, blank."""
    return b"event: " + event_type.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


class EventBus:
    """Fans each published event out to the streams that want its type."""

    def __init__(self, *, timestamp: Callable[[], str]) -> None:
        self._timestamp = timestamp
        self._subscribers: list[Subscriber] = []

    def publish(self, event_type: str, **fields: Any) -> None:
        if not any(not types or event_type in types for _, types in self._subscribers):
            return  # nobody listens: 10,000 tasks starting must not serialize 50,000 events
        body = {"eventType": event_type, "timestamp": self._timestamp(), **fields}
        data = frame(event_type, body)
        for queue, types in self._subscribers:
            if not types or event_type in types:
                queue.put_nowait(data)

    def subscribe(self, types: frozenset[str]) -> Subscriber:
        subscriber: Subscriber = (asyncio.Queue(), types)
        self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.remove(subscriber)
