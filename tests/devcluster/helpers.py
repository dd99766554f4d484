"""Small HTTP helpers for talking to a dev cluster subprocess in tests."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

import requests

from tests.support import polling

JSON = dict[str, Any]


def docker_app(app_id: str, *, image: str = "lhcbdirac:v1", instances: int = 1,
               minimum: float = 1.0, maximum: float = 1.0, grace: int = 5) -> JSON:
    """A Docker app run by the shipped stand-in, with a fast HTTP health check."""
    return {
        "id": app_id,
        "instances": instances,
        "cpus": 0.1,
        "mem": 64,
        "networks": [{"mode": "container/bridge"}],
        "container": {"type": "DOCKER", "docker": {"image": image},
                      "portMappings": [{"containerPort": 8080, "name": "http"}]},
        "healthChecks": [{"protocol": "HTTP", "portIndex": 0, "path": "/ping",
                          "intervalSeconds": 1, "timeoutSeconds": 1,
                          "gracePeriodSeconds": grace, "maxConsecutiveFailures": 2}],
        "upgradeStrategy": {"minimumHealthCapacity": minimum, "maximumOverCapacity": maximum},
    }


def wait_until(predicate: Callable[[], Any], *, timeout: float = 30.0, every: float = 0.1) -> Any:
    """:func:`polling.eventually` for the many waits here that do not say what they await."""
    return polling.eventually("the condition", predicate, timeout=timeout, interval=every)


def deployments(url: str) -> list[JSON]:
    result: list[JSON] = requests.get(f"{url}/v2/deployments", timeout=5).json()
    return result


def no_deployments(url: str) -> bool:
    return not deployments(url)


def app(url: str, app_id: str, *embed: str) -> JSON:
    params = [("embed", f"app.{e}") for e in embed]
    result: JSON = requests.get(f"{url}/v2/apps{app_id}", params=params, timeout=5).json()["app"]
    return result


NEVER_HEALTHY_CHECK: JSON = {"protocol": "COMMAND", "command": {"value": "false"},
                             "gracePeriodSeconds": 300, "intervalSeconds": 1}
"""A check that never passes and, inside its long grace period, never kills: a rolling upgrade
to an app carrying it runs until something stops it."""


class EventLog:
    """Follows ``GET /v2/events`` in a thread; ``events`` holds every event seen so far."""

    def __init__(self, url: str) -> None:
        self.events: list[JSON] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._follow, args=(url,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the event stream did not attach")

    def _follow(self, url: str) -> None:
        # The stream ends when the dev cluster stops at the end of the test.
        with contextlib.suppress(requests.RequestException), requests.get(
                f"{url}/v2/events", stream=True, timeout=120) as stream:
            for line in stream.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    self.events.append(json.loads(line[5:]))
                    self._ready.set()

    def of(self, event_type: str, **fields: Any) -> list[JSON]:
        return [e for e in self.events if e["eventType"] == event_type
                and all(e.get(k) == v for k, v in fields.items())]

    def wait_for(self, event_type: str, **fields: Any) -> JSON:
        found: list[JSON] = wait_until(lambda: self.of(event_type, **fields))
        return found[0]
