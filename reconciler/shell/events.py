"""Who writes apps through Marathon's API: each ``api_post_event`` for an app becomes an
:class:`Attribution` (client address, URI, time, the version the write produced), which the
drift check matches to the live version. :mod:`reconciler.shell.livecache` follows the
stream and hands them out.
"""

from __future__ import annotations

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
