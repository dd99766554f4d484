"""What applying a plan reports: step results, rollbacks, live progress, the journal.

Plain data shared by the applier (:mod:`reconciler.shell.applier`), the deployment watch
(:mod:`reconciler.shell.watch`), rollbacks (:mod:`reconciler.shell.rollback`) and the engine,
which writes results to the record store.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler.core import health, model, releases

log = logging.getLogger(__name__)

JSON = dict[str, Any]

# Fields Marathon adds to an app that it refuses (or ignores) in a PUT of that app.
_READ_ONLY_FIELDS = ("version", "versionInfo", "tasks", "tasksStaged", "tasksRunning",
                     "tasksHealthy", "tasksUnhealthy", "deployments", "lastTaskFailure",
                     "readinessCheckResults", "counts")


class Phase(enum.StrEnum):
    """What the applier is doing for one app, as shown live to the user."""

    WAITING_FOR_DEPENDENCIES = "waiting for dependencies"
    BLOCKED = "blocked by another deployment"
    DEPLOYING = "deploying"
    ROLLING_BACK = "rolling back"
    DONE = "done"


@dataclass(frozen=True)
class Progress:
    app_id: model.AppId
    phase: Phase
    deployment_id: str | None = None
    health: health.AppHealth | None = None
    outcome: model.Outcome | None = None
    message: str | None = None


ProgressCallback = Callable[[Progress], None]


class RollbackMethod(enum.StrEnum):
    CANCEL_DEPLOYMENT = "cancel deployment"
    """``DELETE /v2/deployments/{id}``: Marathon reverts the change itself."""
    REAPPLY_VERSION = "re-apply previous version"
    DELETE_CREATED = "delete created app"


@dataclass(frozen=True)
class RollbackResult:
    method: RollbackMethod
    from_version: str | None
    to_version: str | None
    deployment_id: str | None
    outcome: model.Outcome
    """SUCCEEDED when the rollback deployment finished, else FAILED or TIMED_OUT."""
    reason: str


@dataclass(frozen=True, slots=True)
class StepResult:
    """How one app's change ended; what the engine records."""

    app_id: model.AppId
    action: model.Action
    outcome: model.Outcome
    deployment_id: str | None = None
    version: str | None = None
    """The version the change created in Marathon."""
    previous_version: str | None = None
    reason: str | None = None
    failure: str | None = None
    """Marathon's ``lastTaskFailure`` message of the new version, when there was one."""
    stuck_step: str | None = None
    """The deployment step the change was in when it failed or ran out of time."""
    health: health.AppHealth | None = None
    rollback: RollbackResult | None = None
    notes: tuple[str, ...] = ()
    started_at: float | None = None
    finished_at: float | None = None
    in_doubt: bool = False
    """The write got no clear answer (lost, garbled): it may have reached Marathon. Its
    intent stays open, for the next run to settle from what Marathon shows."""


@dataclass(frozen=True)
class WaveReport:
    """One release wave as the applier goes through it (sent at each state it enters)."""

    name: str
    state: releases.WaveState
    apps: tuple[model.AppId, ...]
    soak: float
    started_at: float | None = None
    finished_at: float | None = None
    reason: str | None = None


WaveCallback = Callable[[WaveReport], None]


class Journal(Protocol):
    """Where the applier reports, as it goes (the engine writes it to the record store)."""

    def intend(
        self, *, app_id: model.AppId, action: model.Action, purpose: model.Purpose,
        definition: Mapping[str, Any] | None, previous_version: str | None, deadline: float,
    ) -> None:
        """Called before each write is sent to Marathon (write-ahead); raises to stop it."""

    def deployment_started(
        self, *, app_id: model.AppId, action: model.Action, deployment_id: str, version: str,
        previous_version: str | None, purpose: model.Purpose, patch: tuple[JSON, ...],
        deadline: float,
    ) -> None:
        """Called before waiting on a deployment (a change's or a rollback's)."""

    def step_finished(self, result: StepResult) -> None:
        """Called once per step, as soon as its outcome is known (rollback included)."""


class NullJournal:
    def intend(self, **_: Any) -> None:
        pass

    def deployment_started(self, **_: Any) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        pass


@dataclass(frozen=True)
class ApplyOptions:
    cancel_blocking: bool = False
    """On 409, cancel the deployments that lock the app instead of waiting for them."""
    use_events: bool = True
    poll_interval: float = 1.0
    """Seconds between ``/v2/deployments`` polls while the event stream is down."""
    poll_interval_with_events: float = 5.0
    """Seconds between safety polls while the event stream is up (events may be missed)."""
    progress_interval: float = 1.0
    """Seconds between refreshes of task counts shown to ``on_progress``."""
    attach_timeout: float = 2.0
    """How long to wait for the event stream before the first change is sent."""


class StepFailed(Exception):
    """The change could not be sent: nothing was deployed, nothing to roll back."""

    def __init__(self, reason: str, notes: Iterable[str] = (), *, in_doubt: bool = False
                 ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.notes: tuple[str, ...] = tuple(notes)
        self.in_doubt = in_doubt


def emit(callback: ProgressCallback | None, progress: Progress) -> None:
    if callback is None:
        return
    try:
        callback(progress)
    except Exception:
        log.exception("progress callback failed")


def strip_read_only(app: Mapping[str, Any]) -> JSON:
    """``app`` without the fields Marathon fills in at runtime, ready for a PUT."""
    return {k: v for k, v in app.items() if k not in _READ_ONLY_FIELDS}


def results_by_app(results: Iterable[StepResult]) -> dict[model.AppId, StepResult]:
    return {r.app_id: r for r in results}
