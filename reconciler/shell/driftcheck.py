"""The drift check: live compared with what was last applied, recorded, and acted upon.

Per app: :func:`reconciler.core.drift.find_drift` says whether live differs from its baseline
(the desired definition last applied), the record store keeps one drift record per episode
(with who wrote it, from Marathon's event stream), and :func:`reconciler.core.drift.respond`
decides: correct (the controller re-applies desired), report, or stop a fight. Every drift
ends in a recorded action: corrected (by which run) or blocked (why) through
:meth:`DriftCheck.corrected` once the correction run is over, reported (why), or
overwritten by the sync of a revision (:meth:`DriftCheck.synced`). :func:`correct` runs the
corrections the check asked for (the controller hands it its reconcile).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

from reconciler.core import drift as drifting
from reconciler.core import model
from reconciler.core import normalize as normalizing
from reconciler.core import plan as planning
from reconciler.shell import events, liveapps, records, runreport, steps, telemetry

log = logging.getLogger(__name__)

_REMOVED = ({"op": "remove", "path": ""},)


class DriftCheck:
    def __init__(self, *, store: records.RecordStore, flap_threshold: int,
                 flap_window: float, clock: Callable[[], float]) -> None:
        self._records = store
        self._flap_threshold = flap_threshold
        self._flap_window = flap_window
        self._clock = clock
        self.memo = Memo()
        self.attributions = events.Attributions()
        """Who wrote each app through Marathon's API, until that write is judged."""

    def observe_all(
        self, *, desired: model.DesiredState, baselines: Mapping[str, model.JSON],
        live: liveapps.LiveApps,
    ) -> dict[str, int]:
        """Record every managed app's drift (or its end); the drift ids to correct, by app.

        An app whose baseline and live version were already found equal, with no drift
        open, costs a dictionary lookup: nothing is unpacked, normalized, compared or written.
        """
        versions = live.versions()
        attributions = self.attributions.now()
        open_apps = self._records.open_drift_apps()
        to_correct: dict[str, int] = {}
        for app_id, baseline in baselines.items():
            if app_id not in desired.apps:
                continue  # left Git (or not managed any more): no drift to speak of
            ignore = desired.settings.ignored_pointers_for(app_id)
            if app_id not in open_apps and self.memo.known_equal(
                    app_id, baseline=baseline, version=versions.get(app_id), ignore=ignore):
                continue
            drift_id = self.observe(app_id, baseline=baseline, live=live.get(app_id),
                                    desired=desired, who=attributions.get(app_id),
                                    has_open=app_id in open_apps)
            if drift_id is not None:
                to_correct[app_id] = drift_id
        self.memo.keep_only(versions.keys())
        self.attributions.forget_judged(attributions, self.memo.equal_version,
                                        managed=lambda app_id: app_id in desired.apps)
        return dict(sorted(to_correct.items()))

    def observe(self, app_id: str, *, baseline: model.JSON, live: model.JSON | None,
                desired: model.DesiredState, who: events.Attribution | None,
                has_open: bool = True) -> int | None:
        """Record the app's drift (or its end); the drift id when it should be corrected.
        ``has_open`` False: the app has no open drift, so an equal app writes nothing."""
        ignore = desired.settings.ignored_pointers_for(app_id)
        if live is None:
            finding: drifting.Finding | None = drifting.Finding(
                app_id=app_id, kind=drifting.DriftKind.CONFIG, patch=_REMOVED,
                fingerprint=drifting.fingerprint(_REMOVED))
        else:
            finding = self.memo.finding(app_id, baseline=baseline, live=live, ignore=ignore)
        if finding is None:
            if not has_open:
                return None
            for resolved in self._records.resolve_drift(app_id=app_id,
                                                        action=model.DriftAction.GONE):
                telemetry.event(log, "drift gone", app=app_id, drift=resolved.drift_id)
            return None
        if who is not None and not who.explains(live):
            who = None  # that write is not what live shows now (ours came after it, say)
        policy = desired.settings.drift_policy_for(app_id)
        record, created = self._records.observe_drift(
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
        corrections = self._records.recent_corrections(
            app_id=app_id, since=self._clock() - self._flap_window)
        response = drifting.respond(
            policy=policy, status=model.DriftStatus(record.status),
            quarantined=self._records.is_quarantined(app_id=app_id, revision=desired.revision),
            corrections_in_window=corrections, flap_threshold=self._flap_threshold)
        if response is drifting.Response.CORRECT:
            return record.drift_id
        if response in (drifting.Response.REPORT, drifting.Response.REPORT_QUARANTINED):
            action = (model.DriftAction.REPORTED if response is drifting.Response.REPORT
                      else model.DriftAction.REPORTED_QUARANTINED)
            if record.action != action:
                reason = ("drift policy is report" if response is drifting.Response.REPORT
                          else f"revision {desired.revision} is quarantined for this app: "
                               "correcting would undo its rollback")
                self._records.set_drift_action(record.drift_id, action=action, reason=reason)
                telemetry.DRIFT_ACTIONS.labels(action=str(model.DriftAction.REPORTED)).inc()
        elif response is drifting.Response.STOP_FLAPPING:
            self._records.set_drift_action(record.drift_id,
                                           action=model.DriftAction.FLAPPING_STOPPED,
                                           status=model.DriftStatus.FLAPPING)
            telemetry.DRIFT_ACTIONS.labels(action="flapping").inc()
            telemetry.event(log, "drift flapping: correction stopped", level=logging.ERROR,
                            app=app_id, corrections=corrections, window=self._flap_window,
                            suggested_ignore=drifting.suggested_ignore(app_id, finding.pointers))
        return None

    def corrected(self, report: runreport.RunReport, drifts: Mapping[str, int]) -> None:
        """After a correction run: every drift it was for ends corrected (by that run) or
        blocked (with why: a quarantined dependency, the run's error, the change's failure)."""
        by_app = steps.results_by_app(report.results)
        held = {s.app_id: s.reason for s in report.plan.skipped} if report.plan else {}
        for app_id, drift_id in drifts.items():
            result = by_app.get(app_id)
            if result is not None and result.outcome is model.Outcome.SUCCEEDED:
                self._records.set_drift_action(
                    drift_id, action=model.DriftAction.CORRECTED,
                    status=model.DriftStatus.RESOLVED, count_correction=True,
                    run_id=report.run_id)
                telemetry.DRIFT_ACTIONS.labels(action=str(model.DriftAction.CORRECTED)).inc()
                telemetry.event(log, "drift corrected", app=app_id, drift=drift_id,
                                run=report.run_id)
                continue
            reason = _blocked_reason(app_id, report=report, result=result,
                                     held=held.get(app_id))
            if reason is None:
                continue  # nothing to correct after all (live matched by then)
            self._records.set_drift_action(drift_id, action=model.DriftAction.BLOCKED,
                                           run_id=report.run_id, reason=reason)
            telemetry.DRIFT_ACTIONS.labels(action=str(model.DriftAction.BLOCKED)).inc()
            telemetry.event(log, "drift correction blocked", level=logging.WARNING,
                            app=app_id, drift=drift_id, reason=reason)

    def synced(self, report: runreport.RunReport) -> None:
        """After the sync of a revision: the open drift of every app it changed was
        overwritten by that revision (a hand edit under the ``report`` policy, say)."""
        for result in report.results:
            if result.outcome is not model.Outcome.SUCCEEDED:
                continue
            for drift in self._records.resolve_drift(
                    app_id=result.app_id, action=model.DriftAction.OVERWRITTEN,
                    run_id=report.run_id, revision=report.revision):
                telemetry.DRIFT_ACTIONS.labels(action=str(model.DriftAction.OVERWRITTEN)).inc()
                telemetry.event(log, "drift overwritten", app=result.app_id,
                                drift=drift.drift_id, revision=report.revision)


class Memo:
    """Which (baseline, live version) pairs were found equal: the next check of such an app
    is a dictionary lookup. Only that is kept, not the normalized definitions: an app whose
    version moved (any write to it changes Marathon's ``version``) is normalized and compared
    anew, both sides, which costs microseconds for one app and nothing while held.
    Drift check thread only: no lock."""

    def __init__(self) -> None:
        self._equal: dict[str, tuple[model.JSON, object, tuple[str, ...]]] = {}
        self.hits = 0
        """Apps judged from the memo."""
        self.misses = 0
        """Apps normalized and compared."""

    def known_equal(self, app_id: str, *, baseline: model.JSON, version: object,
                    ignore: tuple[str, ...]) -> bool:
        """True when this very baseline was found equal to this live version before."""
        entry = self._equal.get(app_id)
        if (entry is not None and version is not None and entry[0] is baseline
                and entry[1] == version and entry[2] == ignore):
            self.hits += 1
            return True
        return False

    def finding(self, app_id: str, *, baseline: model.JSON, live: model.JSON,
                ignore: tuple[str, ...]) -> drifting.Finding | None:
        self.misses += 1
        finding = drifting.find_normalized_drift(
            app_id, desired=normalizing.normalize_app(baseline, ignore=ignore),
            live=normalizing.normalize_app(live, ignore=ignore))
        version = live.get("version")
        if finding is None and version is not None:
            self._equal[app_id] = (baseline, version, ignore)
        else:
            self._equal.pop(app_id, None)
        return finding

    def equal_version(self, app_id: str) -> object | None:
        """The live version last found equal to the app's baseline (None: none is)."""
        entry = self._equal.get(app_id)
        return None if entry is None else entry[1]

    def keep_only(self, live_ids: Iterable[str]) -> None:
        """Forget apps no longer live (bounded memory)."""
        keep = set(live_ids)
        for app_id in [a for a in self._equal if a not in keep]:
            del self._equal[app_id]


def _blocked_reason(app_id: str, *, report: runreport.RunReport,
                    result: steps.StepResult | None, held: object) -> str | None:
    if report.error is not None:
        return f"correction run failed: {report.error}"
    if result is not None:
        why = f": {result.reason}" if result.reason else ""
        return f"correction {result.outcome} in run {report.run_id}{why}"
    if held == planning.SkipReason.DEPENDENCY_QUARANTINED:
        return (f"a dependency of {app_id} is quarantined at revision {report.revision}, "
                "and the correction would deploy this revision's definition, which needs it")
    if held is not None:
        return f"correction left out: {held}"
    return None


class Baselines:
    """Per app, the desired definition live should equal: what drift is measured against.

    The record store's last applied definitions, overridden by what the latest reconciles
    found in sync or applied: an app that already matched Git when the controller started
    has no change recorded, and must be watched for drift all the same.
    """

    def __init__(self, store: records.RecordStore) -> None:
        self._records = store
        self._in_sync: dict[str, model.JSON] = {}
        self._merged: dict[str, model.JSON] | None = None
        self._lock = threading.Lock()

    def all(self) -> dict[str, model.JSON]:
        """Read from the records once, then after every reconcile or :meth:`refresh` (the
        records of 10,000 apps are not re-read for each drift check)."""
        with self._lock:
            if self._merged is None:
                # The apps found in sync first: their ids are the desired state's strings,
                # not 10,000 more read from the records.
                merged = dict(self._in_sync)
                for app_id, applied in self._records.last_applied().items():
                    merged.setdefault(app_id, applied.definition)
                self._merged = merged
            return self._merged

    def refresh(self) -> None:
        """Read the records again at the next :meth:`all` (another process may write them)."""
        with self._lock:
            self._merged = None

    def set(self, app_id: str, definition: model.JSON) -> None:
        """What a person put back by hand is the baseline now: not drift to correct."""
        with self._lock:
            self._in_sync[app_id] = definition
            self._merged = None

    def remember(self, desired: model.DesiredState, report: runreport.RunReport) -> None:
        """After a reconcile: the apps now equal to ``desired`` (unchanged or changed fine)."""
        self.refresh()  # the run may have recorded changes, whatever its outcome
        if report.plan is None or report.error is not None:
            return
        equal = set(report.plan.in_sync) | {
            r.app_id for r in report.results if r.outcome is model.Outcome.SUCCEEDED}
        with self._lock:
            self._merged = None
            for app_id in equal:
                if app_id in desired.apps:
                    self._in_sync[app_id] = desired.apps[app_id].definition
            for result in report.results:
                if result.outcome is not model.Outcome.SUCCEEDED:
                    self._in_sync.pop(result.app_id, None)  # live is the previous version


def held_back(report: runreport.RunReport, drifts: Mapping[str, int]) -> dict[str, int]:
    """The drifted apps whose new revision the run held back (a quarantine, or a closed sync
    window): they are put back to what was last applied instead."""
    held = (planning.SkipReason.QUARANTINED, planning.SkipReason.DEPENDENCY_QUARANTINED,
            planning.SkipReason.OUTSIDE_WINDOW)
    skipped = {s.app_id for s in (report.plan.skipped if report.plan else ()) if s.reason in held}
    return {a: d for a, d in drifts.items() if a in skipped}


Reconcile = Callable[[model.DesiredState, Sequence[str]], runreport.RunReport]
"""``(desired, only these apps) -> the report`` of a drift-correction run (the controller's)."""


def correct(check: DriftCheck, baselines: Baselines, store: records.RecordStore, *,
            desired: model.DesiredState, drifts: Mapping[str, int],
            reconcile: Reconcile) -> None:
    """Correct drifted apps (``drifts``: app id -> drift id) to ``desired``; an app whose
    revision the run held back is put back to what was last applied to it instead."""
    report = reconcile(desired, sorted(drifts))
    held = held_back(report, drifts)
    check.corrected(report, {a: d for a, d in drifts.items() if a not in held})
    for app_id, drift_id in sorted(held.items()):
        _correct_to_baseline(check, baselines, store, desired=desired, app_id=app_id,
                             drift_id=drift_id, reconcile=reconcile)


def _correct_to_baseline(check: DriftCheck, baselines: Baselines, store: records.RecordStore,
                         *, desired: model.DesiredState, app_id: str, drift_id: int,
                         reconcile: Reconcile) -> None:
    """Put a drifted app back to what was last applied to it, when the newest revision
    cannot go out (it, or a dependency, is quarantined): a scale-back, or the last good
    definition, needs nothing of the quarantined release."""
    applied = store.last_applied(only={app_id}).get(app_id)
    baseline = baselines.all().get(app_id)
    if applied is None or baseline is None:
        check.corrected(runreport.RunReport(
            run_id=None, revision=desired.revision, trigger=model.Trigger.DRIFT_CORRECTION,
            dry_run=False, plan=None, results=(), resumed=(), health={},
            error="no definition was ever applied to put back"), {app_id: drift_id})
        return
    last_good = model.DesiredState(
        revision=applied.revision,
        apps={app_id: model.DesiredApp(app_id=app_id, definition=baseline,
                                       source_path=f"applied:{applied.revision}")},
        images=desired.images, settings=desired.settings)
    check.corrected(reconcile(last_good, (app_id,)), {app_id: drift_id})
