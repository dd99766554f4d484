"""The controller behind ``reconciler run``: keeps Marathon equal to Git with nobody typing.

Wiring only. Four things run in the background:

    poll     every RECONCILER_POLL_INTERVAL (:mod:`scheduler`): source.check() (one
             ls-remote); on a new revision read it, load it and Engine.reconcile (trigger
             "poll"/"webhook"). A webhook only moves this job to *now*.
    drift    every RECONCILER_DRIFT_INTERVAL (and at once after a Marathon API write to a
             managed app): the live apps of :mod:`livecache`, handed to :mod:`driftcheck`,
             which records drift and runs the corrections (trigger "drift-correction").
    events   :mod:`livecache` follows Marathon's event stream into memory (a full read at
             start, after a gap and every RECONCILER_RESYNC_INTERVAL; polling while the stream
             is down); ``api_post_event`` for a managed app triggers the drift job now and
             carries who did it (client address, URI).
    windows  every RECONCILER_POLL_INTERVAL: a revision a sync window held is applied once
             the window opened, by the controller's clock (:mod:`windowgate`).

With ``RECONCILER_ZK_URL`` these jobs do their work only on the replica that leads
(:mod:`leadership`: elected in ZooKeeper, its writes fenced); the others serve reads.

Never two reconciles at once: one lock is held by every job that may write to Marathon; a
burst of triggers is one run without losing the last one (see :mod:`scheduler`). Git or
Marathon down: logged, counted, retried with exponential backoff; nothing here raises out of
a job (the controller keeps going with the last good revision).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence

from reconciler.core import diff as diffing
from reconciler.core import load as loading
from reconciler.core import model
from reconciler.core import plan as planning
from reconciler.shell import (
    config,
    driftcheck,
    engine,
    events,
    gitsource,
    leadership,
    livecache,
    marathon,
    memory,
    notify,
    readiness,
    records,
    registry_job,
    runreport,
    scheduler,
    statusboard,
    steps,
    telemetry,
    windowgate,
)

log = logging.getLogger(__name__)

POLL_JOB = "poll"
DRIFT_JOB = "drift"
WINDOW_JOB = "windows"


class Controller:
    def __init__(
        self, *, settings: config.Settings, source: gitsource.Source,
        client: marathon.MarathonClient, store: records.RecordStore,
        notifier: notify.Notifier | None = None,
        clock: Callable[[], float] = time.time,
        leader: leadership.Leadership | None = None, environment: str | None = None,
    ) -> None:
        self.settings = settings
        self.leadership = leader
        """None: the only replica. Else only while it leads do the jobs below run."""
        self.source = source
        self.client = client
        self.records = store
        self._notifier = notifier
        self._clock = clock
        self._environment = environment
        # Sync windows are judged at the controller's clock (tests drive it).
        # Health comes from the live cache (the status board), not from the run's report.
        self._engine = engine.Engine(client=client, records=store, wall_clock=clock,
                                     settings=engine.EngineSettings(report_health=False),
                                     on_step_finished=self._on_step_finished)
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._scheduler = scheduler.Scheduler()
        self._live = livecache.LiveCache(client, resync_interval=settings.resync_interval,
                                         on_write=self._on_api_write,
                                         on_change=self._on_live_change,
                                         environment=environment)
        self._drift = driftcheck.DriftCheck(store=store, flap_threshold=settings.flap_threshold,
                                            flap_window=settings.flap_window, clock=clock)
        self.status_board = statusboard.StatusBoard(
            store=store, live_apps=self._live.status_views_now,
            generation=lambda: (self._generation, self._live.changes), environment=environment)
        """Every app's status for the pages, the API and /metrics, recomputed as things move."""
        self._generation = 0
        self._desired: model.DesiredState | None = None
        self._synced: str | None = None
        self._seen: str | None = None
        self._invalid: tuple[str, str] | None = None
        self._next_trigger = model.Trigger.POLL
        self._baselines = driftcheck.Baselines(store)
        """Apps the latest reconciles left equal to desired, with that desired definition."""
        self._git_backoff = scheduler.Backoff(base=min(1.0, settings.poll_interval))
        self._marathon_backoff = scheduler.Backoff(base=min(1.0, settings.poll_interval))
        self._last_poll_at: float | None = None
        self._last_sync_at: float | None = None
        self._last_outcome: str | None = None
        self._git_error: str | None = None
        self._marathon_error: str | None = None
        self._records_error: str | None = None
        """Why the last write to the records failed (or the records refused this Marathon)."""
        self._counted_requests = 0
        # Checks that changed nothing are counted in memory, not recorded: they are not
        # history, a row per check (or one rewritten every few seconds) would be a write per
        # poll for a number that Prometheus already keeps across restarts.
        self._checks = 0
        self._last_checked_at: float | None = None
        self._registry = registry_job.RegistryJob(
            settings, on_bumped=lambda: self.trigger_poll(model.Trigger.POLL), leads=self.leads,
            has_policies=lambda: registry_job.has_policies(self._desired),
        ) if registry_job.applies_to(settings, source) else None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self.leadership is not None:
            self.leadership.start(on_elected=self._elected)
        else:
            telemetry.LEADER.set(1)
        self._scheduler.every(POLL_JOB, self._poll_job, seconds=self.settings.poll_interval)
        self._scheduler.every(DRIFT_JOB, self._drift_job, seconds=self.settings.drift_interval,
                              first_in=self.settings.drift_interval)
        if self._registry is not None:
            self._registry.schedule(self._scheduler)
        self._scheduler.every(WINDOW_JOB, self._window_job, seconds=self.settings.poll_interval,
                              first_in=self.settings.poll_interval)
        self._scheduler.start()
        self._live.start()
        self.status_board.start()
        telemetry.event(log, "controller started", source=self._source_name(),
                        ref=self.settings.repo_ref, poll_interval=self.settings.poll_interval,
                        drift_interval=self.settings.drift_interval)

    def stop(self) -> None:
        if self.leadership is not None:
            self.leadership.stop()  # first: a follower takes over without waiting a session
        self._live.stop()
        self.status_board.stop()
        self._scheduler.shutdown()
        self._engine.close()
        if self._environment is not None:
            telemetry.forget_environment(self._environment)
        telemetry.event(log, "controller stopped")

    # -- leadership --------------------------------------------------------------------------

    def leads(self) -> bool:
        return self.leadership is None or self.leadership.leading

    def _elected(self, term: int) -> None:
        """Leader now: what this replica synced before is forgotten (the records are the
        truth: the next reconcile resumes a predecessor's deployments) and Git is polled."""
        self.records.set_term(term)
        with self._state_lock:
            self._synced = None
            self._marathon_error = None
        self._marathon_backoff.succeeded()
        self._git_backoff.succeeded()
        self.trigger_poll(model.Trigger.POLL)

    # -- triggers --------------------------------------------------------------------------

    def trigger_poll(self, trigger: model.Trigger = model.Trigger.WEBHOOK) -> None:
        """Poll Git now (a webhook arrived); a poll already running absorbs the burst."""
        with self._state_lock:
            self._next_trigger = trigger
        self._scheduler.run_now(POLL_JOB)

    def trigger_drift_check(self) -> None:
        self._scheduler.run_now(DRIFT_JOB)

    def request_sync(self, app_id: str | None, who: str, override: str | None = None) -> str:
        """Queue a reconcile of the current desired state (one app or all); does not block.

        Refused while a sync window holds an app of it, unless ``override`` says why
        (recorded in the audit with who asked)."""
        if self._desired is None:
            return "no desired state loaded yet: the next poll will sync"
        closed = self.closed_window(app_id)
        if closed is not None and not override:
            return f"refused: {closed}; give an override reason to sync anyway"
        only = (app_id,) if app_id else None
        self._scheduler.once(f"sync:{app_id or '*'}", self._sync_job, only=only, who=who,
                             override=override or None)
        return f"sync of {app_id or 'all apps'} queued" + (
            f" (sync window overridden: {override})" if closed and override else "")

    def closed_window(self, app_id: str | None) -> str | None:
        """Why a manual sync of ``app_id`` (None: all apps) is held by a sync window now."""
        desired = self._desired
        if desired is None:
            return None
        ids = [app_id] if app_id else list(desired.apps)
        closed = windowgate.closed_for(desired, ids, trigger=model.Trigger.MANUAL,
                                       at=self._clock())
        return windowgate.why_closed(closed) or None

    def preview_sync(self, app_id: str) -> planning.SyncPreview:
        """What syncing ``app_id`` now would change, or why it would not (answered before the
        sync is queued, and audited with the request)."""
        desired = self._desired
        if desired is None:
            return planning.SyncPreview(
                app_id=app_id, accepted=False, action=None, changes=(),
                message="will not sync: no desired state loaded yet (the next poll will)")
        try:
            live_apps = self.client.list_apps(embed=marathon.LIVE_EMBED)
        except marathon.MarathonError as e:
            return planning.SyncPreview(app_id=app_id, accepted=False, action=None,
                                        changes=(), message=f"will not sync: Marathon: "
                                                            f"{e.message}")
        diffs = diffing.diff_apps(desired, live_apps)
        held = self.records.quarantined_apps(revision=desired.revision)
        quarantined = {d.app_id for d in diffs
                       if d.action is not model.Action.NOOP and d.app_id in held}
        try:
            plan = planning.make_plan(diffs, revision=desired.revision,
                                      settings=desired.settings, quarantined=quarantined,
                                      options=planning.PlanOptions(only_apps=(app_id,)))
        except model.InvalidDesiredState as e:
            return planning.SyncPreview(app_id=app_id, accepted=False, action=None,
                                        changes=(), message=f"will not sync: {e}")
        return planning.preview(plan, app_id)

    def rollback(self, app_id: str, who: str) -> str:
        """Put the app back to its previous Marathon version now (waits for the lock)."""
        with self._lock:
            report = self._engine.rollback_app(app_id, requested_by=who)
            if report.error is None and report.outcome is model.Outcome.SUCCEEDED:
                # What a human rolled back to is the baseline now: not drift to correct.
                try:
                    live = self.client.get_app(app_id)
                except marathon.MarathonError:
                    live = None
                if live is not None:
                    with self._state_lock:
                        self._baselines.set(app_id, steps.strip_read_only(live))
        if report.error:
            return f"rollback failed: {report.error}"
        return f"rollback {report.outcome}"

    # -- status ----------------------------------------------------------------------------

    def status(self) -> readiness.Status:
        if self.leadership is not None and not self.leads():
            return readiness.follower_status(
                self.records, ref=self.settings.repo_ref, source=self._source_name(),
                leadership=self.leadership.view().as_json(),
                event_stream_error=self._live.stream_error)
        with self._state_lock:
            return readiness.Status(
                revision=self._synced, seen_revision=self._seen, ref=self.settings.repo_ref,
                source=self._source_name(), last_poll_at=records.iso(self._last_poll_at),
                last_sync_at=records.iso(self._last_sync_at), last_outcome=self._last_outcome,
                git_error=self._git_error, marathon_error=self._marathon_error,
                invalid=self._invalid[1] if self._invalid else None, checks=self._checks,
                last_checked_at=records.iso(self._last_checked_at),
                leadership=self.leadership.view().as_json() if self.leadership else None,
                event_stream_error=self._live.stream_error)

    @property
    def alive(self) -> bool:
        """The scheduler that polls Git and checks drift still runs (``/healthz``)."""
        return self._scheduler.running

    @property
    def ready(self) -> bool:
        """Ready when :meth:`not_ready_because` finds nothing."""
        return not self.not_ready_because()

    def not_ready_because(self) -> list[str]:
        """Why the controller is not ready (``/readyz``), empty when it is (one small write
        to the records is tried each time; a follower, which writes nothing, reads)."""
        try:
            if self.leads():
                self.records.probe_write()
            else:
                self.records.probe_read()
            probe = None
        except records.StoreUnavailable as e:
            probe = str(e)
        view = self.leadership.view() if self.leadership is not None else None
        with self._state_lock:
            return readiness.not_ready_because(
                synced=self._synced, invalid=self._invalid, git_error=self._git_error,
                marathon_error=self._marathon_error, records_error=probe or self._records_error,
                registry_error=self._registry.error if self._registry is not None else None,
                leadership=view)

    def live_apps(self) -> list[model.JSON]:
        """The live apps as statuses read them (tasks, health, deployments, image: not whole
        definitions, see :meth:`live_app`), from the live cache as it is (pages never wait
        for Marathon); read once if empty."""
        cached = self._live.cached()
        return (cached if cached is not None else self._live.current()).status_views()

    def live_app(self, app_id: str) -> model.JSON | None:
        """One whole live app (an app's page): from the live cache, or asked of Marathon."""
        cached = self._live.cached()
        if cached is not None:
            return cached.get(app_id)
        try:
            return self.client.get_app(app_id, embed=("app.tasks", "app.lastTaskFailure"))
        except marathon.NotFound:
            return None

    def refresh_metrics(self) -> None:
        """Bring counters fed from elsewhere up to date (called before a scrape)."""
        count = self.client.request_count
        with self._state_lock:
            delta, self._counted_requests = count - self._counted_requests, count
        if delta > 0:
            telemetry.MARATHON_REQUESTS.inc(delta)
        telemetry.OPEN_DRIFT.set(len(self.records.open_drift_apps()))

    def _source_name(self) -> str:
        name = getattr(self.source, "display_url", None)
        return str(name) if name else self.settings.repo_url

    # -- the poll job ----------------------------------------------------------------------

    def _poll_job(self) -> None:
        if not self.leads():
            return
        with self._state_lock:
            trigger, self._next_trigger = self._next_trigger, model.Trigger.POLL
        if trigger is model.Trigger.POLL and (self._git_backoff.waiting()
                                              or self._marathon_backoff.waiting()):
            return
        self._poll(trigger)

    def _poll(self, trigger: model.Trigger) -> None:
        telemetry.GIT_REQUESTS.inc()
        self._last_poll_at = self._clock()
        try:
            revision = self.source.check()
            if revision == self._synced:
                self._git_ok()
                self._checked("poll")
                return
            snapshot = self.source.read(revision)
        except gitsource.UntrustedRevision as e:
            self._git_ok()
            self._refuse(revision, e.reason, trigger=trigger)
            return
        except gitsource.SourceError as e:
            telemetry.GIT_ERRORS.inc()
            delay = self._git_backoff.failed()
            self._git_error = e.reason
            telemetry.event(log, "git poll failed", level=logging.WARNING, reason=e.reason,
                            retry_in=delay, kept_revision=self._synced)
            return
        self._git_ok()
        self._seen = revision
        if self._invalid is not None and self._invalid[0] == revision:
            return  # already recorded as invalid: wait for a new commit
        try:
            desired = loading.load_desired_state(list(snapshot.files), revision=revision,
                                                 like=self._desired)
        except model.InvalidDesiredState as e:
            self._invalid = (revision, str(e))
            try:
                with self._lock:
                    self._engine.record_failed_load(revision=revision, error=e,
                                                    trigger=trigger)
            except records.StoreUnavailable as failed:
                self._records_failed(failed)
            telemetry.event(log, "desired state invalid", level=logging.ERROR,
                            revision=revision, problems=[str(p) for p in e.problems])
            self._announce()  # a failed run: "sync failed", with the load error as why
            return
        self._invalid = None
        # Its files (megabytes at 10,000 apps) go before the revision's definitions are
        # written (as many megabytes of JSON for a moment): only who made it and why stay.
        snapshot = dataclasses.replace(snapshot, files=())
        memory.settle()  # the load's garbage handed back first: no peak on top of it
        self.records.record_revision(
            revision=revision,
            definitions={a: app.definition for a, app in desired.apps.items()},
            author=snapshot.author, message=snapshot.message,
            committed_at=snapshot.committed_at, source=snapshot.source, ref=snapshot.ref)
        telemetry.event(log, "new revision", revision=revision, author=snapshot.author,
                        message=(snapshot.message or "").split("\n", 1)[0], trigger=trigger)
        self._desired = desired
        report = self._reconcile(desired, trigger=trigger)
        if report.error is None:
            self._synced = revision

    def _refuse(self, revision: str, reason: str, *, trigger: model.Trigger) -> None:
        """An unsigned or untrusted revision: recorded once as a failed run, shown as the
        newest commit's problem and notified; the previous good revision stays applied."""
        self._seen = revision
        if self._invalid is not None and self._invalid[0] == revision:
            return
        self._invalid = (revision, reason)
        try:
            with self._lock:
                self._engine.record_failed_load(revision=revision, error=reason, trigger=trigger)
        except records.StoreUnavailable as failed:
            self._records_failed(failed)
        telemetry.event(log, "revision refused", level=logging.ERROR, revision=revision,
                        reason=reason)
        self._announce()

    def _records_failed(self, error: records.StoreUnavailable) -> None:
        self._records_error = str(error)
        telemetry.event(log, "records unavailable", level=logging.ERROR, error=str(error))

    def _git_ok(self) -> None:
        self._git_backoff.succeeded()
        self._git_error = None

    def _reconcile(self, desired: model.DesiredState, *, trigger: model.Trigger,
                   only: Sequence[str] | None = None, requested_by: str | None = None,
                   window_override: str | None = None) -> runreport.RunReport:
        started = time.monotonic()
        try:
            with self._lock:
                report = self._engine.reconcile(desired, trigger=trigger,
                                                requested_by=requested_by, only_apps=only,
                                                window_override=window_override)
                # Still under the lock: a drift check waiting for it (woken by the events of
                # this very run) must judge live against what this run applied, not the
                # baseline before it, or it takes our own release for a hand edit.
                self._baselines.remember(desired, report)
                if trigger is not model.Trigger.DRIFT_CORRECTION:
                    self._drift.synced(report)
            self._records_error = None
        except records.StoreUnavailable as e:
            self._records_failed(e)
            return runreport.RunReport(run_id=None, revision=desired.revision, trigger=trigger,
                                       dry_run=False, plan=None, results=(), resumed=(),
                                       health={}, error=f"records: {e}")
        elapsed = time.monotonic() - started
        self._live.refresh(r.app_id for r in (*report.resumed, *report.results))
        self.status_board.invalidate()
        memory.settle()  # the run's plan and live reads are garbage now
        telemetry.RECONCILE_SECONDS.labels(trigger=trigger).observe(elapsed)
        telemetry.RECONCILES.labels(trigger=trigger, outcome=str(report.outcome)).inc()
        for result in (*report.resumed, *report.results):
            telemetry.DEPLOYMENTS.labels(outcome=str(result.outcome)).inc()
            if result.rollback is not None:
                telemetry.ROLLBACKS.labels(outcome=str(result.rollback.outcome)).inc()
        self._last_sync_at = self._clock()
        self._last_outcome = str(report.outcome)
        if report.changed_nothing:
            self._checked(str(trigger))
        if report.error is not None:
            telemetry.MARATHON_ERRORS.inc()
            delay = self._marathon_backoff.failed()
            self._marathon_error = report.error
            telemetry.event(log, "reconcile failed", level=logging.WARNING,
                            revision=desired.revision, trigger=trigger, error=report.error,
                            retry_in=delay)
        else:
            self._marathon_backoff.succeeded()
            self._marathon_error = None
            telemetry.synced(self._environment, at=self._clock(),
                             revision=None if trigger is model.Trigger.DRIFT_CORRECTION
                             else desired.revision)
            telemetry.event(
                log, "reconciled", revision=desired.revision, trigger=trigger,
                outcome=str(report.outcome), seconds=round(elapsed, 3),
                **runreport.logged_changes(report))
        self._announce()
        return report

    def _sync_job(self, only: Sequence[str] | None, who: str,
                  override: str | None = None) -> None:
        desired = self._desired
        if desired is None or not self.leads():
            return
        self._reconcile(desired, trigger=model.Trigger.MANUAL, only=only, requested_by=who,
                        window_override=override)

    def _window_job(self) -> None:
        """A sync window held apps of the current revision and has opened: apply them now.
        A hold of an older revision is not applied (the newer one was planned instead)."""
        desired = self._desired
        if desired is None or not self.leads():
            return
        if windowgate.due(self.records, revision=desired.revision, at=self._clock()):
            self._reconcile(desired, trigger=model.Trigger.POLL)

    # -- the drift job ---------------------------------------------------------------------

    def _drift_job(self) -> None:
        if self._marathon_backoff.waiting() or not self.leads():
            return
        desired = self._desired
        if desired is None:
            return
        with self._lock:
            try:
                live = self._live.current()
            except marathon.MarathonError as e:
                telemetry.MARATHON_ERRORS.inc()
                delay = self._marathon_backoff.failed()
                self._marathon_error = e.message
                telemetry.event(log, "drift check failed", level=logging.WARNING,
                                error=e.message, retry_in=delay)
                return
            self._marathon_backoff.succeeded()
            self._marathon_error = None
            to_correct = self._drift.observe_all(desired=desired, baselines=self._baselines.all(),
                                                 live=live)
        if to_correct:
            driftcheck.correct(
                self._drift, self._baselines, self.records, desired=desired, drifts=to_correct,
                reconcile=lambda state, only: self._reconcile(
                    state, trigger=model.Trigger.DRIFT_CORRECTION, only=only))
        else:
            self._checked("drift")
        self._announce()

    def _checked(self, kind: str) -> None:
        """A poll, drift check or sync found nothing to change: count it, record no run."""
        now = self._clock()
        with self._state_lock:
            self._checks += 1
            self._last_checked_at = now
        telemetry.CHECKS.labels(kind=kind).inc()
        telemetry.LAST_CHECK.set(now)

    def _on_api_write(self, app_id: model.AppId, who: events.Attribution) -> None:
        desired = self._desired
        if desired is None or app_id not in desired.apps:
            return
        # Kept per app and matched to the live version by the drift check: the controller's
        # own writes post events too, and must not be taken for the hand edit they correct.
        self._drift.attributions.note(app_id, who)
        self.trigger_drift_check()

    def _on_step_finished(self, result: steps.StepResult) -> None:
        # Not a progress callback: with one, the applier reads each waiting app's health
        # every progress interval (a second), for progress lines nobody reads here.
        if result.outcome is model.Outcome.SUCCEEDED and result.version is not None:
            self._drift.attributions.forget_own(result.app_id, result.version)

    def _on_live_change(self, app_ids: frozenset[str]) -> None:
        """Apps changed without an ``api_post_event`` (the groups API, a resync): check."""
        desired = self._desired
        if desired is not None and not app_ids.isdisjoint(desired.apps):
            self.trigger_drift_check()

    def _announce(self) -> None:
        self._generation += 1  # after every reconcile and drift check: the board recomputes
        if self._notifier is None:
            return
        try:
            self._notifier.scan()
        except Exception:
            log.exception("notification scan failed")
