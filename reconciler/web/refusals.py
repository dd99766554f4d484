"""How many refused requests reach the audit log: a bounded number per client and minute.

Every refused action is audited, but a client that keeps knocking (a script with a wrong
token, a scanner) must not grow the log without bound. Per client address, per minute: the
first :data:`PER_MINUTE` refusals are written as they come, the next one writes a single
summary saying that the rest of the minute is not audited, and the first refusal of a later
minute writes how many were left out. At most ``PER_MINUTE + 2`` entries per client and minute;
beyond :data:`MAX_CLIENTS` tracked addresses the others share one allowance.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

PER_MINUTE = 20
MAX_CLIENTS = 1024
WINDOW = 60.0
OTHERS = "other clients"


@dataclass
class _Window:
    started: float
    count: int = 0
    left_out: int = 0


class RefusalAudit:
    """Audit refused requests through ``audit``, at most so many per client and minute."""

    def __init__(self, audit: Callable[..., None], *, clock: Callable[[], float],
                 per_minute: int = PER_MINUTE, max_clients: int = MAX_CLIENTS) -> None:
        self._audit = audit
        self._clock = clock
        self._per_minute = per_minute
        self._max_clients = max_clients
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def refused(self, *, client: str, who: str, action: str, reason: str) -> None:
        """Audit one refusal of ``client``'s request (``who``: as the audit names people)."""
        now = self._clock()
        with self._lock:
            key = self._key(client, now)
            window = self._windows.get(key)
            left_out = 0
            if window is None or now - window.started >= WINDOW:
                left_out = window.left_out if window is not None else 0
                window = self._windows[key] = _Window(started=now)
            window.count += 1
            if window.count > self._per_minute + 1:
                window.left_out += 1
                return
        if left_out:
            self._audit(who=key, action="refused requests", target=None,
                        result=f"{left_out} more refused requests in the minute before were "
                               "not audited")
        if window.count == self._per_minute + 1:
            self._audit(who=key, action="refused requests", target=None,
                        result=f"over {self._per_minute} refused requests in a minute: the "
                               "rest of this minute is not audited")
            return
        self._audit(who=who, action=action, target=None, result=reason)

    def _key(self, client: str, now: float) -> str:
        if client in self._windows or len(self._windows) < self._max_clients:
            return client
        for stale in [k for k, w in self._windows.items() if now - w.started >= WINDOW
                      and not w.left_out]:
            del self._windows[stale]
        return client if len(self._windows) < self._max_clients else OTHERS
