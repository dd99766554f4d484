"""The run's journal: what the applier reports, written to the record store as it happens.

Write-ahead: the intent of each Marathon write (app, action, digest of the definition, run)
is recorded before its request leaves; Marathon's answer resolves it with the change record
that carries the deployment id, recorded before the applier waits on it. A successor finds
whatever a crash left between the two (:mod:`reconciler.shell.recovery`). Each step's
outcome (and its rollback) is recorded as soon as it is known.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.core import model
from reconciler.shell import records, steps

log = logging.getLogger(__name__)


class Journal:
    """The applier's journal, written to the record store as things happen."""

    def __init__(self, store: records.RecordStore, *, run_id: int, revision: str) -> None:
        self._store = store
        self._run_id = run_id
        self._revision = revision
        self._changes: dict[tuple[model.AppId, str], int] = {}
        self._intents: dict[tuple[model.AppId, str], int] = {}
        self._finished: dict[model.AppId, int] = {}
        """Changes already finished: a release wave that fails later rolls them back."""
        # The applier reports from its worker threads; one writer at a time keeps SQLite happy.
        self._lock = threading.Lock()

    def adopt(self, app_id: model.AppId, change_id: int) -> None:
        """Finish an existing change record (a predecessor's) instead of creating one."""
        self._changes[(app_id, "change")] = change_id

    def intend(
        self, *, app_id: model.AppId, action: model.Action, purpose: model.Purpose,
        definition: Mapping[str, Any] | None, previous_version: str | None, deadline: float,
    ) -> None:
        """Record a write before it is sent (raises if the records cannot be written)."""
        with self._lock:
            self._intents[(app_id, purpose)] = self._store.record_intent(
                run_id=self._run_id, app_id=app_id, action=str(action), purpose=str(purpose),
                revision=self._revision,
                digest=None if definition is None else records.definition_digest(definition),
                previous_version=previous_version, deadline_seconds=deadline)

    def deployment_started(
        self, *, app_id: model.AppId, action: model.Action, deployment_id: str, version: str,
        previous_version: str | None, purpose: model.Purpose, patch: tuple[dict[str, Any], ...],
        deadline: float,
    ) -> None:
        with self._lock:
            self._deployment_started(app_id=app_id, action=action, deployment_id=deployment_id,
                                     version=version, previous_version=previous_version,
                                     purpose=purpose, patch=patch, deadline=deadline)

    def _deployment_started(
        self, *, app_id: model.AppId, action: model.Action, deployment_id: str, version: str,
        previous_version: str | None, purpose: model.Purpose, patch: tuple[dict[str, Any], ...],
        deadline: float,
    ) -> None:
        change_id = self._store.record_deployment(
            run_id=self._run_id, app_id=app_id, action=str(action), revision=self._revision,
            deployment_id=deployment_id, version=version, previous_version=previous_version,
            purpose=purpose, patch=list(patch), deadline_seconds=deadline)
        self._changes[(app_id, purpose)] = change_id
        intent_id = self._intents.pop((app_id, purpose), None)
        if intent_id is not None:
            self._store.resolve_intent(intent_id, resolution=records.Resolution.SENT,
                                       change_id=change_id)

    def step_finished(self, result: steps.StepResult) -> None:
        with self._lock:
            self._step_finished(result)

    def _step_finished(self, result: steps.StepResult) -> None:
        for purpose in model.Purpose:
            # Marathon answered with an error (or there was nothing to send): no deployment.
            # A write in doubt stays open: the next run's recovery asks Marathon.
            intent_id = self._intents.pop((result.app_id, purpose), None)
            if intent_id is not None and not result.in_doubt:
                self._store.resolve_intent(
                    intent_id, resolution=records.Resolution.NOTHING_DEPLOYED)
        change_id = (self._changes.pop((result.app_id, "change"), None)
                     or self._finished.get(result.app_id))
        if change_id is None:
            change_id = self._store.record_deployment(
                run_id=self._run_id, app_id=result.app_id, action=str(result.action),
                revision=self._revision, deployment_id=None, version=None,
                previous_version=result.previous_version, purpose=model.Purpose.CHANGE, patch=[],
                deadline_seconds=None)
        _finish_change(self._store, change_id, result)
        self._finished[result.app_id] = change_id
        rollback_id = self._changes.pop((result.app_id, model.Purpose.ROLLBACK), None)
        if result.rollback is not None:
            if rollback_id is not None:
                self._store.finish_change(rollback_id, outcome=str(result.rollback.outcome),
                                          reason=result.rollback.reason)
            _record_rollback(self._store, run_id=self._run_id, result=result)


class Proxy:
    """Lets one applier (and its event thread) outlive runs while each run has its journal,
    and tells ``on_step_finished`` (the controller) as each change ends."""

    target: Journal | None = None

    def __init__(self, on_step_finished: Callable[[steps.StepResult], None] | None = None
                 ) -> None:
        self._on_step_finished = on_step_finished

    def intend(self, **kwargs: Any) -> None:
        if self.target is not None:
            self.target.intend(**kwargs)

    def deployment_started(self, **kwargs: Any) -> None:
        if self.target is not None:
            self.target.deployment_started(**kwargs)

    def step_finished(self, result: steps.StepResult) -> None:
        if self.target is not None:
            self.target.step_finished(result)
        if self._on_step_finished is not None:
            try:
                self._on_step_finished(result)
            except Exception:  # the listener's failure must not fail the change
                log.exception("step-finished callback failed")


def _finish_change(store: records.RecordStore, change_id: int,
                   result: steps.StepResult) -> None:
    store.finish_change(change_id, outcome=str(result.outcome), reason=why(result))


def _record_rollback(store: records.RecordStore, *, run_id: int,
                     result: steps.StepResult) -> None:
    rollback = result.rollback
    assert rollback is not None
    store.record_rollback(
        run_id=run_id, app_id=result.app_id, from_version=rollback.from_version,
        to_version=rollback.to_version, reason=rollback.reason, failure=result.failure,
        stuck_step=result.stuck_step, method=str(rollback.method),
        outcome=str(rollback.outcome), requested_by=None)


def why(result: steps.StepResult) -> str | None:
    parts = [p for p in (result.reason,
                         f"stuck in {result.stuck_step}" if result.stuck_step else None,
                         f"last task failure: {result.failure}" if result.failure else None,
                         *result.notes) if p]
    return "; ".join(parts) or None
