"""Rolling a change back: cancel its deployment, else re-apply the previous version.

When a deployment fails or misses its deadline: ``DELETE /v2/deployments/{id}`` (Marathon
starts a revert deployment), or, where that no longer works (the deployment is gone), the
previous version is fetched (``GET /v2/apps/{id}/versions/{v}``) and put back; a failed create
is deleted. The rollback is waited for too. The result carries why, Marathon's
``lastTaskFailure`` message and the deployment step it was stuck in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace

from reconciler.core import health, model
from reconciler.core import plan as planning
from reconciler.shell import marathon, steps
from reconciler.shell import watch as watching

Ending = watching.Ending


class Rollbacks:
    """Undoes changes on one Marathon, reporting each rollback deployment to the journal."""

    def __init__(self, client: marathon.MarathonClient, *, journal: steps.Journal,
                 watch: watching.Watch, clock: Callable[[], float]) -> None:
        self._client = client
        self._journal = journal
        self._watch = watch
        self._clock = clock

    def _assess(self, app_id: model.AppId) -> health.AppHealth | None:
        try:
            live = self._client.get_app(app_id, embed=("app.tasks", "app.lastTaskFailure"))
        except marathon.NotFound:
            return health.assess(app_id, None)
        except marathon.MarathonError:
            return None
        return health.assess(app_id, live)

    def roll_back(
        self, base: steps.StepResult, *, ending: Ending, step: planning.Step | None,
        on_progress: steps.ProgressCallback | None,
    ) -> steps.StepResult:
        """A failed or late change, rolled back: why, where it was stuck, how it ended."""
        assert base.deployment_id is not None
        try:
            stuck = self._watch.refresh().get(base.deployment_id)
        except marathon.MarathonError:
            stuck = self._watch.deployment(base.deployment_id)
        stuck_step = (str(health.assess(base.app_id, {"id": base.app_id},
                                        deployments=[stuck]).step) if stuck else None)
        assessed = self._assess(base.app_id)
        failure = assessed.failure if assessed is not None else None
        reason = ("deadline missed" if ending is Ending.TIMED_OUT
                  else "deployment failed in Marathon")
        if assessed is not None:
            reason += f" ({assessed.healthy}/{assessed.target} healthy)"
        failed = replace(base, reason=reason, failure=failure, stuck_step=stuck_step,
                         health=assessed)
        steps.emit(on_progress, steps.Progress(base.app_id, steps.Phase.ROLLING_BACK,
                                    deployment_id=base.deployment_id, message=reason))
        rollback = self.roll_back_deployment(
            app_id=base.app_id, action=base.action, deployment_id=base.deployment_id,
            from_version=base.version, to_version=base.previous_version,
            deadline=self.deadline_for(step), reason=reason)
        outcome = (model.Outcome.ROLLED_BACK if rollback.outcome is model.Outcome.SUCCEEDED
                   else model.Outcome.FAILED)
        return replace(failed, outcome=outcome, rollback=rollback, finished_at=self._clock())

    def deadline_for(self, step: planning.Step | None) -> float:
        """How long undoing ``step`` may take: its own deadline, or the previous version's."""
        if step is None or step.diff.live is None:
            return planning.MARGIN + planning.LAUNCH_ALLOWANCE
        previous = model.AppDiff(app_id=step.app_id, action=model.Action.UPDATE, patch=(),
                                 changes=(), desired=step.diff.live, live=step.diff.live)
        return max(step.deadline.seconds, planning.derive_deadline(previous).seconds)

    def roll_back_deployment(
        self, *, app_id: model.AppId, action: model.Action, deployment_id: str | None,
        from_version: str | None, to_version: str | None, deadline: float, reason: str,
    ) -> steps.RollbackResult:
        """Undo one change: cancel its deployment, else re-apply ``to_version`` (or delete)."""
        started = self._clock()
        method = steps.RollbackMethod.CANCEL_DEPLOYMENT
        ref: marathon.DeploymentRef | None = None
        self._journal.intend(app_id=app_id, action=action, purpose=model.Purpose.ROLLBACK,
                             definition=None, previous_version=from_version, deadline=deadline)
        try:
            if deployment_id is not None:
                with contextlib.suppress(marathon.NotFound):
                    ref = self._client.cancel_deployment(deployment_id)
            if ref is None:
                ref, method = self._reapply(app_id, action=action, to_version=to_version)
        except (marathon.MarathonError, steps.StepFailed) as e:
            message = e.message if isinstance(e, marathon.MarathonError) else e.reason
            return steps.RollbackResult(method=method, from_version=from_version,
                                  to_version=to_version, deployment_id=None,
                                  outcome=model.Outcome.FAILED,
                                  reason=f"{reason}; rollback impossible: {message}")
        if ref is None:
            return steps.RollbackResult(method=method, from_version=from_version,
                                        to_version=to_version, deployment_id=None,
                                        outcome=model.Outcome.SUCCEEDED, reason=reason)
        self._journal.deployment_started(
            app_id=app_id, action=action, deployment_id=ref.deployment_id, version=ref.version,
            previous_version=from_version, purpose=model.Purpose.ROLLBACK, patch=(),
            deadline=deadline)
        ending = self._watch.wait(app_id, ref.deployment_id, started=self._clock(),
                                  deadline_at=started + deadline, on_progress=None)
        if ending is Ending.GONE:
            ending = Ending.SUCCEEDED  # a revert has nothing to judge it by but its end
        outcome = {Ending.SUCCEEDED: model.Outcome.SUCCEEDED,
                   Ending.TIMED_OUT: model.Outcome.TIMED_OUT}.get(ending, model.Outcome.FAILED)
        return steps.RollbackResult(method=method, from_version=from_version,
                                    to_version=to_version, deployment_id=ref.deployment_id,
                                    outcome=outcome, reason=reason)

    def _reapply(
        self, app_id: model.AppId, *, action: model.Action, to_version: str | None
    ) -> tuple[marathon.DeploymentRef | None, steps.RollbackMethod]:
        if action is model.Action.CREATE or to_version is None:
            try:
                return self._client.delete_app(app_id), steps.RollbackMethod.DELETE_CREATED
            except marathon.NotFound:
                return None, steps.RollbackMethod.DELETE_CREATED
        definition = steps.strip_read_only(self._client.get_app_version(app_id, to_version))
        try:
            return self._client.update_app(app_id, definition), steps.RollbackMethod.REAPPLY_VERSION
        except marathon.Conflict as e:
            # Only our own failed deployment can still hold the lock here: stop it, then retry.
            for blocking in e.deployment_ids:
                with contextlib.suppress(marathon.NotFound):
                    self._client.cancel_deployment(blocking, force=True)
            return self._client.update_app(app_id, definition), steps.RollbackMethod.REAPPLY_VERSION
