"""Who writes apps through Marathon's API: a thread following ``api_post_event``.

Each ``api_post_event`` for an app becomes an :class:`Attribution` (client address, URI, time,
the version the write produced) handed to a callback; the drift check matches it to the live
version. The stream reconnects with backoff and never raises out of its thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.core import model
from reconciler.core import normalize as normalizing
from reconciler.shell import marathon, scheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attribution:
    """Who last wrote an app through Marathon's API (from ``api_post_event``)."""

    client_ip: str
    uri: str
    at: str
    version: str | None = None
    """The app version that write produced: the attribution holds for that live version only."""

    def explains(self, live: model.JSON | None) -> bool:
        """True when this write made ``live`` (an app deleted since has no version to match)."""
        if live is None or self.version is None:
            return True
        return live.get("version") in (None, self.version)


OnWrite = Callable[[model.AppId, Attribution], None]


class ApiWrites:
    """Follows Marathon's event stream on a daemon thread until :meth:`stop`."""

    def __init__(self, client: marathon.MarathonClient, *, on_write: OnWrite) -> None:
        self._client = client
        self._on_write = on_write
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._follow, name="marathon-events",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        # A daemon thread: it notices the flag at its next event or idle timeout.
        self._stopping.set()

    def _follow(self) -> None:
        backoff = scheduler.Backoff(base=0.5, cap=30.0)
        while not self._stopping.is_set():
            try:
                for event in self._client.events(event_types=("api_post_event",),
                                                 idle_timeout=30.0):
                    backoff.succeeded()
                    if self._stopping.is_set():
                        break
                    self._on_event(event)
            except marathon.MarathonError as e:
                if self._stopping.is_set():
                    break
                delay = backoff.failed()
                log.debug("event stream ended (%s); reconnecting in %.1fs", e.message, delay)
                self._stopping.wait(delay)
            except Exception:
                if self._stopping.is_set():
                    break
                log.exception("event stream failed unexpectedly")
                self._stopping.wait(backoff.failed())

    def _on_event(self, event: marathon.Event) -> None:
        if event.event_type != "api_post_event":
            return
        definition = event.data.get("appDefinition") or {}
        app_id = normalizing.absolute_id(str(definition.get("id", "")), base="/")
        version = definition.get("version")
        self._on_write(app_id, Attribution(
            client_ip=str(event.data.get("clientIp", "")), uri=str(event.data.get("uri", "")),
            at=str(event.data.get("timestamp", "")), version=str(version) if version else None))
