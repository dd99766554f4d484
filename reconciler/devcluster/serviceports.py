"""Service ports: Marathon's allocator for ports declared 0, and the ports an app holds."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from typing import Any

from reconciler.devcluster import plain

JSON = dict[str, Any]

SERVICE_PORT_MIN = 10000
SERVICE_PORT_MAX = 20000
"""Marathon's ``--local_port_min`` / ``--local_port_max`` defaults."""


ALLOCATED_BY_REQUEST: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "allocated_by_request", default=None)
"""The ports allocated while serving one request (each request runs in its own task), so
that a request that ends refused, or a dry run, can give them back."""


class ServicePortAllocator:
    """Hands out service ports from Marathon's range for ports declared 0.

    Marathon's defaults: ``--local_port_min 10000``, ``--local_port_max 20000``. A port once
    given to an app stays with it across updates that keep the port declared 0. Ports are handed
    out in ascending order from the lowest free one, like the ``10013``/``10015`` of Marathon's
    examples, so that a fresh dev cluster gives the same ports every run.
    """

    def __init__(
        self, *, port_min: int = SERVICE_PORT_MIN, port_max: int = SERVICE_PORT_MAX
    ) -> None:
        if port_min > port_max:
            raise ValueError(f"empty service port range {port_min}..{port_max}")
        self._min = port_min
        self._max = port_max
        self._taken: set[int] = set()
        self._next = port_min

    def reserve(self, ports: Iterable[int]) -> None:
        """Mark ports as taken (used when state is reloaded from disk, and for declared ports)."""
        self._taken.update(p for p in ports if p)

    def release(self, ports: Iterable[int]) -> None:
        """Give ports back (the app was deleted or no longer declares them)."""
        for port in ports:
            self._taken.discard(port)
            if self._min <= port < self._next:
                self._next = port

    def allocate(self) -> int:
        """The lowest free port of the range, now taken."""
        port = self._next
        while port <= self._max and port in self._taken:
            port += 1
        if port > self._max:
            raise RuntimeError(
                f"Marathon's service port range {self._min}..{self._max} is exhausted"
            )
        self._taken.add(port)
        self._next = port + 1
        journal = ALLOCATED_BY_REQUEST.get()
        if journal is not None:
            journal.append(port)
        return port

    def taken(self) -> frozenset[int]:
        return frozenset(self._taken)


def port_items(app: JSON) -> list[JSON]:
    """The app's port mappings when it has any, else its port definitions (``portIndices``)."""
    mappings = plain.as_dict(app.get("container")).get("portMappings")
    if mappings:
        return list(mappings)
    return list(app.get("portDefinitions") or [])


def service_ports(app: JSON | None) -> list[int]:
    """The service ports an app holds, by port index (for releasing them when it is deleted)."""
    if not app:
        return []
    mappings = plain.as_dict(app.get("container")).get("portMappings")
    if mappings:
        return [int(m.get("servicePort") or 0) for m in mappings]
    return [int(d.get("port") or 0) for d in app.get("portDefinitions") or []]


def port_names(app: JSON) -> list[str | None]:
    """Port names by index (``portName`` of readiness checks, ``PORT_<NAME>`` variables)."""
    return [item.get("name") for item in port_items(app)]
