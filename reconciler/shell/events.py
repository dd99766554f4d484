"""Who writes apps through Marathon's API: each ``api_post_event`` for an app becomes an
:class:`Attribution` (client address, URI, time, the version the write produced), which the
drift check matches to the live version. :mod:`reconciler.shell.livecache` follows the
stream and hands them out; :class:`Attributions` keeps them until they are judged, or until
the controller's own change that made them ended.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reconciler.core import model


@dataclass(frozen=True, slots=True)
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


class Attributions:
    """The last write of each app, kept until the drift check has judged the version it made.

    Every write posts an event, the controller's own included, so a release of every app
    would leave one per app for good. Once live at that version was found equal to its
    baseline the write explains no drift (any later write makes a new version, with its own
    event), and it is forgotten; so is a write the controller's own change made, as that change
    ends (:meth:`forget_own`). Filled by the event stream's thread, read by the drift
    check's.
    """

    def __init__(self) -> None:
        self._by_app: dict[str, Attribution] = {}
        self._lock = threading.Lock()

    def note(self, app_id: str, who: Attribution) -> None:
        with self._lock:
            self._by_app[app_id] = who

    def now(self) -> dict[str, Attribution]:
        """The writes kept, by app (a copy: few, once judged ones are forgotten)."""
        with self._lock:
            return dict(self._by_app)

    def forget_own(self, app_id: str, version: str) -> None:
        """The controller's own write made ``version`` of the app: that write explains no
        drift. Forgotten as each change of a release ends, not after it: the drift check
        waits for the release, and 10,000 writes were kept until then, at its peak."""
        with self._lock:
            who = self._by_app.get(app_id)
            if who is not None and who.version == version:
                del self._by_app[app_id]

    def forget_judged(self, seen: Mapping[str, Attribution],
                      equal_version: Callable[[str], object | None],
                      managed: Callable[[str], bool]) -> None:
        """Forget the writes of ``seen`` (from :meth:`now`) whose version was found equal to
        its baseline, and those of apps no longer managed; a write noted since stays."""
        with self._lock:
            for app_id, who in seen.items():
                if self._by_app.get(app_id) is not who:
                    continue
                if not managed(app_id) or (
                        who.version is not None and equal_version(app_id) == who.version):
                    del self._by_app[app_id]

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_app)
