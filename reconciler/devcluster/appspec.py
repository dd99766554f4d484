"""Marathon's app rules for the dev cluster: defaults, validation, service ports, change kinds.

CONTRACT STUB: the signatures below are the agreed interface between the dev cluster's
server/runtime and this module; the bodies are being implemented. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


class ServicePortAllocator:
    """Hands out service ports from Marathon's range for ports declared 0.

    Marathon's defaults: ``--local_port_min 10000``, ``--local_port_max 20000``. A port once
    given to an app stays with it across updates that keep the port declared 0.
    """

    def __init__(self, *, port_min: int = 10000, port_max: int = 20000) -> None:
        raise NotImplementedError

    def reserve(self, ports: list[int]) -> None:
        """Mark ports as taken (used when state is reloaded from disk)."""
        raise NotImplementedError

    def release(self, ports: list[int]) -> None:
        raise NotImplementedError


def validate_app(definition: JSON) -> list[JSON]:
    """Marathon's validation of an app definition as submitted.

    Returns Marathon's 422 ``details``: ``[{"path": "/cpus", "errors": ["..."]}]``; empty when valid.
    """
    raise NotImplementedError


def fill_defaults(
    definition: JSON, *, allocator: ServicePortAllocator, previous: JSON | None = None
) -> JSON:
    """The app as Marathon stores and returns it: every default filled in, service ports assigned.

    ``previous`` is the currently stored app (for keeping already assigned service ports).
    Does not set runtime fields (``version``, ``versionInfo``, task counts, ``deployments``).
    Never mutates its arguments.
    """
    raise NotImplementedError


def apply_partial_update(stored: JSON, update: JSON) -> JSON:
    """Marathon's PATCH / ``partialUpdate=true`` merge of ``update`` into ``stored``."""
    raise NotImplementedError


def change_kind(old: JSON, new: JSON) -> str:
    """``"none"``, ``"scale"`` (only ``instances`` differs) or ``"config"``.

    Both arguments are full apps as returned by :func:`fill_defaults`.
    """
    raise NotImplementedError
