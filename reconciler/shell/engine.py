"""The engine: one reconcile, start to end, and manual rollbacks. Holds no domain logic.

One :meth:`Engine.reconcile` is a fixed list of small steps; the run record is written
whatever happens (Flux's habit)::

    identify    the records belong to this Marathon (its frameworkId, stored at first
                contact), else records.ForeignMarathon is raised and nothing is done
    resume      settle a crashed predecessor's writes (intents adopted, applied or never
                sent; its run interrupted), wait on the deployments it never saw end
    read live   ONE ``GET /v2/apps?embed=...`` request, streamed: each app is diffed (and
                its health assessed, for a report with health) as it is read, and only
                core.plan.live_view kept
    diff        core.diff.diff_apps(desired, live, keep_live=...)
    plan        core.plan.make_plan(...)  (quarantined app/revision pairs left out)
    apply       shell.applier.Applier.run(plan)  (intent recorded before each write,
                deployment ids before waiting)
    quarantine  every rolled-back app for this revision
    assess      core.health.assess per desired app: from ONE more ``GET /v2/apps`` when
                something was applied, else from the read above (unless the settings
                say the report needs no health: the controller's)
    release     open the revision's release, and record each app's outcome in it
    record      the run's outcome, always; a run that changed nothing is discarded (a check)

Public API (used by ``reconciler sync``/``rollback`` and by the controller, ``reconciler run``)::

    engine = Engine(client=marathon_client, records=record_store,
                    settings=EngineSettings(parallel=8, timeout=None, cancel_blocking=False,
                                            report_health=True),
                    on_step_finished=None,   # told each change's result as it ends
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

import contextlib
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.core import diff as diffing
from reconciler.core import health, model, releases, sharing
from reconciler.core import plan as planning
from reconciler.shell import applier as applying
from reconciler.shell import journal as journaling
from reconciler.shell import marathon, memory, recovery, runreport, steps, windowgate
from reconciler.shell import records as recording

Clock = Callable[[], float]
Sleep = Callable[[float], None]

RELEASE_TRIGGERS = frozenset({model.Trigger.POLL, model.Trigger.WEBHOOK, model.Trigger.MANUAL,
                              model.Trigger.CLI})
"""Runs that apply a revision, and so open or continue its release (a drift correction
re-applies what a release already applied; a manual rollback undoes one)."""


@dataclass(frozen=True)
class EngineSettings:
    parallel: int = 8
    timeout: float | None = None
    """Deadline in seconds for every deployment, instead of the derived ones."""
    cancel_blocking: bool = False
    apply: steps.ApplyOptions = field(default_factory=steps.ApplyOptions)
    report_health: bool = True
    """Assess every desired app's health into the report (what ``reconciler sync`` prints),
    with one more full read of Marathon after applying. The controller reads health from
    its live cache instead: at 10,000 apps that read is seconds of work and megabytes at the
    very end of a release, for a report nothing else reads."""


class Engine:
    def __init__(
        self,
        *,
        client: marathon.MarathonClient,
        records: recording.RecordStore,
        settings: EngineSettings = EngineSettings(),
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = time.sleep,
        on_step_finished: Callable[[steps.StepResult], None] | None = None,
    ) -> None:
        """``on_step_finished``: told each change's result as it ends, once recorded (not
        a change resumed from a predecessor)."""
        self._client = client
        self._records = records
        self._settings = settings
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._claimed = False
        self._journal_proxy = journaling.Proxy(on_step_finished)
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
        on_plan: Callable[[planning.Plan], None] | None = None,
        window_override: str | None = None,
    ) -> runreport.RunReport:
        """Make Marathon equal to ``desired``; never raises for Marathon or desired problems.

        ``on_plan`` is called with the plan before anything is applied (``sync`` prints it).
        Apps whose sync window is closed at ``wall_clock()`` are planned, not applied
        (:mod:`windowgate`), unless ``window_override`` says why they must go now (audited).
        Raises :class:`records.ForeignMarathon` when the records belong to another Marathon.
        """
        self.claim_marathon()
        self._records.record_revision(
            revision=desired.revision,
            definitions={a: app.definition for a, app in desired.apps.items()})
        with self._recorded_run(revision=desired.revision, trigger=trigger,
                                requested_by=requested_by, dry_run=dry_run,
                                errors=(model.InvalidDesiredState, marathon.MarathonError,
                                        marathon.Fenced)) as run:
            resumed = () if dry_run else self._resume(run, on_progress)
            run.report = replace(run.report, resumed=resumed)
            # Streamed: each live app is diffed (and assessed) as it is read, and only the
            # plan's view of it is kept, equal parts once (10,000 apps with their tasks are
            # 100 MB parsed; their views 16 MB, 5 MB shared).
            health_now: dict[model.AppId, health.AppHealth] = {}
            assessed = self._settings.report_health
            shared = sharing.Shared()
            live = self._client.iter_apps(embed=marathon.LIVE_EMBED)
            diffs = diffing.diff_apps(
                desired, _assessing(live, desired, into=health_now) if assessed else live,
                keep_live=lambda live: shared.top_level(planning.live_view(live)))
            changed = [d.app_id for d in diffs if d.action is not model.Action.NOOP]
            if retry_quarantined and not dry_run:
                for app_id in changed:
                    self._records.lift_quarantine(app_id=app_id, revision=desired.revision,
                                                  lifted_by=requested_by or trigger)
            quarantined = set(changed) & self._records.quarantined_apps(
                revision=desired.revision)
            closed = windowgate.closed_for(
                desired, changed, trigger=trigger, at=self._wall_clock(),
                applied={a: x.definition for a, x in self._records.last_applied().items()}
                if desired.settings.windows else None)
            plan = planning.make_plan(
                diffs, revision=desired.revision, settings=desired.settings,
                quarantined=quarantined,
                options=planning.PlanOptions(parallel=self._settings.parallel,
                                             timeout=self._settings.timeout,
                                             only_apps=only_apps,
                                             retry_quarantined=retry_quarantined),
                outside_window={} if window_override is not None
                else {a: v.message for a, v in closed.items()})
            run.report = replace(run.report, plan=plan)
            if plan.steps:
                # The plan and its diffs live as long as the run (minutes at 10,000 apps):
                # frozen now, the collector's full passes while applying skip them, and no
                # page waits the 100 ms and more each pass over them took.
                memory.settle()
            if not dry_run:
                windowgate.settle(self._records, desired=desired, trigger=trigger, plan=plan,
                                  closed=closed, override=window_override,
                                  requested_by=requested_by)
            if on_plan is not None:
                on_plan(plan)
            releasing = not dry_run and trigger in RELEASE_TRIGGERS
            waiting = [s for s in plan.skipped
                       if s.reason is planning.SkipReason.OUTSIDE_WINDOW]
            if releasing and (plan.steps or waiting):
                self._records.open_release(
                    revision=desired.revision, trigger=str(trigger), requested_by=requested_by,
                    run_id=run.run_id, images=releases.image_references(desired.images),
                    apps=[(s.app_id, str(s.action)) for s in plan.steps])
                self._records.wait_release_apps(
                    revision=desired.revision, run_id=run.run_id,
                    apps=[(s.app_id, str(s.action), s.text) for s in waiting])
            if not dry_run:
                if plan.steps:
                    # Assessed again from one more read once applied (below): the health of
                    # 10,000 apps before the run need not live through the whole release.
                    health_now = {}
                held: list[steps.WaveReport] = []

                def on_wave(wave: steps.WaveReport) -> None:
                    if wave.state is releases.WaveState.NOT_STARTED:
                        held.append(wave)
                    if releasing:
                        self._records.record_release_wave(
                            revision=desired.revision, name=wave.name,
                            position=_position(plan, wave.name), state=str(wave.state),
                            apps=wave.apps, soak=wave.soak, started_at=self._wall(wave.started_at),
                            finished_at=self._wall(wave.finished_at), reason=wave.reason)

                results = self._applier.run(plan, on_progress=on_progress, on_wave=on_wave)
                run.report = replace(run.report, results=results)
                for wave in held:  # the release is quarantined for the waves it never reached
                    for app_id in wave.apps:
                        self._records.quarantine(app_id=app_id, revision=desired.revision,
                                                 reason=wave.reason or "an earlier wave failed")
                for result in results if releasing else ():
                    self._records.finish_release_app(
                        revision=desired.revision, app_id=result.app_id,
                        action=str(result.action), outcome=str(result.outcome),
                        reason=result.reason, run_id=run.run_id,
                        started_at=self._wall(result.started_at),
                        finished_at=self._wall(result.finished_at))
                for result in results:
                    if result.outcome in (model.Outcome.ROLLED_BACK, model.Outcome.FAILED) \
                            and result.deployment_id is not None:
                        self._records.quarantine(
                            app_id=result.app_id, revision=desired.revision,
                            reason=journaling.why(result))
                if plan.steps and assessed:
                    for _ in _assessing(self._client.iter_apps(embed=marathon.LIVE_EMBED),
                                        desired, into=health_now):
                        pass
            if assessed:
                run.report = replace(run.report, health={
                    app_id: health_now[app_id] if app_id in health_now
                    else health.assess(app_id, None)
                    for app_id in sorted(desired.apps)})
        return run.report

    def _wall(self, at: float | None) -> float | None:
        """A time of the applier's clock as wall time (for the records)."""
        return None if at is None else self._wall_clock() - (self._clock() - at)

    def claim_marathon(self) -> None:
        """Tie the records to this Marathon at first contact, or refuse another one
        (:class:`records.ForeignMarathon`): they name its deployments and versions.

        Marathon unreachable: nothing to check yet; the run records Marathon's error.
        """
        if self._claimed:
            return
        try:
            identity = self._client.identity()
        except marathon.MarathonError:
            return
        self._records.claim_marathon(identity)
        self._claimed = True

    def record_failed_load(
        self, *, revision: str, error: Exception | str, trigger: model.Trigger,
        requested_by: str | None = None,
    ) -> runreport.RunReport:
        """Record a run whose desired state could not be loaded or validated."""
        run_id = self._records.start_run(revision=revision, trigger=trigger,
                                         requested_by=requested_by, dry_run=False)
        message = error if isinstance(error, str) else _describe(error)
        report = runreport.RunReport(run_id=run_id, revision=revision, trigger=trigger,
                                     dry_run=False, plan=None, results=(), resumed=(), health={},
                                     error=message)
        self._records.finish_run(run_id, outcome=str(report.outcome), error=message,
                                 summary=runreport.summary(report))
        return report

    def _resume(
        self, run: _Run, on_progress: steps.ProgressCallback | None
    ) -> tuple[steps.StepResult, ...]:
        """Wait on deployments a predecessor started but never saw end.

        First what its crash left in flight (:func:`recovery.recover`: intents adopted,
        found applied or never sent; its run ``interrupted``), then every recorded
        deployment without an outcome.
        """
        journal = run.journal
        # A replica that does not lead leaves a predecessor's writes to the leader.
        self._client.ensure_may_write()
        recovery.recover(self._client, self._records, run_id=run.run_id)
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
                                         reason=journaling.why(result))
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
    ) -> runreport.RunReport:
        """Put ``app_id`` back to its definition in ``to_revision_state``, or to a Marathon
        version (``to_version``; default: the version before the live one).

        Recorded as a run with trigger ``rollback``; quarantines the app's latest desired
        revision so that the next reconcile leaves the app alone until Git changes.
        """
        if to_revision_state is not None and to_version is not None:
            raise ValueError("give a revision or a Marathon version, not both")
        self.claim_marathon()
        revision = to_revision_state.revision if to_revision_state is not None else (
            f"marathon:{to_version or 'previous'}")
        with self._recorded_run(revision=revision, trigger=model.Trigger.ROLLBACK,
                                requested_by=requested_by, dry_run=False,
                                errors=(marathon.MarathonError, marathon.Fenced,
                                        ValueError)) as run:
            live = self._client.get_app(app_id, embed=("app.tasks", "app.lastTaskFailure"))
            definition = self.rollback_target(
                app_id, to_revision_state=to_revision_state, to_version=to_version,
                live=live).definition
            single = model.DesiredState(
                revision=revision,
                apps={app_id: model.DesiredApp(app_id=app_id, definition=definition,
                                               source_path=f"rollback:{revision}")},
                images={}, settings=model.RepoSettings(managed_prefixes=(app_id,)))
            diffs = [d for d in diffing.diff_apps(single, [live]) if d.app_id == app_id]
            plan = planning.make_plan(
                diffs, revision=revision, settings=single.settings,
                options=planning.PlanOptions(parallel=1, timeout=self._settings.timeout))
            run.report = replace(run.report, plan=plan)
            current = self._records.latest_revision_for(app_id=app_id)
            results = self._applier.run(plan, on_progress=on_progress)
            run.report = replace(run.report, results=results)
            if current is not None and current != revision:
                why = f"manual rollback to {revision}" + (
                    f" by {requested_by}" if requested_by else "")
                self._records.quarantine(app_id=app_id, revision=current, reason=why)
                if any(r.outcome is model.Outcome.SUCCEEDED for r in results):
                    # The release of ``current`` is rolled back for this app, for good.
                    self._records.finish_release_app(
                        revision=current, app_id=app_id, action=str(model.Action.UPDATE),
                        outcome=str(model.Outcome.ROLLED_BACK), reason=why,
                        run_id=run.run_id)
            for result in results:
                if result.outcome is model.Outcome.SUCCEEDED:
                    self._records.record_rollback(
                        run_id=run.run_id, app_id=app_id, from_version=live.get("version"),
                        to_version=result.version, reason="manual rollback", failure=None,
                        stuck_step=None, method="manual", outcome=str(result.outcome),
                        requested_by=requested_by)
            refreshed = self._client.get_app(app_id, embed=("app.tasks", "app.lastTaskFailure"))
            run.report = replace(run.report, health={app_id: health.assess(app_id, refreshed)})
        return run.report

    def rollback_target(
        self, app_id: model.AppId, *, to_revision_state: model.DesiredState | None = None,
        to_version: str | None = None, live: Mapping[str, Any] | None = None,
    ) -> RollbackTarget:
        """What :meth:`rollback_app` would put back, found without changing anything."""
        if to_revision_state is not None:
            if app_id not in to_revision_state.apps:
                raise ValueError(f"{app_id} is not in revision {to_revision_state.revision}")
            return RollbackTarget(app_id=app_id, revision=to_revision_state.revision,
                                  version=None,
                                  definition=to_revision_state.apps[app_id].definition)
        if live is None:
            live = self._client.get_app(app_id)
        version = to_version or _previous_version(self._client, app_id, live)
        return RollbackTarget(
            app_id=app_id, revision=None, version=version,
            definition=steps.strip_read_only(self._client.get_app_version(app_id, version)))

    @contextlib.contextmanager
    def _recorded_run(
        self, *, revision: str, trigger: model.Trigger, requested_by: str | None,
        dry_run: bool, errors: tuple[type[Exception], ...],
    ) -> Iterator[_Run]:
        """A run record, finished with whatever ``run.report`` says last, whatever happened.

        The body updates ``run.report`` as it goes; one of ``errors`` ends the run with that
        error recorded (and is not raised further).
        """
        run_id = self._records.start_run(revision=revision, trigger=trigger,
                                         requested_by=requested_by, dry_run=dry_run)
        run = _Run(run_id=run_id, journal=journaling.Journal(self._records, run_id=run_id,
                                                             revision=revision),
                   report=runreport.RunReport(run_id=run_id, revision=revision,
                                              trigger=trigger, dry_run=dry_run, plan=None,
                                              results=(), resumed=(), health={}))
        self._journal_proxy.target = run.journal
        try:
            yield run
        except errors as e:
            run.report = replace(run.report, error=_describe(e))
        finally:
            self._journal_proxy.target = None
            if run.report.changed_nothing:
                # A check that found nothing to do is not a run: counted by the caller.
                self._records.discard_run(run_id)
                run.report = replace(run.report, run_id=None)
            else:
                self._records.finish_run(run_id, outcome=str(run.report.outcome),
                                         error=run.report.error,
                                         summary=runreport.summary(run.report))


@dataclass(frozen=True)
class RollbackTarget:
    """Where a manual rollback goes: a recorded revision's definition, or a Marathon
    version's (then ``revision`` is None)."""

    app_id: model.AppId
    revision: str | None
    version: str | None
    definition: model.JSON

    @property
    def image(self) -> str | None:
        return ((self.definition.get("container") or {}).get("docker") or {}).get("image")


@dataclass
class _Run:
    """The run under way: its record id, its journal and its report so far."""

    run_id: int
    journal: journaling.Journal
    report: runreport.RunReport


def _previous_version(client: marathon.MarathonClient, app_id: model.AppId,
                      live: Mapping[str, Any]) -> str:
    """The newest version older than the live config that defines something else.

    Versions equal to the live definition are skipped: Marathon also lists writes it refused
    with 409 (``GroupManagerImpl.updateRootEither`` stores the version before the deployment
    manager refuses it), and a retried write stored the same definition again.
    """
    current = (live.get("versionInfo") or {}).get("lastConfigChangeAt") or live.get("version")
    older = sorted((v for v in client.list_versions(app_id) if v < str(current)), reverse=True)
    for version in older:
        definition = steps.strip_read_only(client.get_app_version(app_id, version))
        candidate = model.DesiredApp(app_id=app_id, definition=definition,
                                     source_path=f"marathon:{version}")
        if diffing.diff_app(candidate, dict(live)).action is not model.Action.NOOP:
            return version
    raise ValueError(f"{app_id} has no version before {current} to roll back to")


def _position(plan: planning.Plan, wave: str) -> int:
    return next((i for i, stage in enumerate(plan.stages) if stage.name == wave), 0)


def _assessing(live_apps: Iterable[dict[str, Any]], desired: model.DesiredState, *,
               into: dict[model.AppId, health.AppHealth]) -> Iterator[dict[str, Any]]:
    """``live_apps`` passed on, each desired one's health assessed into ``into`` on the way."""
    for live in live_apps:
        app_id = str(live.get("id"))
        if app_id in desired.apps:
            into[app_id] = health.assess(app_id, live)
        yield live


def _describe(error: Exception) -> str:
    if isinstance(error, marathon.MarathonError):
        return f"Marathon: {error.message}"
    if isinstance(error, marathon.Fenced):
        return f"stopped, left to the leader: {error.reason}"
    return str(error)


