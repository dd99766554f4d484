"""Waiting for what another process or thread does: the one polling helper of the suite.

The timeout is a bound, not a timed assertion: it only decides when a test that cannot pass
any more gives up, and the failure says what was awaited.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(what: str, probe: Callable[[], T | None], *, timeout: float = 90.0,
               interval: float = 0.1, explain: Callable[[], str] | None = None) -> T:
    """The first truthy answer of ``probe``, asked every ``interval`` seconds; after
    ``timeout`` seconds an AssertionError ``never: <what>``, followed by what ``explain``
    says then (logs, the state seen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"never: {what}" + (f"\n{explain()}" if explain is not None else ""))
