"""The controller behind ``reconciler run``: keeps Marathon equal to Git with nobody typing.

Three things run in the background (APScheduler's BackgroundScheduler, plus one thread)::

    poll     every RECONCILER_POLL_INTERVAL: source.check() (one ls-remote); on a new
             revision read it, load it and Engine.reconcile(trigger "poll"/"webhook").
             A webhook only moves this job to *now*.
    drift    every RECONCILER_DRIFT_INTERVAL (and at once after a Marathon API write to a
             managed app): ONE list_apps, each app compared with the definition last applied
             (records.last_applied()); drift recorded (observe_drift), then, per the repo's
             drift policy: ``correct`` re-applies desired (trigger "drift-correction"),
             ``report`` records only; corrected THRESHOLD times within the window means
             flapping: correcting stops and the record says which fields to ignore.
    events   a thread following Marathon's event stream; ``api_post_event`` for a managed
             app triggers the drift job now and carries who did it (client address, URI).

Never two reconciles at once: one lock is held by every job that may write to Marathon. A
burst of triggers is one run without losing the last one: each job may have one instance
running and one waiting (``max_instances=2``, and a per-job lock makes the second wait), so a
trigger that arrives while a run is under way is served by the waiting run, which reads Git
or Marathon only after the running one finished; further triggers are absorbed by it. Git or
Marathon down: logged, counted, retried with exponential backoff; nothing here raises out of
a job (the controller keeps going with the last good revision).
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from reconciler.core import drift as drifting
from reconciler.core import load as loading
from reconciler.core import model
from reconciler.core import normalize as normalizing
from reconciler.shell import applier as applying
from reconciler.shell import config, engine, gitsource, marathon, notify, records, telemetry

log = logging.getLogger(__name__)

POLL_JOB = "poll"
EMBEDDED_URL_FILE = "url"
"""In ``<state dir>/devcluster``: the embedded dev cluster's URL while it runs."""
DRIFT_JOB = "drift"
MAX_BACKOFF = 300.0


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


@dataclass(frozen=True)
class Status:
    """What the controller knows now, for ``/api/v1/status`` and ``/readyz``."""

    revision: str | None
    """The revision last reconciled without error."""
    seen_revision: str | None
    """The newest revision the source answered with."""
    ref: str
    source: str
    last_poll_at: str | None
    last_sync_at: str | None
    last_outcome: str | None
    git_error: str | None
    marathon_error: str | None
    invalid: str | None
    """Why the newest revision cannot be applied (validation problems), if so."""

    def as_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision, "lastSyncedRevision": self.revision,
            "seenRevision": self.seen_revision, "ref": self.ref, "source": self.source,
            "lastPollAt": self.last_poll_at, "lastSyncAt": self.last_sync_at,
            "lastOutcome": self.last_outcome, "gitError": self.git_error,
            "marathonError": self.marathon_error, "invalid": self.invalid,
        }


class Backoff:
    """Exponential delays after consecutive failures: ``base * 2**n`` up to ``cap``."""

    def __init__(self, *, base: float, cap: float = MAX_BACKOFF,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._base = base
        self._cap = cap
        self._clock = clock
        self.failures = 0
        self._not_before = 0.0

    def failed(self) -> float:
        delay = float(min(self._cap, self._base * 2.0 ** self.failures))
        self.failures += 1
        self._not_before = self._clock() + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self._not_before = 0.0

    def waiting(self) -> bool:
        return self._clock() < self._not_before


class Controller:
    def __init__(
        self, *, settings: config.Settings, source: gitsource.Source,
        client: marathon.MarathonClient, store: records.RecordStore,
        notifier: notify.Notifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.source = source
        self.client = client
        self.records = store
        self._notifier = notifier
        self._clock = clock
        self._engine = engine.Engine(client=client, records=store)
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._scheduler = BackgroundScheduler(
            job_defaults={"max_instances": 2, "coalesce": True, "misfire_grace_time": None},
            timezone=dt.UTC)
        # One run of each job at a time; the second instance the scheduler may start waits
        # here, and that is what serves a trigger arriving during a run (see the docstring).
        self._job_locks = {POLL_JOB: threading.Lock(), DRIFT_JOB: threading.Lock()}
        self._stopping = threading.Event()
        self._events_thread: threading.Thread | None = None
        self._desired: model.DesiredState | None = None
        self._synced: str | None = None
        self._seen: str | None = None
        self._invalid: tuple[str, str] | None = None
        self._next_trigger = "poll"
        self._attributions: dict[str, Attribution] = {}
        self._in_sync: dict[str, model.JSON] = {}
        """Apps the latest reconciles left equal to desired, with that desired definition."""
        self._git_backoff = Backoff(base=min(1.0, settings.poll_interval))
        self._marathon_backoff = Backoff(base=min(1.0, settings.poll_interval))
        self._last_poll_at: float | None = None
        self._last_sync_at: float | None = None
        self._last_outcome: str | None = None
        self._git_error: str | None = None
        self._marathon_error: str | None = None
        self._counted_requests = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self._scheduler.add_job(self._poll_job, "interval", id=POLL_JOB,
                                seconds=self.settings.poll_interval, next_run_time=now)
        self._scheduler.add_job(self._drift_job, "interval", id=DRIFT_JOB,
                                seconds=self.settings.drift_interval,
                                next_run_time=now + dt.timedelta(
                                    seconds=self.settings.drift_interval))
        self._scheduler.start()
        self._events_thread = threading.Thread(target=self._follow_events, name="marathon-events",
                                               daemon=True)
        self._events_thread.start()
        telemetry.event(log, "controller started", source=self._source_name(),
                        ref=self.settings.repo_ref, poll_interval=self.settings.poll_interval,
                        drift_interval=self.settings.drift_interval)

    def stop(self) -> None:
        # The event thread is a daemon: it notices the flag at its next event or idle timeout.
        self._stopping.set()
        self._scheduler.shutdown(wait=True)
        self._engine.close()
        telemetry.event(log, "controller stopped")

    # -- triggers --------------------------------------------------------------------------

    def trigger_poll(self, trigger: str = "webhook") -> None:
        """Poll Git now (a webhook arrived); a poll already running absorbs the burst."""
        with self._state_lock:
            self._next_trigger = trigger
        self._run_now(POLL_JOB)

    def trigger_drift_check(self) -> None:
        self._run_now(DRIFT_JOB)

    def _run_now(self, job_id: str) -> None:
        job = self._scheduler.get_job(job_id)
        if job is not None:
            job.modify(next_run_time=dt.datetime.now(dt.UTC))
            self._scheduler.wakeup()

    def request_sync(self, app_id: str | None, who: str) -> str:
        """Queue a reconcile of the current desired state (one app or all); does not block."""
        if self._desired is None:
            return "no desired state loaded yet: the next poll will sync"
        only = (app_id,) if app_id else None
        self._scheduler.add_job(self._sync_job, kwargs={"only": only, "who": who},
                                id=f"sync:{app_id or '*'}", replace_existing=True)
        return f"sync of {app_id or 'all apps'} queued"

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
                        self._in_sync[app_id] = applying.strip_read_only(live)
        if report.error:
            return f"rollback failed: {report.error}"
        return f"rollback {report.outcome}"

    # -- status ----------------------------------------------------------------------------

    def status(self) -> Status:
        with self._state_lock:
            return Status(
                revision=self._synced, seen_revision=self._seen, ref=self.settings.repo_ref,
                source=self._source_name(), last_poll_at=records.iso(self._last_poll_at),
                last_sync_at=records.iso(self._last_sync_at), last_outcome=self._last_outcome,
                git_error=self._git_error, marathon_error=self._marathon_error,
                invalid=self._invalid[1] if self._invalid else None)

    @property
    def alive(self) -> bool:
        """The scheduler that polls Git and checks drift still runs (``/healthz``)."""
        return bool(self._scheduler.running)

    @property
    def ready(self) -> bool:
        """Ready once a revision has been reconciled and the last Git and Marathon contacts
        worked (``/readyz`` says which one is missing)."""
        with self._state_lock:
            return (self._synced is not None and self._git_error is None
                    and self._marathon_error is None)

    def live_apps(self) -> list[model.JSON]:
        return self.client.list_apps(embed=engine.LIVE_EMBED)

    def refresh_metrics(self) -> None:
        """Bring counters fed from elsewhere up to date (called before a scrape)."""
        count = self.client.request_count
        with self._state_lock:
            delta, self._counted_requests = count - self._counted_requests, count
        if delta > 0:
            telemetry.MARATHON_REQUESTS.inc(delta)
        telemetry.OPEN_DRIFT.set(len({d.app_id for d in self.records.drifts(open_only=True)}))

    def _source_name(self) -> str:
        name = getattr(self.source, "display_url", None)
        return str(name) if name else self.settings.repo_url

    # -- the poll job ----------------------------------------------------------------------

    def _poll_job(self) -> None:
        with self._job_locks[POLL_JOB]:
            with self._state_lock:
                trigger, self._next_trigger = self._next_trigger, "poll"
            if trigger == "poll" and (self._git_backoff.waiting()
                                      or self._marathon_backoff.waiting()):
                return
            try:
                self._poll(trigger)
            except Exception:  # noqa: BLE001 - a job must never die; the log says what happened
                log.exception("poll failed unexpectedly")

    def _poll(self, trigger: str) -> None:
        telemetry.GIT_REQUESTS.inc()
        self._last_poll_at = self._clock()
        try:
            revision = self.source.check()
            if revision == self._synced:
                self._git_ok()
                return
            snapshot = self.source.read(revision)
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
            desired = loading.load_desired_state(list(snapshot.files), revision=revision)
        except model.InvalidDesiredState as e:
            self._invalid = (revision, str(e))
            with self._lock:
                self._engine.record_failed_load(revision=revision, error=e, trigger=trigger)
            telemetry.event(log, "desired state invalid", level=logging.ERROR,
                            revision=revision, problems=[str(p) for p in e.problems])
            return
        self._invalid = None
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

    def _git_ok(self) -> None:
        self._git_backoff.succeeded()
        self._git_error = None

    def _reconcile(self, desired: model.DesiredState, *, trigger: str,
                   only: Sequence[str] | None = None,
                   requested_by: str | None = None) -> engine.RunReport:
        started = time.monotonic()
        with self._lock:
            report = self._engine.reconcile(desired, trigger=trigger, requested_by=requested_by,
                                            only_apps=only)
        elapsed = time.monotonic() - started
        self._remember_in_sync(desired, report)
        telemetry.RECONCILE_SECONDS.labels(trigger=trigger).observe(elapsed)
        telemetry.RECONCILES.labels(trigger=trigger, outcome=str(report.outcome)).inc()
        for result in (*report.resumed, *report.results):
            telemetry.DEPLOYMENTS.labels(outcome=str(result.outcome)).inc()
            if result.rollback is not None:
                telemetry.ROLLBACKS.labels(outcome=str(result.rollback.outcome)).inc()
        self._last_sync_at = self._clock()
        self._last_outcome = str(report.outcome)
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
            if trigger != "drift-correction":
                telemetry.SYNCED_REVISION.info({"revision": desired.revision})
            telemetry.LAST_SYNC.set(self._clock())
            telemetry.event(
                log, "reconciled", revision=desired.revision, trigger=trigger,
                outcome=str(report.outcome), seconds=round(elapsed, 3),
                changes=[f"{r.action} {r.app_id}: {r.outcome}" for r in report.results])
        self._announce()
        return report

    def _sync_job(self, only: Sequence[str] | None, who: str) -> None:
        desired = self._desired
        if desired is None:
            return
        try:
            self._reconcile(desired, trigger="manual", only=only, requested_by=who)
        except Exception:  # noqa: BLE001 - a job must never die
            log.exception("manual sync failed unexpectedly")

    # -- the drift job ---------------------------------------------------------------------

    def _drift_job(self) -> None:
        with self._job_locks[DRIFT_JOB]:
            if self._marathon_backoff.waiting():
                return
            try:
                self._check_drift()
            except Exception:  # noqa: BLE001 - a job must never die
                log.exception("drift check failed unexpectedly")

    def _check_drift(self) -> None:
        desired = self._desired
        if desired is None:
            return
        with self._state_lock:
            attributions = dict(self._attributions)
        to_correct: dict[str, int] = {}
        with self._lock:
            try:
                live_apps = self.client.list_apps(embed=engine.LIVE_EMBED)
            except marathon.MarathonError as e:
                telemetry.MARATHON_ERRORS.inc()
                delay = self._marathon_backoff.failed()
                self._marathon_error = e.message
                telemetry.event(log, "drift check failed", level=logging.WARNING,
                                error=e.message, retry_in=delay)
                return
            self._marathon_backoff.succeeded()
            self._marathon_error = None
            live_by_id = {normalizing.absolute_id(str(a.get("id", "")), base="/"): a
                          for a in live_apps}
            for app_id, baseline in sorted(self._baselines().items()):
                if app_id not in desired.apps:
                    continue  # left Git (or not managed any more): no drift to speak of
                drift_id = self._observe(app_id, baseline=baseline, live=live_by_id.get(app_id),
                                         desired=desired, who=attributions.get(app_id))
                if drift_id is not None:
                    to_correct[app_id] = drift_id
        if to_correct:
            self._correct(desired, to_correct)
        else:
            self._announce()

    def _baselines(self) -> dict[str, model.JSON]:
        """Per app, the desired definition live should equal: what drift is measured against.

        The record store's last applied definitions, overridden by what the latest reconciles
        found in sync or applied: an app that already matched Git when the controller started
        has no change recorded, and must be watched for drift all the same.
        """
        baselines = {a: applied.definition for a, applied in self.records.last_applied().items()}
        with self._state_lock:
            baselines.update(self._in_sync)
        return baselines

    def _remember_in_sync(self, desired: model.DesiredState, report: engine.RunReport) -> None:
        """After a reconcile: the apps now equal to ``desired`` (unchanged or changed fine)."""
        if report.plan is None or report.error is not None:
            return
        equal = set(report.plan.in_sync) | {
            r.app_id for r in report.results if r.outcome is model.Outcome.SUCCEEDED}
        with self._state_lock:
            for app_id in equal:
                if app_id in desired.apps:
                    self._in_sync[app_id] = desired.apps[app_id].definition
            for result in report.results:
                if result.outcome is not model.Outcome.SUCCEEDED:
                    self._in_sync.pop(result.app_id, None)  # live is the previous version

    def _observe(self, app_id: str, *, baseline: model.JSON, live: model.JSON | None,
                 desired: model.DesiredState, who: Attribution | None) -> int | None:
        """Record the app's drift (or its end); the drift id when it should be corrected."""
        ignore = desired.settings.ignored_pointers_for(app_id)
        if live is None:
            finding: drifting.Finding | None = drifting.Finding(
                app_id=app_id, kind=drifting.DriftKind.CONFIG,
                patch=({"op": "remove", "path": ""},),
                fingerprint=drifting.fingerprint([{"op": "remove", "path": ""}]))
        else:
            finding = drifting.find_drift(app_id, desired=baseline, live=live, ignore=ignore)
        if finding is None:
            for resolved in self.records.resolve_drift(app_id=app_id, action="gone"):
                telemetry.event(log, "drift gone", app=app_id, drift=resolved.drift_id)
            return None
        if who is not None and not who.explains(live):
            who = None  # that write is not what live shows now (ours came after it, say)
        policy = desired.settings.drift_policy_for(app_id)
        record, created = self.records.observe_drift(
            app_id=app_id, kind=str(finding.kind), patch=finding.patch,
            fingerprint=finding.fingerprint, policy=str(policy),
            client_ip=who.client_ip if who else None, uri=who.uri if who else None,
            attributed_at=who.at if who else None,
            live_version=None if live is None else live.get("version"))
        if created:
            telemetry.DRIFT_DETECTED.labels(kind=str(finding.kind)).inc()
            telemetry.event(log, "drift detected", level=logging.WARNING, app=app_id,
                            kind=str(finding.kind), fields=list(finding.pointers),
                            policy=str(policy), client_ip=record.client_ip, uri=record.uri,
                            live_version=record.live_version)
        if record.status == "flapping":
            return None  # correcting stopped: a human decides (ignore rule or fix the culprit)
        quarantined = self.records.is_quarantined(app_id=app_id, revision=desired.revision)
        if policy is model.DriftPolicy.REPORT or quarantined:
            # A quarantined app was rolled back on purpose: re-applying would undo that.
            action = "reported" if not quarantined else "reported (app quarantined)"
            if record.action != action:
                self.records.set_drift_action(record.drift_id, action=action)
                telemetry.DRIFT_ACTIONS.labels(action="reported").inc()
            return None
        since = self._clock() - self.settings.flap_window
        corrections = self.records.recent_corrections(app_id=app_id, since=since)
        if drifting.is_flapping(corrections, threshold=self.settings.flap_threshold):
            self.records.set_drift_action(record.drift_id, action="flapping-stopped",
                                          status="flapping")
            telemetry.DRIFT_ACTIONS.labels(action="flapping").inc()
            telemetry.event(log, "drift flapping: correction stopped", level=logging.ERROR,
                            app=app_id, corrections=corrections,
                            window=self.settings.flap_window,
                            suggested_ignore=drifting.suggested_ignore(app_id, finding.pointers))
            return None
        return record.drift_id

    def _correct(self, desired: model.DesiredState, drifts: dict[str, int]) -> None:
        report = self._reconcile(desired, trigger="drift-correction", only=sorted(drifts))
        by_app = {r.app_id: r for r in report.results}
        for app_id, drift_id in drifts.items():
            result = by_app.get(app_id)
            if result is not None and result.outcome is model.Outcome.SUCCEEDED:
                self.records.set_drift_action(drift_id, action="corrected", status="resolved",
                                              count_correction=True)
                telemetry.DRIFT_ACTIONS.labels(action="corrected").inc()
                telemetry.event(log, "drift corrected", app=app_id, drift=drift_id)
        self._announce()

    # -- Marathon's event stream -----------------------------------------------------------

    def _follow_events(self) -> None:
        backoff = Backoff(base=0.5, cap=30.0)
        while not self._stopping.is_set():
            try:
                for event in self.client.events(event_types=("api_post_event",),
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
            except Exception:  # noqa: BLE001 - the thread must keep following
                if self._stopping.is_set():
                    break
                log.exception("event stream failed unexpectedly")
                self._stopping.wait(backoff.failed())

    def _on_event(self, event: marathon.Event) -> None:
        if event.event_type != "api_post_event":
            return
        definition = event.data.get("appDefinition") or {}
        app_id = normalizing.absolute_id(str(definition.get("id", "")), base="/")
        desired = self._desired
        if desired is None or app_id not in desired.apps:
            return
        version = definition.get("version")
        who = Attribution(client_ip=str(event.data.get("clientIp", "")),
                          uri=str(event.data.get("uri", "")),
                          at=str(event.data.get("timestamp", "")),
                          version=str(version) if version else None)
        # Kept per app and matched to the live version by the drift check: the controller's
        # own writes post events too, and must not be taken for the hand edit they correct.
        with self._state_lock:
            self._attributions[app_id] = who
        self.trigger_drift_check()

    def _announce(self) -> None:
        if self._notifier is None:
            return
        try:
            self._notifier.scan()
        except Exception:  # noqa: BLE001 - notifications never stop the controller
            log.exception("notification scan failed")


# -- building one from settings ----------------------------------------------------------------


@dataclass
class Embedded:
    """The dev cluster started as a child process (``RECONCILER_MARATHON_URL=embedded``)."""

    url: str
    process: subprocess.Popen[bytes]
    state_dir: Path

    def stop(self) -> None:
        url_file = self.state_dir / EMBEDDED_URL_FILE
        if url_file.is_file():
            url_file.unlink()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_embedded_marathon(state_dir: Path, *, timeout: float = 30.0) -> Embedded:
    """Start ``reconciler devcluster`` on a free port, state under ``state_dir/devcluster``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    folder = state_dir / "devcluster"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "devcluster.log", "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "devcluster", "--host", "127.0.0.1",
             "--port", str(port), "--state-dir", str(folder)], stdout=out,
            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    embedded = Embedded(url=url, process=process, state_dir=folder)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2):
                # ``reconciler status`` finds the cluster here when no URL is given.
                (folder / EMBEDDED_URL_FILE).write_text(url + "\n")
                return embedded
        except OSError:
            time.sleep(0.1)
    embedded.stop()
    raise RuntimeError(f"the embedded dev cluster did not start; see {folder}/devcluster.log")


def embedded_url(state_dir: Path) -> str | None:
    """The URL of the embedded dev cluster a ``reconciler run`` started, if it runs."""
    path = state_dir / "devcluster" / EMBEDDED_URL_FILE
    return path.read_text().strip() if path.is_file() else None


def build(settings: config.Settings, *, marathon_url: str | None = None) -> Controller:
    """A controller wired from settings (source, client, store, notifier); not started.

    ``marathon_url`` replaces ``settings.marathon_url`` (the embedded dev cluster's address).
    """
    source = gitsource.open_source(
        settings.repo_url, ref=settings.repo_ref, path=settings.repo_path,
        cache_dir=settings.state_dir / "git", token=settings.git_token,
        ssh_key_file=settings.git_ssh_key_file,
        known_hosts_file=settings.git_known_hosts_file)
    client = marathon.MarathonClient(settings.client_settings(urls=marathon_url))
    store = records.open_store(settings.state_dir, url=settings.database_url)
    webhook = settings.notify_webhook_url
    notifier = notify.Notifier(
        records=store, webhook_url=webhook,
        capture=telemetry.capture_message if settings.sentry_dsn else None,
        secrets=settings.secrets, dashboard_url=settings.public_url,
    ) if (webhook or settings.sentry_dsn) else None
    return Controller(settings=settings, source=source, client=client, store=store,
                      notifier=notifier)
