"""Every drift ends in a recorded action: the drift check on a real record store, with the
reports of runs as the engine hands them over (corrected, blocked, overwritten)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.core import model
from reconciler.core import plan as planning
from reconciler.shell import driftcheck, events, records, runreport, steps
from reconciler.shell.liveapps import LiveApps

APP = "/dirac/catalog"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[records.RecordStore]:
    store = records.open_store(tmp_path / "state")
    try:
        yield store
    finally:
        store.close()


def open_drift(store: records.RecordStore) -> int:
    drift, _ = store.observe_drift(
        app_id=APP, kind="scale", fingerprint="f", policy="correct",
        patch=[{"op": "replace", "path": "/instances", "value": 3}])
    return drift.drift_id


def report(*, run_id: int | None, trigger: model.Trigger = model.Trigger.DRIFT_CORRECTION,
           results: tuple[steps.StepResult, ...] = (),
           skipped: tuple[planning.Skipped, ...] = (), error: str | None = None,
           ) -> runreport.RunReport:
    plan = planning.Plan(revision="r2", waves=(), skipped=skipped, in_sync=(), parallel=1)
    return runreport.RunReport(run_id=run_id, revision="r2", trigger=trigger, dry_run=False,
                               plan=plan, results=results, resumed=(), health={}, error=error)


def check(store: records.RecordStore) -> driftcheck.DriftCheck:
    return driftcheck.DriftCheck(store=store, flap_threshold=3, flap_window=60.0,
                                 clock=lambda: 0.0)


def test_a_correction_records_the_run_that_made_it(store: records.RecordStore) -> None:
    drift_id = open_drift(store)
    done = steps.StepResult(app_id=APP, action=model.Action.SCALE,
                            outcome=model.Outcome.SUCCEEDED)
    check(store).corrected(report(run_id=12, results=(done,)), {APP: drift_id})
    drift = store.drift(drift_id)
    assert (drift.action, drift.status, drift.run_id) == ("corrected", "resolved", 12)


def test_a_correction_held_back_by_a_quarantined_dependency_is_recorded_blocked_with_why(
    store: records.RecordStore,
) -> None:
    drift_id = open_drift(store)
    held = planning.Skipped(APP, model.Action.UPDATE,
                            planning.SkipReason.DEPENDENCY_QUARANTINED)
    check(store).corrected(report(run_id=None, skipped=(held,)), {APP: drift_id})
    drift = store.drift(drift_id)
    assert (drift.action, drift.status) == ("blocked", "open")
    assert drift.reason is not None and "dependency" in drift.reason and "r2" in drift.reason


def test_a_failed_correction_is_recorded_blocked_with_the_failure(
    store: records.RecordStore,
) -> None:
    drift_id = open_drift(store)
    failed = steps.StepResult(app_id=APP, action=model.Action.UPDATE,
                              outcome=model.Outcome.ROLLED_BACK, reason="deadline missed")
    check(store).corrected(report(run_id=13, results=(failed,)), {APP: drift_id})
    drift = store.drift(drift_id)
    assert (drift.action, drift.run_id, drift.reason) == (
        "blocked", 13, "correction rolled back in run 13: deadline missed")


def test_the_sync_of_a_revision_that_replaces_a_hand_edit_is_recorded_as_overwriting_it(
    store: records.RecordStore,
) -> None:
    """A report-policy hand edit replaced by an unrelated commit was only "gone" before."""
    drift_id = open_drift(store)
    synced = steps.StepResult(app_id=APP, action=model.Action.UPDATE,
                              outcome=model.Outcome.SUCCEEDED)
    check(store).synced(report(run_id=14, trigger=model.Trigger.POLL, results=(synced,)))
    drift = store.drift(drift_id)
    assert (drift.action, drift.status, drift.revision, drift.run_id) == (
        "overwritten", "resolved", "r2", 14)


def _live(instances: int, version: str) -> model.JSON:
    return {"id": APP, "instances": instances, "cpus": 0.1, "mem": 64, "version": version,
            "cmd": "sleep 1000"}


def test_an_unchanged_app_version_is_judged_from_the_memo_and_a_new_version_is_not(
    store: records.RecordStore,
) -> None:
    """Between resyncs the live cache hands the same versions again: the second check of an
    unchanged version normalizes nothing (a memo hit), a write (new version) is judged anew."""
    baseline = {"id": APP, "instances": 1, "cpus": 0.1, "mem": 64, "cmd": "sleep 1000"}
    desired = model.DesiredState(
        revision="r1", apps={APP: model.DesiredApp(app_id=APP, definition=baseline,
                                                   source_path="dirac/catalog.yaml")},
        images={}, settings=model.RepoSettings(managed_prefixes=("/dirac",)))
    drift = check(store)
    observe = {"desired": desired, "baselines": {APP: baseline}}

    assert drift.observe_all(live=LiveApps.of([_live(1, "v1")]), **observe) == {}
    assert (drift.memo.hits, drift.memo.misses) == (0, 1)  # normalized and compared once

    assert drift.observe_all(live=LiveApps.of([_live(1, "v1")]), **observe) == {}
    assert drift.memo.misses == 1, "an unchanged version was normalized again"
    assert drift.memo.hits == 1

    to_correct = drift.observe_all(live=LiveApps.of([_live(3, "v2")]), **observe)
    assert list(to_correct) == [APP]  # scaled behind Git's back: found
    assert drift.memo.misses == 2  # the new live version was judged anew
    assert store.drifts(open_only=True)[0].kind == "scale"


def test_a_write_is_kept_until_the_version_it_made_is_judged_and_names_a_drift_it_made(
    store: records.RecordStore,
) -> None:
    """Every write posts an event, the controller's own too: a write is forgotten once live
    at its version was found equal to the baseline (a release of every app left one per app
    for good before), and kept, and named in the record, while its version is drift."""
    baseline = {"id": APP, "instances": 1, "cpus": 0.1, "mem": 64, "cmd": "sleep 1000"}
    other = "/dirac/other"
    desired = model.DesiredState(
        revision="r1", apps={APP: model.DesiredApp(app_id=APP, definition=baseline,
                                                   source_path="dirac/catalog.yaml")},
        images={}, settings=model.RepoSettings(managed_prefixes=("/dirac",)))
    drift = check(store)

    def wrote(version: str, app_id: str = APP) -> None:
        drift.attributions.note(app_id, events.Attribution(
            client_ip="10.0.0.7", uri=f"/v2/apps{app_id}", at="t", version=version))

    def observe(live: model.JSON) -> dict[str, int]:
        return drift.observe_all(desired=desired, baselines={APP: baseline},
                                 live=LiveApps.of([live]))

    wrote("v1")  # the controller's own write, found equal: forgotten
    wrote("v1", app_id=other)  # an app Git does not manage: never judged, forgotten
    assert observe(_live(1, "v1")) == {}
    assert drift.attributions.now() == {}

    wrote("v2")  # scaled by hand: drift, named, and the write kept while it is drift
    assert list(observe(_live(3, "v2"))) == [APP]
    assert store.drifts(open_only=True)[0].client_ip == "10.0.0.7"
    assert list(drift.attributions.now()) == [APP]

    wrote("v4")  # noted while live still shows v3 (equal): not judged yet, kept
    assert observe(_live(1, "v3")) == {}
    assert drift.attributions.now()[APP].version == "v4"


def test_a_write_is_forgotten_by_the_version_its_own_change_made(
    store: records.RecordStore,
) -> None:
    """During a release the drift check waits for the run: the writes of every app it made
    were kept until then. The change's end names the version it made: that write goes, a
    later one (by hand, meanwhile) stays."""
    drift = check(store)
    for app_id, version in ((APP, "v1"), ("/dirac/other", "v7")):
        drift.attributions.note(app_id, events.Attribution(
            client_ip="10.0.0.7", uri=f"/v2/apps{app_id}", at="t", version=version))
    drift.attributions.forget_own(APP, "v1")
    drift.attributions.forget_own("/dirac/other", "v6")  # written again since: kept
    assert list(drift.attributions.now()) == ["/dirac/other"]
