"""The engine: one reconcile, start to end, and manual rollbacks. Holds no domain logic.

One :meth:`Engine.reconcile` is a fixed list of small steps; the run record is written
whatever happens (Flux's habit)::

    resume      wait on deployments a crashed predecessor recorded but never saw end
    read live   ONE ``GET /v2/apps?embed=...`` request
    diff        core.diff.diff_apps(desired, live)
    plan        core.plan.make_plan(...)  (quarantined app/revision pairs left out)
    apply       shell.applier.Applier.run(plan)  (deployment ids recorded before waiting)
    quarantine  every rolled-back app for this revision
    assess      ONE more ``GET /v2/apps`` and core.health.assess per desired app
    record      the run's outcome, always

Public API (used by ``reconciler sync``/``rollback`` and by the controller, ``reconciler run``)::

    engine = Engine(client=marathon_client, records=record_store,
                    settings=EngineSettings(parallel=8, timeout=None, cancel_blocking=False),
                    clock=time.monotonic, wall_clock=time.time, sleep=time.sleep)
    report = engine.reconcile(desired, trigger="poll", requested_by=None, dry_run=False,
                              only_apps=None, retry_quarantined=False, on_progress=None)
    report.outcome, report.exit_code, report.results, report.health
    engine.record_failed_load(revision=..., error=..., trigger=...)   # invalid desired state
    engine.rollback_app("/dirac/web", to_revision_state=old_desired, to_version=None,
                        requested_by="alice")                         # or to_version="2026-..."
    engine.close()

Loading and validating the desired state is the caller's step (it knows where the files
come from); when that fails, :meth:`Engine.record_failed_load` writes the run record.

A manual rollback is recorded like any change (trigger ``rollback``) and quarantines the
app's current desired revision, so that the next reconcile does not redeploy what a human
just rolled back (Argo CD's most criticised behaviour); ``reconciler sync
--retry-quarantined`` or a new revision lifts it.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from reconciler.core import diff as diffing
from reconciler.core import health, model
from reconciler.core import plan as planning
from reconciler.shell import applier as applying
from reconciler.shell import marathon, steps

if TYPE_CHECKING:  # the engine needs the store's record types, not the store module
    from reconciler.shell.records import PendingChange

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class RecordStore(Protocol):
    """What the engine needs from :mod:`reconciler.shell.records` (the durable store)."""

    def record_revision(self, *, revision: str, definitions: Mapping[str, Any]) -> None: ...

    def start_run(self, *, revision: str, trigger: str, requested_by: str | None,
                  dry_run: bool) -> int: ...

    def finish_run(self, run_id: int, *, outcome: str, error: str | None,
                   summary: Mapping[str, Any]) -> None: ...

    def record_deployment(self, *, run_id: int, app_id: str, action: str, revision: str,
                          deployment_id: str | None, version: str | None,
                          previous_version: str | None, purpose: str, patch: list[Any],
                          deadline_seconds: float | None) -> int: ...

    def finish_change(self, change_id: int, *, outcome: str, reason: str | None) -> None: ...

    def record_rollback(self, *, run_id: int, app_id: str, from_version: str | None,
                        to_version: str | None, reason: str, failure: str | None,
                        stuck_step: str | None, method: str, outcome: str,
                        requested_by: str | None) -> object: ...

    def quarantine(self, *, app_id: str, revision: str, reason: str | None) -> None: ...

    def is_quarantined(self, *, app_id: str, revision: str) -> bool: ...

    def lift_quarantine(self, *, app_id: str, revision: str, lifted_by: str) -> object: ...

    def pending_changes(self) -> Sequence[PendingChange]: ...

    def latest_revision_for(self, *, app_id: str) -> str | None:
        """The newest revision a sync (not a manual rollback) recorded a change of app for."""
        ...


LIVE_EMBED = ("apps.tasks", "apps.deployments", "apps.lastTaskFailure")


class ExitCode(enum.IntEnum):
    """What ``reconciler sync`` and ``rollback`` return; the worst that happened wins."""

    CONVERGED = 0
    ERROR = 1
    FAILED = 2
    ROLLED_BACK = 3
    QUARANTINED = 4

    @property
    def meaning(self) -> str:
        return _EXIT_MEANINGS[self]


_EXIT_MEANINGS = {
    ExitCode.CONVERGED: "every planned change succeeded (or there was nothing to do)",
    ExitCode.ERROR: "nothing was applied: invalid desired state, Marathon unreachable or "
                    "refusing, bad arguments",
    ExitCode.FAILED: "a change failed and could not be rolled back, or timed out: needs a human",
    ExitCode.ROLLED_BACK: "a change failed and was rolled back; its revision is quarantined "
                          "for that app",
    ExitCode.QUARANTINED: "nothing failed, but apps were left out because their revision is "
                          "quarantined",
}


@dataclass(frozen=True)
class EngineSettings:
    parallel: int = 8
    timeout: float | None = None
    """Deadline in seconds for every deployment, instead of the derived ones."""
    cancel_blocking: bool = False
    apply: steps.ApplyOptions = field(default_factory=steps.ApplyOptions)


@dataclass(frozen=True)
class RunReport:
    run_id: int | None
    revision: str
    trigger: model.Trigger
    dry_run: bool
    plan: planning.Plan | None
    results: tuple[steps.StepResult, ...]
    resumed: tuple[steps.StepResult, ...]
    """Outcomes of deployments started by a crashed predecessor, waited for first."""
    health: Mapping[model.AppId, health.AppHealth]
    error: str | None = None

    @property
    def outcome(self) -> model.Outcome:
        if self.error is not None:
            return model.Outcome.FAILED
        outcomes = {r.outcome for r in (*self.resumed, *self.results)}
        if outcomes & {model.Outcome.FAILED, model.Outcome.TIMED_OUT}:
            return model.Outcome.FAILED
        if model.Outcome.ROLLED_BACK in outcomes:
            return model.Outcome.ROLLED_BACK
        if self.dry_run:
            return model.Outcome.SKIPPED
        return model.Outcome.SUCCEEDED

    @property
    def quarantined(self) -> tuple[model.AppId, ...]:
        """Apps left out because their revision, or a dependency's, is quarantined."""
        if self.plan is None:
            return ()
        held = (planning.SkipReason.QUARANTINED, planning.SkipReason.DEPENDENCY_QUARANTINED)
        return tuple(s.app_id for s in self.plan.skipped if s.reason in held)

    @property
    def exit_code(self) -> ExitCode:
        if self.error is not None:
            return ExitCode.ERROR
        outcome = self.outcome
        if outcome is model.Outcome.FAILED:
            return ExitCode.FAILED
        if outcome is model.Outcome.ROLLED_BACK:
            return ExitCode.ROLLED_BACK
        if self.quarantined:
            return ExitCode.QUARANTINED
        return ExitCode.CONVERGED


class _Journal:
    """The applier's journal, written to the record store as things happen."""

    def __init__(self, store: RecordStore, *, run_id: int, revision: str) -> None:
        self._store = store
        self._run_id = run_id
        self._revision = revision
        self._changes: dict[tuple[model.AppId, str], int] = {}
        # The applier reports from its worker threads; one writer at a time keeps SQLite happy.
        self._lock = threading.Lock()

    def adopt(self, app_id: model.AppId, change_id: int) -> None:
        """Finish an existing change record (a predecessor's) instead of creating one."""
        self._changes[(app_id, "change")] = change_id

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

    def step_finished(self, result: steps.StepResult) -> None:
        with self._lock:
            self._step_finished(result)

    def _step_finished(self, result: steps.StepResult) -> None:
        change_id = self._changes.pop((result.app_id, "change"), None)
        if change_id is None:
            change_id = self._store.record_deployment(
                run_id=self._run_id, app_id=result.app_id, action=str(result.action),
                revision=self._revision, deployment_id=None, version=None,
                previous_version=result.previous_version, purpose=model.Purpose.CHANGE, patch=[],
                deadline_seconds=None)
        _finish_change(self._store, change_id, result)
        rollback_id = self._changes.pop((result.app_id, model.Purpose.ROLLBACK), None)
        if result.rollback is not None:
            if rollback_id is not None:
                self._store.finish_change(rollback_id, outcome=str(result.rollback.outcome),
                                          reason=result.rollback.reason)
            _record_rollback(self._store, run_id=self._run_id, result=result)


class Engine:
    def __init__(
        self,
        *,
        client: marathon.MarathonClient,
        records: RecordStore,
        settings: EngineSettings = EngineSettings(),
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._client = client
        self._records = records
        self._settings = settings
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._journal_proxy = _JournalProxy()
        self._applier = applying.Applier(
            client, journal=self._journal_proxy,
            options=replace(settings.apply, cancel_blocking=settings.cancel_blocking),
            clock=clock, sleep=sleep)

    def close(self) -> None:
        self._applier.close()

    # -- reconcile --------------------------------------------------------------------------

    def reconcile(
        self,
        desired: model.DesiredState,
        *,
        trigger: model.Trigger,
        requested_by: str | None = None,
        dry_run: bool = False,
        only_apps: Collection[model.AppId] | None = None,
        retry_quarantined: bool = False,
        on_progress: steps.ProgressCallback | None = None,
    ) -> RunReport:
        """Make Marathon equal to ``desired``; never raises for Marathon or desired problems."""
        self._records.record_revision(
            revision=desired.revision,
            definitions={a: app.definition for a, app in desired.apps.items()})
        run_id = self._records.start_run(revision=desired.revision, trigger=trigger,
                                         requested_by=requested_by, dry_run=dry_run)
        report = RunReport(run_id=run_id, revision=desired.revision, trigger=trigger,
                           dry_run=dry_run, plan=None, results=(), resumed=(), health={})
        journal = _Journal(self._records, run_id=run_id, revision=desired.revision)
        self._journal_proxy.target = journal
        try:
            resumed = () if dry_run else self._resume(journal, on_progress)
            report = replace(report, resumed=resumed)
            live_apps = self._client.list_apps(embed=LIVE_EMBED)
            diffs = diffing.diff_apps(desired, live_apps)
            changed = [d.app_id for d in diffs if d.action is not model.Action.NOOP]
            if retry_quarantined and not dry_run:
                for app_id in changed:
                    self._records.lift_quarantine(app_id=app_id, revision=desired.revision,
                                                  lifted_by=requested_by or trigger)
            quarantined = {a for a in changed
                           if self._records.is_quarantined(app_id=a, revision=desired.revision)}
            plan = planning.make_plan(
                diffs, revision=desired.revision, settings=desired.settings,
                quarantined=quarantined,
                options=planning.PlanOptions(parallel=self._settings.parallel,
                                             timeout=self._settings.timeout,
                                             only_apps=only_apps,
                                             retry_quarantined=retry_quarantined))
            report = replace(report, plan=plan)
            if dry_run:
                return replace(report, health=_assess_all(desired, live_apps))
            results = self._applier.run(plan, on_progress=on_progress)
            report = replace(report, results=results)
            for result in results:
                if result.outcome in (model.Outcome.ROLLED_BACK, model.Outcome.FAILED) and \
                        result.deployment_id is not None:
                    self._records.quarantine(
                        app_id=result.app_id, revision=desired.revision,
                        reason=_why(result))
            if plan.steps:
                live_apps = self._client.list_apps(embed=LIVE_EMBED)
            return replace(report, health=_assess_all(desired, live_apps))
        except (model.InvalidDesiredState, marathon.MarathonError) as e:
            report = replace(report, error=_describe(e))
            return report
        finally:
            self._journal_proxy.target = None
            self._records.finish_run(run_id, outcome=str(report.outcome), error=report.error,
                                     summary=_summary(report))

    def record_failed_load(
        self, *, revision: str, error: Exception | str, trigger: model.Trigger,
        requested_by: str | None = None,
    ) -> RunReport:
        """Record a run whose desired state could not be loaded or validated."""
        run_id = self._records.start_run(revision=revision, trigger=trigger,
                                         requested_by=requested_by, dry_run=False)
        message = error if isinstance(error, str) else _describe(error)
        report = RunReport(run_id=run_id, revision=revision, trigger=trigger, dry_run=False,
                           plan=None, results=(), resumed=(), health={}, error=message)
        self._records.finish_run(run_id, outcome=str(report.outcome), error=message,
                                 summary=_summary(report))
        return report

    def _resume(
        self, journal: _Journal, on_progress: steps.ProgressCallback | None
    ) -> tuple[steps.StepResult, ...]:
        """Wait on deployments recorded by a predecessor that never saw them end."""
        pending = self._records.pending_changes()
        if not pending:
            return ()
        results = []
        now_wall = self._wall_clock()
        for change in pending:
            started_mono = self._clock() - max(0.0, now_wall - change.started_at)
            deadline = change.deadline_seconds or planning.MARGIN + planning.LAUNCH_ALLOWANCE
            base = steps.StepResult(
                app_id=change.app_id, action=model.Action(change.action),
                outcome=model.Outcome.FAILED, deployment_id=change.deployment_id,
                version=change.version, previous_version=change.previous_version,
                started_at=started_mono, notes=("resumed after an interrupted run",))
            if change.purpose == model.Purpose.ROLLBACK:
                base = replace(base, action=model.Action.UPDATE)
            # The deadline is the predecessor's: a crash must not buy a broken release time.
            journal.adopt(change.app_id, change.change_id)
            result = self._applier.follow(
                base, step=None, deadline_at=max(started_mono + deadline, self._clock()),
                on_progress=on_progress)
            journal.step_finished(result)
            if result.rollback is not None:
                self._records.quarantine(app_id=result.app_id, revision=change.revision,
                                         reason=_why(result))
            results.append(result)
        return tuple(results)

    # -- manual rollback ------------------------------------------------------------------------

    def rollback_app(
        self,
        app_id: model.AppId,
        *,
        to_revision_state: model.DesiredState | None = None,
        to_version: str | None = None,
        requested_by: str | None = None,
        on_progress: steps.ProgressCallback | None = None,
    ) -> RunReport:
        """Put ``app_id`` back to its definition in ``to_revision_state``, or to a Marathon
        version (``to_version``; default: the version before the live one).

        Recorded as a run with trigger ``rollback``; quarantines the app's latest desired
        revision so that the next reconcile leaves the app alone until Git changes.
        """
        if to_revision_state is not None and to_version is not None:
            raise ValueError("give a revision or a Marathon version, not both")
        revision = to_revision_state.revision if to_revision_state is not None else (
            f"marathon:{to_version or 'previous'}")
        run_id = self._records.start_run(revision=revision, trigger=model.Trigger.ROLLBACK,
                                         requested_by=requested_by, dry_run=False)
        report = RunReport(run_id=run_id, revision=revision, trigger=model.Trigger.ROLLBACK,
                           dry_run=False, plan=None, results=(), resumed=(), health={})
        journal = _Journal(self._records, run_id=run_id, revision=revision)
        self._journal_proxy.target = journal
        try:
            live = self._client.get_app(app_id, embed=("app.tasks", "app.lastTaskFailure"))
            if to_revision_state is not None:
                if app_id not in to_revision_state.apps:
                    raise ValueError(f"{app_id} is not in revision {revision}")
                definition = to_revision_state.apps[app_id].definition
            else:
                version = to_version or _previous_version(self._client, app_id, live)
                definition = steps.strip_read_only(
                    self._client.get_app_version(app_id, version))
            single = model.DesiredState(
                revision=revision,
                apps={app_id: model.DesiredApp(app_id=app_id, definition=definition,
                                               source_path=f"rollback:{revision}")},
                images={}, settings=model.RepoSettings(managed_prefixes=(app_id,)))
            diffs = [d for d in diffing.diff_apps(single, [live]) if d.app_id == app_id]
            plan = planning.make_plan(
                diffs, revision=revision, settings=single.settings,
                options=planning.PlanOptions(parallel=1, timeout=self._settings.timeout))
            current = self._records.latest_revision_for(app_id=app_id)
            results = self._applier.run(plan, on_progress=on_progress)
            if current is not None and current != revision:
                self._records.quarantine(app_id=app_id, revision=current,
                                         reason=f"manual rollback to {revision}"
                                         + (f" by {requested_by}" if requested_by else ""))
            for result in results:
                if result.outcome is model.Outcome.SUCCEEDED:
                    self._records.record_rollback(
                        run_id=run_id, app_id=app_id, from_version=live.get("version"),
                        to_version=result.version, reason="manual rollback", failure=None,
                        stuck_step=None, method="manual", outcome=str(result.outcome),
                        requested_by=requested_by)
            refreshed = self._client.get_app(app_id, embed=("app.tasks", "app.lastTaskFailure"))
            return replace(report, plan=plan, results=results,
                           health={app_id: health.assess(app_id, refreshed)})
        except (marathon.MarathonError, ValueError) as e:
            report = replace(report, error=_describe(e))
            return report
        finally:
            self._journal_proxy.target = None
            self._records.finish_run(run_id, outcome=str(report.outcome), error=report.error,
                                     summary=_summary(report))


class _JournalProxy:
    """Lets one applier (and its event thread) outlive runs while each run has its journal."""

    target: _Journal | None = None

    def deployment_started(self, **kwargs: Any) -> None:
        if self.target is not None:
            self.target.deployment_started(**kwargs)

    def step_finished(self, result: steps.StepResult) -> None:
        if self.target is not None:
            self.target.step_finished(result)


def _previous_version(client: marathon.MarathonClient, app_id: model.AppId,
                      live: Mapping[str, Any]) -> str:
    """The newest config version older than the live config (scale-only versions skipped)."""
    current = (live.get("versionInfo") or {}).get("lastConfigChangeAt") or live.get("version")
    older = sorted((v for v in client.list_versions(app_id) if v < str(current)), reverse=True)
    if not older:
        raise ValueError(f"{app_id} has no version before {current} to roll back to")
    return older[0]


def _assess_all(
    desired: model.DesiredState, live_apps: list[dict[str, Any]]
) -> dict[model.AppId, health.AppHealth]:
    by_id = {str(a.get("id")): a for a in live_apps}
    return {app_id: health.assess(app_id, by_id.get(app_id)) for app_id in sorted(desired.apps)}


def _finish_change(store: RecordStore, change_id: int,
                   result: steps.StepResult) -> None:
    store.finish_change(change_id, outcome=str(result.outcome), reason=_why(result))


def _record_rollback(store: RecordStore, *, run_id: int,
                     result: steps.StepResult) -> None:
    rollback = result.rollback
    assert rollback is not None
    store.record_rollback(
        run_id=run_id, app_id=result.app_id, from_version=rollback.from_version,
        to_version=rollback.to_version, reason=rollback.reason, failure=result.failure,
        stuck_step=result.stuck_step, method=str(rollback.method),
        outcome=str(rollback.outcome), requested_by=None)


def _why(result: steps.StepResult) -> str | None:
    parts = [p for p in (result.reason,
                         f"stuck in {result.stuck_step}" if result.stuck_step else None,
                         f"last task failure: {result.failure}" if result.failure else None,
                         *result.notes) if p]
    return "; ".join(parts) or None


def _describe(error: Exception) -> str:
    if isinstance(error, marathon.MarathonError):
        return f"Marathon: {error.message}"
    return str(error)


def _summary(report: RunReport) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for result in (*report.resumed, *report.results):
        counts[str(result.outcome)] = counts.get(str(result.outcome), 0) + 1
    plan = report.plan
    return {
        "outcomes": counts,
        "planned": [{"app": s.app_id, "action": str(s.action),
                     "deadline": s.deadline.seconds} for s in plan.steps] if plan else [],
        "skipped": [{"app": s.app_id, "action": str(s.action), "reason": str(s.reason)}
                    for s in plan.skipped] if plan else [],
        "in_sync": list(plan.in_sync) if plan else [],
    }
