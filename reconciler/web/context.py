"""What the on-call pages and the API need from the controller; the controller builds it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core import model
from reconciler.core import plan as planning
from reconciler.shell import readmodel, statusboard
from reconciler.shell import records as recording
from reconciler.web import auth

LiveApps = Callable[[], Sequence[model.JSON]]
"""Live Marathon apps with ``apps.tasks``, ``apps.deployments`` and ``apps.lastTaskFailure``
(possibly only what statuses read of them: :data:`LiveApp` reads one whole)."""
LiveApp = Callable[[str], model.JSON | None]
"""``app_id -> the whole live app``, None when Marathon has no such app."""
RequestSync = Callable[[str | None, str], str]
"""``(app_id or None for all, who) -> what happens next``; queues a sync, must not block long."""
PreviewSync = Callable[[str], planning.SyncPreview]
"""``app_id -> what syncing it would change, or why not``; asked before a sync is queued."""
ClosedWindow = Callable[[str | None], str | None]
"""``app_id or None -> why a sync window holds it now``, None when the window is open."""
OverrideSync = Callable[[str | None, str, str], str]
"""``(app_id or None, who, why) -> what happens next``: a sync that overrides closed windows."""
Rollback = Callable[[str, str], str]
"""``(app_id, who) -> what happened``; puts the app back to its previous Marathon version."""


@dataclass(frozen=True)
class Promotions:
    """Promotions into this environment (it names ``promote_from``)."""

    source: str
    """The environment promotions come from."""
    assess: Callable[[str], dict[str, Any]]
    """``image -> the gate's verdict as JSON``; writes nothing. Raises PromotionError."""
    promote: Callable[[str, str], tuple[bool, str, dict[str, Any]]]
    """``(image, who) -> (promoted, message, result as JSON)``. Raises PromotionError."""
    images: Callable[[], Sequence[str]]
    """The images the source environment's catalog names (the dashboard's choice)."""


@dataclass(frozen=True)
class Deps:
    """``token`` is the single API token for actions; ``access`` the whole policy (machine
    tokens, sign-on, roles; None: ``token`` alone, as before).
    ``live_apps`` reads Marathon (the controller may hand out its last poll instead of a fresh
    request)."""

    records: recording.RecordStore
    live_apps: LiveApps
    request_sync: RequestSync
    rollback: Rollback
    token: str | None
    clock: Callable[[], float] = time.time
    preview_sync: PreviewSync | None = None
    access: auth.Access | None = None
    closed_window: ClosedWindow | None = None
    override_sync: OverrideSync | None = None
    promotions: Promotions | None = None
    """Set for an environment that takes promotions (``RECONCILER_ENVIRONMENTS``)."""
    environment: str | None = None
    """The environment these pages and routes are of (None: the one environment)."""
    board: statusboard.StatusBoard | None = None
    """The controller's statuses in memory; without one each page computes its own."""
    replica: Callable[[], dict[str, Any]] | None = None
    """The controller's own status (``/api/v1/status``): the page header names this
    replica's role, the leader and the last sync (with ZooKeeper)."""
    live_app: LiveApp | None = None
    """One whole live app (an app's page); None: the snapshot's apps are whole."""

    @property
    def policy(self) -> auth.Access:
        return self.access if self.access is not None else auth.Access(api_token=self.token)

    def status(self) -> readmodel.Snapshot:
        """Every app's status: the board's last snapshot, or one computed now."""
        if self.board is not None:
            return self.board.snapshot()
        try:
            return readmodel.snapshot(self.records, self.live_apps())
        except Exception as e:  # noqa: BLE001 - Marathon down: shown on the page
            return readmodel.snapshot(self.records, None, live_error=str(e) or type(e).__name__)

    def changed(self) -> None:
        """An action changed the records: the board recomputes soon."""
        if self.board is not None:
            self.board.invalidate()
