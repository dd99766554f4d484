"""The record store, on SQLite files and on a real PostgreSQL server, through the same tests."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.core import model
from reconciler.shell import readmodel, records
from reconciler.shell.records import drift as records_drift
from reconciler.shell.records import migrate

T0 = 1_790_000_000.0  # 2026-09-21T13:33:20Z
SHA = "3f2a9c0d1b7e4f60a8c5d2e1f0b9a8c7d6e5f4a3"
OTHER_SHA = "9b8a7c6d5e4f30211f0e9d8c7b6a594837261504"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(store_url: str, clock: Clock, tmp_path: Path) -> Iterator[records.RecordStore]:
    (tmp_path / "state").mkdir(exist_ok=True)
    store = records.RecordStore(store_url, clock=clock)
    try:
        yield store
    finally:
        store.close()


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


# -- revisions and runs ----------------------------------------------------------------------


def test_a_revision_is_recorded_once_with_its_origin_and_definitions(
    store: records.RecordStore, clock: Clock
) -> None:
    definitions = {"/dirac/fts": {"id": "/dirac/fts", "instances": 2}}
    store.record_revision(revision=SHA, definitions=definitions, author="Ada <ada@cern.ch>",
                          message="Bump lhcbdirac to v8r2p44", committed_at=T0 - 60,
                          source="https://gitlab.cern.ch/lhcb/marathon-config.git",
                          ref="refs/heads/main")
    clock.advance(10)
    store.record_revision(revision=SHA, definitions={}, author="someone else")

    [revision] = store.revisions()
    assert revision == records.Revision(
        revision=SHA, source="https://gitlab.cern.ch/lhcb/marathon-config.git",
        ref="refs/heads/main", author="Ada <ada@cern.ch>", message="Bump lhcbdirac to v8r2p44",
        committed_at=iso(T0 - 60), first_seen_at=iso(T0), apps=1, last_outcome=None,
        last_trigger=None)
    assert store.desired_definition(revision=SHA, app_id="/dirac/fts") == definitions[
        "/dirac/fts"]
    assert store.desired_definition(revision=SHA, app_id="/dirac/other") is None
    assert store.desired_definition(revision=OTHER_SHA, app_id="/dirac/fts") is None


def test_revisions_carry_the_outcome_of_their_last_real_run(
    store: records.RecordStore, clock: Clock
) -> None:
    store.record_revision(revision=SHA, definitions={})
    clock.advance(1)
    store.record_revision(revision=OTHER_SHA, definitions={"/a": {}, "/b": {}})
    first = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    store.finish_run(first, outcome=model.Outcome.FAILED, error="boom", summary=None)
    second = store.start_run(revision=SHA, trigger="webhook", requested_by=None, dry_run=False)
    change(store, second)
    store.finish_run(second, outcome=model.Outcome.SUCCEEDED, error=None, summary=None)
    dry = store.start_run(revision=SHA, trigger="cli", requested_by="ada", dry_run=True)
    store.finish_run(dry, outcome=model.Outcome.SKIPPED, error=None, summary=None)
    # A run of an older database that found nothing to do: not the revision's outcome.
    noop = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    store.finish_run(noop, outcome=model.Outcome.SUCCEEDED, error=None, summary=None)

    newest, oldest = store.revisions()
    assert (newest.revision, newest.apps, newest.last_outcome) == (OTHER_SHA, 2, None)
    assert (oldest.revision, oldest.last_outcome, oldest.last_trigger) == (
        SHA, "succeeded", "webhook")
    assert [r.run_id for r in store.runs()] == [dry, second, first]
    assert [e.record.run_id for e in store.history() if isinstance(e.record, records.Run)
            ] == [first, second, dry]


def test_a_run_that_changed_nothing_is_discarded_and_one_with_a_change_is_kept(
    store: records.RecordStore,
) -> None:
    check = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    real = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    change(store, real)
    assert store.discard_run(check) and not store.discard_run(real)
    assert [r.run_id for r in store.runs()] == [real]


# -- releases ----------------------------------------------------------------------------------

IMAGES = {"dirac": "registry.cern.ch:443/lhcb/lhcbdirac:v11r0p1",
          "web": "registry.cern.ch:443/lhcb/webapp:v5r0"}


def release(store: records.RecordStore, revision: str, apps: dict[str, str | None], *,
            images: dict[str, str] = IMAGES, trigger: str = "poll") -> int:
    """A run of ``revision`` changing ``apps`` (id: outcome, None while under way)."""
    run_id = store.start_run(revision=revision, trigger=trigger, requested_by=None,
                             dry_run=False)
    store.open_release(revision=revision, trigger=trigger, requested_by=None, run_id=run_id,
                       images=images, apps=[(a, "update") for a in apps])
    for app_id, outcome in apps.items():
        change(store, run_id, app_id, revision=revision)
        if outcome is not None:
            store.finish_release_app(revision=revision, app_id=app_id, action="update",
                                     outcome=outcome, reason=None, run_id=run_id)
    store.finish_run(run_id, outcome="succeeded", error=None, summary=None)
    return run_id


def test_each_release_of_a_page_lists_its_own_apps_needing_attention_first(
    store: records.RecordStore, clock: Clock
) -> None:
    """One query for the attention lists of a page of releases: each release keeps its own
    apps, at most ``apps_shown`` of them, broken first, then undone, then under way."""
    apps = [f"/dirac/a{i}" for i in range(6)]
    for revision, outcomes in (
            (OTHER_SHA, ["succeeded", "failed", "succeeded", None, "rolled back", "timed out"]),
            (SHA, ["waiting for window", "succeeded", "rolled back", None, "succeeded",
                   "failed"])):
        store.record_revision(revision=revision, definitions={a: {"id": a} for a in apps})
        store.open_release(revision=revision, trigger="poll", requested_by=None, run_id=None,
                           images={}, apps=[(a, "update") for a in apps])
        for app_id, outcome in zip(apps, outcomes, strict=True):
            if outcome is not None:
                store.finish_release_app(revision=revision, app_id=app_id, action="update",
                                         outcome=outcome, reason=None, run_id=None)
        clock.advance(60)

    listed = {r.revision: [(a.app_id, a.outcome) for a in r.apps]
              for r in store.releases(apps_shown=5)}
    assert listed == {
        SHA: [("/dirac/a5", "failed"), ("/dirac/a2", "rolled back"), ("/dirac/a3", None),
              ("/dirac/a0", "waiting for window"), ("/dirac/a1", "succeeded")],
        OTHER_SHA: [("/dirac/a1", "failed"), ("/dirac/a5", "timed out"),
                    ("/dirac/a4", "rolled back"), ("/dirac/a3", None),
                    ("/dirac/a0", "succeeded")]}
    assert [len(r.apps) for r in store.releases(apps_shown=1)] == [1, 1]
    one = store.release(OTHER_SHA, apps_shown=2)
    assert one is not None and [a.app_id for a in one.apps] == ["/dirac/a1", "/dirac/a5"]


def test_a_release_keeps_author_message_images_changed_and_each_apps_outcome(
    store: records.RecordStore, clock: Clock
) -> None:
    store.record_revision(revision=SHA, definitions={}, author="Ada <ada@cern.ch>",
                          message="web: v5r1")
    release(store, SHA, {"/dirac/fts": "succeeded"})
    clock.advance(60)
    store.record_revision(revision=OTHER_SHA, definitions={}, author="Bob <bob@cern.ch>",
                          message="web: v5r1, dirac: v11r0p2")
    newer = {"dirac": "registry.cern.ch:443/lhcb/lhcbdirac:v11r0p2",
             "web": "registry.cern.ch:443/lhcb/webapp:v5r1"}
    run_id = release(store, OTHER_SHA, {"/dirac/fts": "succeeded", "/dirac/web": "rolled back"},
                     images=newer)

    latest, first = store.releases()
    assert (latest.revision, latest.author, latest.message, latest.trigger, latest.run_id) == (
        OTHER_SHA, "Bob <bob@cern.ch>", "web: v5r1, dirac: v11r0p2", "poll", run_id)
    assert [str(c) for c in latest.images_changed] == [
        "dirac (registry.cern.ch:443/lhcb/lhcbdirac): v11r0p1 -> v11r0p2",
        "web (registry.cern.ch:443/lhcb/webapp): v5r0 -> v5r1"]
    assert [(a.app_id, a.outcome) for a in latest.apps] == [
        ("/dirac/fts", "succeeded"), ("/dirac/web", "rolled back")]
    assert str(latest.outcome) == "partially rolled back"
    assert str(first.outcome) == "succeeded"
    assert store.release(OTHER_SHA) == latest
    assert latest.as_json()["imagesChanged"][0] == {
        "name": "dirac", "repository": "registry.cern.ch:443/lhcb/lhcbdirac",
        "old": "v11r0p1", "new": "v11r0p2"}


def test_a_rolled_back_release_stays_rolled_back_whatever_runs_later(
    store: records.RecordStore, clock: Clock
) -> None:
    """The Revisions page showed a broken revision "succeeded" once a no-op run followed."""
    store.record_revision(revision=SHA, definitions={"/dirac/web": {}})
    release(store, SHA, {"/dirac/web": "rolled back"})
    for _ in range(3):  # later runs of the same revision with nothing to do
        clock.advance(5)
        noop = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
        store.finish_run(noop, outcome="succeeded", error=None, summary=None)

    [revision] = store.revisions()
    assert revision.last_outcome == "rolled back"
    assert str(store.releases()[0].outcome) == "rolled back"


def test_a_release_left_under_way_is_superseded_by_a_newer_one(
    store: records.RecordStore, clock: Clock
) -> None:
    release(store, SHA, {"/dirac/web": None})
    assert str(store.releases()[0].outcome) == "in progress"
    clock.advance(5)
    release(store, OTHER_SHA, {"/dirac/web": "succeeded"})
    assert [str(r.outcome) for r in store.releases()] == ["succeeded", "superseded"]


def test_a_short_sha_resolves_to_the_newest_matching_revision(
    store: records.RecordStore, clock: Clock
) -> None:
    store.record_revision(revision=SHA, definitions={})
    clock.advance(1)
    store.record_revision(revision="3f2a" + "0" * 36, definitions={})
    assert store.resolve_revision("3f2a9c") == SHA
    assert store.resolve_revision("3f2a") == "3f2a" + "0" * 36
    assert store.resolve_revision("3f2a%") is None, "LIKE wildcards must be taken literally"
    assert store.resolve_revision("ffff") is None


def test_a_run_is_open_until_finished_and_keeps_its_summary(
    store: records.RecordStore, clock: Clock
) -> None:
    run_id = store.start_run(revision=SHA, trigger="manual", requested_by="ada", dry_run=False)
    assert store.run(run_id).outcome is None and store.run(run_id).finished_at is None
    clock.advance(42)
    store.finish_run(run_id, outcome=model.Outcome.ROLLED_BACK, error=None,
                     summary={"updated": 2, "rolled back": 1})

    assert store.runs() == [records.Run(
        run_id=run_id, revision=SHA, trigger="manual", requested_by="ada", dry_run=False,
        started_at=iso(T0), finished_at=iso(T0 + 42), outcome="rolled back", error=None,
        summary='{"rolled back": 1, "updated": 2}')]
    with pytest.raises(KeyError):
        store.run(run_id + 1)


def test_runs_are_listed_newest_first_and_never_truncated(store: records.RecordStore) -> None:
    ids = [store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=i % 2 == 0)
           for i in range(300)]
    runs = store.runs()
    assert [r.run_id for r in runs] == list(reversed(ids))
    assert [r.dry_run for r in runs[:2]] == [False, True]
    assert [r.run_id for r in store.runs(limit=3)] == list(reversed(ids))[:3]


# -- changes and crash recovery --------------------------------------------------------------


def change(store: records.RecordStore, run_id: int, app_id: str = "/dirac/fts", *,
           deployment_id: str | None = "d-1", purpose: str = "change",
           revision: str = SHA, action: str = model.Action.UPDATE) -> int:
    return store.record_deployment(
        run_id=run_id, app_id=app_id, action=action, revision=revision,
        deployment_id=deployment_id, version="2026-11-25T06:00:00.000Z",
        previous_version="2026-11-24T06:00:00.000Z", purpose=purpose,
        patch=[{"op": "replace", "path": "/env/DIRAC_DB_PASSWORD", "value": "hunter2"},
               {"op": "replace", "path": "/container/docker/image",
                "value": "lhcbdirac:v8r2p44"}],
        deadline_seconds=600.0)


def test_a_change_is_recorded_with_its_patch_masked(store: records.RecordStore) -> None:
    run_id = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    change_id = change(store, run_id)

    [recorded] = store.changes(run_id=run_id)
    assert recorded.change_id == change_id
    assert recorded.patch == (
        {"op": "replace", "path": "/env/DIRAC_DB_PASSWORD", "value": "***"},
        {"op": "replace", "path": "/container/docker/image", "value": "lhcbdirac:v8r2p44"})
    assert (recorded.deployment_id, recorded.previous_version, recorded.outcome) == (
        "d-1", "2026-11-24T06:00:00.000Z", None)
    [entry] = store.history(app_id="/dirac/fts")
    assert isinstance(entry.record, records.Change)
    assert entry.record.patch[0]["value"] == "***"
    assert entry.as_json()["patch"][0]["value"] == "***"


def test_changes_waiting_on_a_deployment_survive_a_restart_until_they_have_an_outcome(
    store_url: str, clock: Clock, tmp_path: Path
) -> None:
    (tmp_path / "state").mkdir(exist_ok=True)
    before = records.RecordStore(store_url, clock=clock)
    run_id = before.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    waiting = change(before, run_id, "/dirac/fts", deployment_id="d-fts")
    change(before, run_id, "/dirac/web", deployment_id=None)  # Marathon never answered
    done = change(before, run_id, "/dirac/rms", deployment_id="d-rms")
    before.finish_change(done, outcome=model.Outcome.SUCCEEDED, reason=None)
    before.close()  # the controller dies here

    after = records.RecordStore(store_url, clock=clock)
    try:
        [pending] = after.pending_changes()
        assert pending == records.PendingChange(
            change_id=waiting, run_id=run_id, app_id="/dirac/fts", action="update",
            revision=SHA, deployment_id="d-fts", version="2026-11-25T06:00:00.000Z",
            previous_version="2026-11-24T06:00:00.000Z", purpose="change", started_at=T0,
            deadline_seconds=600.0)
        after.finish_change(waiting, outcome=model.Outcome.TIMED_OUT, reason="deadline missed")
        assert after.pending_changes() == []
        assert after.changes(app_id="/dirac/fts")[0].reason == "deadline missed"
    finally:
        after.close()


def test_the_last_applied_desired_state_comes_from_successful_changes_from_git(
    store: records.RecordStore, clock: Clock
) -> None:
    old = {"/dirac/fts": {"id": "/dirac/fts", "instances": 1},
           "/dirac/web": {"id": "/dirac/web", "instances": 1}}
    new = {"/dirac/fts": {"instances": 3, "id": "/dirac/fts"}}
    store.record_revision(revision=OTHER_SHA, definitions=old)
    store.record_revision(revision=SHA, definitions=new)
    first = store.start_run(revision=OTHER_SHA, trigger="poll", requested_by=None, dry_run=False)
    for app_id in old:
        store.finish_change(change(store, first, app_id, revision=OTHER_SHA),
                            outcome=model.Outcome.SUCCEEDED, reason=None)
    clock.advance(60)
    second = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    store.finish_change(change(store, second, "/dirac/fts"), outcome=model.Outcome.SUCCEEDED,
                        reason=None)
    store.finish_change(change(store, second, "/dirac/web", action=model.Action.DELETE),
                        outcome=model.Outcome.SUCCEEDED, reason=None)
    failed = change(store, second, "/dirac/fts", revision=OTHER_SHA)
    store.finish_change(failed, outcome=model.Outcome.FAILED, reason="unhealthy")
    rollback = change(store, second, "/dirac/fts", revision=OTHER_SHA, purpose="rollback")
    store.finish_change(rollback, outcome=model.Outcome.SUCCEEDED, reason=None)

    applied = store.last_applied()
    assert set(applied) == {"/dirac/fts"}, "a deleted app has no desired state any more"
    fts = applied["/dirac/fts"]
    assert (fts.revision, fts.definition, fts.applied_at) == (SHA, new["/dirac/fts"],
                                                              iso(T0 + 60))
    assert fts.digest == records.definition_digest({"id": "/dirac/fts", "instances": 3})
    assert fts.digest != records.definition_digest(old["/dirac/fts"])
    assert store.latest_revision_for(app_id="/dirac/fts") == SHA
    assert store.latest_revision_for(app_id="/dirac/nothing") is None



def test_the_last_applied_of_some_apps_and_one_string_per_revision_and_second(
    store: records.RecordStore, clock: Clock
) -> None:
    """The status board keeps what it reads for every app: 10,000 copies of one revision
    and of a few times held a megabyte and more after a release of every app."""
    first = {f"/dirac/a{i}": {"id": f"/dirac/a{i}", "instances": 1} for i in range(6)}
    second = {a: {**d, "instances": 2} for a, d in first.items()}
    store.record_revision(revision=OTHER_SHA, definitions=first)
    store.record_revision(revision=SHA, definitions=second)
    run = store.start_run(revision=OTHER_SHA, trigger="poll", requested_by=None, dry_run=False)
    for app_id in first:
        store.finish_change(change(store, run, app_id, revision=OTHER_SHA),
                            outcome=model.Outcome.SUCCEEDED, reason=None)
    clock.advance(60)
    run = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    for app_id in list(second)[:4]:
        store.finish_change(change(store, run, app_id), outcome=model.Outcome.SUCCEEDED,
                            reason=None)

    applied = store.last_applied()
    assert {a: x.revision for a, x in applied.items()} == {
        **{a: SHA for a in list(second)[:4]}, **{a: OTHER_SHA for a in list(first)[4:]}}
    assert {a: x.definition for a, x in applied.items()} == {
        **{a: second[a] for a in list(second)[:4]}, **{a: first[a] for a in list(first)[4:]}}
    assert len({id(x.revision) for x in applied.values()}) == 2
    assert len({id(x.applied_at) for x in applied.values()}) == 2

    some = store.last_applied(only={"/dirac/a0", "/dirac/a5", "/dirac/none"})
    assert {a: (x.revision, x.definition) for a, x in some.items()} == {
        "/dirac/a0": (SHA, second["/dirac/a0"]), "/dirac/a5": (OTHER_SHA, first["/dirac/a5"])}



@contextlib.contextmanager
def statements_sent(store: records.RecordStore, *, naming: str
                    ) -> Iterator[list[tuple[str, Any]]]:
    """The statements ``store`` sends while the block runs whose text names ``naming``,
    with their parameters (what a query costs is the point of some tests)."""
    engine = store._db.engine  # noqa: SLF001 - the statements it sends are the point
    sent: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if naming in statement:
            sent.append((statement, parameters))

    sa.event.listen(engine, "after_cursor_execute", seen)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "after_cursor_execute", seen)


def test_the_last_applied_reads_one_change_per_app_not_every_change_ever_made(
    store: records.RecordStore, clock: Clock
) -> None:
    """The status board asks every few seconds: after ten releases of 10,000 apps, a query of
    every successful change brought back 100,000 rows each time, for 10,000 kept."""
    definitions = {f"/dirac/a{i}": {"id": f"/dirac/a{i}", "instances": 1} for i in range(3)}
    for revision in (OTHER_SHA, SHA, OTHER_SHA, SHA):
        store.record_revision(revision=revision, definitions=definitions)
        run = store.start_run(revision=revision, trigger="poll", requested_by=None,
                              dry_run=False)
        for app_id in definitions:
            store.finish_change(change(store, run, app_id, revision=revision),
                                outcome=model.Outcome.SUCCEEDED, reason=None)
        clock.advance(60)
    with statements_sent(store, naming="changes") as sent:
        applied = store.last_applied()

    assert {a: x.revision for a, x in applied.items()} == {a: SHA for a in definitions}
    # What the database sent back, asked again: one row per app, not twelve.
    with store._db.engine.connect() as conn:  # noqa: SLF001 - asked again
        answered = [rows_of_query(conn.exec_driver_sql(statement, parameters).fetchall())
                    for statement, parameters in sent]
    assert answered and max(answered) == len(definitions)


def rows_of_query(answer: list[Any]) -> int:
    """How many rows a query answered: on SQLite a list is read as one JSON array of rows
    (``database.all_rows``)."""
    if len(answer) == 1 and isinstance(answer[0][0], str) and answer[0][0].startswith("[["):
        return len(json.loads(answer[0][0]))
    return len(answer)


def test_revisions_read_each_release_s_outcome_as_counts_and_the_board_reads_none(
    store: records.RecordStore, clock: Clock
) -> None:
    """The status board lists revisions every few seconds: every app of every release ever
    came back each time (100,000 rows after ten releases of 10,000 apps), to name who
    made a revision. Now the board reads no release at all, and the Revisions view gets a
    few rows per release (apps counted per outcome by the database)."""
    apps = [f"/dirac/a{i}" for i in range(6)]
    definitions = {a: {"id": a, "instances": 1} for a in apps}
    for revision, outcomes in ((OTHER_SHA, ["succeeded"] * 6),
                               (SHA, ["succeeded"] * 3 + ["rolled back"] * 3)):
        store.record_revision(revision=revision, definitions=definitions, author="Ana")
        store.open_release(revision=revision, trigger="poll", requested_by=None, run_id=None,
                           images={}, apps=[(a, "update") for a in apps])
        for app_id, outcome in zip(apps, outcomes, strict=True):
            store.finish_release_app(revision=revision, app_id=app_id, action="update",
                                     outcome=outcome, reason=None, run_id=None)
        clock.advance(60)
    with statements_sent(store, naming="release_apps") as sent:
        board_reads = store.seen_revisions()
        snapshot = readmodel.snapshot(store, [])  # what the status board reads, whole
        board_sent = list(sent)
        listed = store.revisions()

    assert [(r.revision, r.author) for r in board_reads] == [(SHA, "Ana"), (OTHER_SHA, "Ana")]
    assert snapshot.revision == SHA
    assert board_sent == []
    assert {r.revision: r.last_outcome for r in listed} == {
        SHA: "partially rolled back", OTHER_SHA: "succeeded"}
    # What the database sent back, asked again: a row per outcome of each release (3), not
    # one per app (12).
    with store._db.engine.connect() as conn:  # noqa: SLF001 - asked again
        answered = [rows_of_query(conn.exec_driver_sql(statement, parameters).fetchall())
                    for statement, parameters in sent]
    assert answered and max(answered) == 3


def test_a_release_of_many_apps_is_opened_with_a_few_statements_not_two_per_app(
    store: records.RecordStore, clock: Clock
) -> None:
    """A release of 10,000 apps was opened with a SELECT and an INSERT per app (20,000
    statements, seconds of the interpreter while the pages waited)."""
    apps = [f"/dirac/a{i}" for i in range(200)]
    store.record_revision(revision=SHA, definitions={a: {"id": a} for a in apps})
    with statements_sent(store, naming="release_apps") as sent:
        store.open_release(revision=SHA, trigger="poll", requested_by=None, run_id=None,
                           images={}, apps=[(a, "update") for a in apps[:150]])
        clock.advance(5)
        # Again, with some apps already there (a run after a crash reopens it).
        store.open_release(revision=SHA, trigger="poll", requested_by=None, run_id=7,
                           images={}, apps=[(a, "update") for a in apps[100:]])

    assert len(sent) <= 10, sent
    release = store.release(SHA)
    assert release is not None
    by_id = {a.app_id: a for a in release.apps}
    assert sorted(by_id) == sorted(apps)
    assert {by_id[a].run_id for a in apps[:100]} == {None}
    assert {by_id[a].run_id for a in apps[100:]} == {7}
    assert by_id[apps[120]].started_at == iso(T0 + 5)
    assert {a.outcome for a in release.apps} == {None}


def test_a_revision_no_app_was_last_applied_from_is_not_kept_in_memory(
    store: records.RecordStore,
) -> None:
    """Recorded definitions are served from memory (the same objects) while wanted; once a
    release of every app is over, the revision before it is read again from the table if
    asked for: 10,000 definitions were kept for nothing after such a release."""
    before = {"/dirac/a": {"id": "/dirac/a", "instances": 1}}
    after = {"/dirac/a": {"id": "/dirac/a", "instances": 2}}
    store.record_revision(revision=OTHER_SHA, definitions=before)
    run = store.start_run(revision=OTHER_SHA, trigger="poll", requested_by=None, dry_run=False)
    store.finish_change(change(store, run, "/dirac/a", revision=OTHER_SHA),
                        outcome=model.Outcome.SUCCEEDED, reason=None)
    store.record_revision(revision=SHA, definitions=after)
    assert store.last_applied()["/dirac/a"].definition is before["/dirac/a"]  # still applied

    run = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    store.finish_change(change(store, run, "/dirac/a"), outcome=model.Outcome.SUCCEEDED,
                        reason=None)
    assert store.last_applied()["/dirac/a"].definition is after["/dirac/a"]
    assert store.desired_definitions(SHA)["/dirac/a"] is after["/dirac/a"]
    again = store.desired_definitions(OTHER_SHA)["/dirac/a"]
    assert again == before["/dirac/a"] and again is not before["/dirac/a"]


# -- rollbacks and quarantines ---------------------------------------------------------------


def test_rollbacks_keep_why_and_where_the_deployment_was_stuck(
    store: records.RecordStore, clock: Clock
) -> None:
    run_id = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    first = store.record_rollback(
        run_id=run_id, app_id="/dirac/fts", from_version="v2", to_version="v1",
        reason="deadline missed", failure="Container exited with status 1",
        stuck_step="RestartApplication (step 1 of 1)", method="cancel deployment",
        outcome=model.Outcome.SUCCEEDED, requested_by=None)
    clock.advance(5)
    second = store.record_rollback(
        run_id=None, app_id="/dirac/web", from_version="v9", to_version="v8",
        reason="manual", failure=None, stuck_step=None, method="redeploy version",
        outcome=model.Outcome.SUCCEEDED, requested_by="ada")

    assert [r.rollback_id for r in store.rollbacks()] == [second, first]
    [fts] = store.rollbacks(app_id="/dirac/fts")
    assert fts == records.Rollback(
        rollback_id=first, run_id=run_id, app_id="/dirac/fts", from_version="v2",
        to_version="v1", reason="deadline missed", failure="Container exited with status 1",
        stuck_step="RestartApplication (step 1 of 1)", method="cancel deployment",
        outcome="succeeded", requested_by=None, at=iso(T0))


def test_a_quarantine_holds_a_revision_for_one_app_until_lifted(
    store: records.RecordStore, clock: Clock
) -> None:
    store.quarantine(app_id="/dirac/fts", revision=SHA, reason="rolled back: unhealthy")
    store.quarantine(app_id="/dirac/fts", revision=SHA, reason="again")
    store.quarantine(app_id="/dirac/fts", revision=OTHER_SHA, reason="older")
    assert store.is_quarantined(app_id="/dirac/fts", revision=SHA)
    assert not store.is_quarantined(app_id="/dirac/web", revision=SHA)
    assert store.quarantined_apps(revision=SHA) == {"/dirac/fts"}
    store.quarantine(app_id="/dirac/web", revision=SHA, reason="rolled back: unhealthy")
    assert len(store.active_quarantines()) == 3
    assert [q.app_id for q in store.active_quarantines(app_id="/dirac/web")] == ["/dirac/web"]
    store.lift_quarantine(app_id="/dirac/web")

    clock.advance(30)
    assert store.lift_quarantine(app_id="/dirac/fts", revision=SHA, lifted_by="ada") == 1
    assert not store.is_quarantined(app_id="/dirac/fts", revision=SHA)
    assert store.quarantined_apps(revision=SHA) == set()
    assert store.quarantined_apps(revision=OTHER_SHA) == {"/dirac/fts"}
    [left] = store.active_quarantines()
    assert (left.revision, left.reason, left.at) == (OTHER_SHA, "older", iso(T0))
    assert store.lift_quarantine(app_id="/dirac/fts", lifted_by="bob") == 1
    assert store.active_quarantines() == []
    assert store.lift_quarantine(app_id="/dirac/fts", lifted_by="bob") == 0

    store.quarantine(app_id="/dirac/fts", revision=SHA, reason="failed once more")
    assert store.is_quarantined(app_id="/dirac/fts", revision=SHA)
    lifted = [e.record for e in store.history(app_id="/dirac/fts")
              if isinstance(e.record, records.Quarantine) and e.record.lifted_by]
    assert {(q.revision, q.lifted_by, q.lifted_at) for q in lifted} == {
        (SHA, "ada", iso(T0 + 30)), (OTHER_SHA, "bob", iso(T0 + 30))}


# -- drift -----------------------------------------------------------------------------------

DRIFT_PATCH: list[dict[str, Any]] = [{"op": "replace", "path": "/instances", "value": 5},
               {"op": "add", "path": "/env/API_TOKEN", "value": "t0ken"}]


def test_drift_opens_once_then_updates_and_carries_its_attribution(
    store: records.RecordStore, clock: Clock
) -> None:
    drift, created = store.observe_drift(app_id="/dirac/fts", kind="config", patch=DRIFT_PATCH,
                                         fingerprint="f1", policy="correct",
                                         live_version="2026-11-25T06:00:00.000Z")
    assert created and drift.status == "open"
    assert drift.patch[1] == {"op": "add", "path": "/env/API_TOKEN", "value": "***"}
    clock.advance(15)
    store.attribute_drift(app_id="/dirac/fts", client_ip="10.0.0.7",
                          uri="/v2/apps/dirac/fts", at="2026-11-25T06:00:01.000Z")
    again, created = store.observe_drift(app_id="/dirac/fts", kind="scale",
                                         patch=DRIFT_PATCH[:1], fingerprint="f2",
                                         policy="correct")

    assert not created and again.drift_id == drift.drift_id
    assert (again.kind, again.first_seen_at, again.last_seen_at) == ("scale", iso(T0),
                                                                     iso(T0 + 15))
    assert (again.client_ip, again.uri, again.attributed_at) == (
        "10.0.0.7", "/v2/apps/dirac/fts", "2026-11-25T06:00:01.000Z")


def test_a_page_of_drift_and_its_counts_are_read_in_one_statement(
    store: records.RecordStore, clock: Clock
) -> None:
    """The Drift page counts every matching record beside the first ones: read apart, a
    drift recorded in between (mid-incident) made the counts differ from the list."""
    for n in range(6):
        store.observe_drift(app_id=f"/dirac/g{n % 2}/a{n}", kind="scale",
                            patch=DRIFT_PATCH[:1], fingerprint=f"f{n}", policy="report")
        clock.advance(1)
    for n in (0, 3):
        store.resolve_drift(app_id=f"/dirac/g{n % 2}/a{n}", action="corrected")
    with statements_sent(store, naming="drifts") as sent:
        listed, counts = store.counted_drifts(limit=3)
    narrowed = store.counted_drifts(limit=3, prefix="/dirac/g1")
    nothing = store.counted_drifts(limit=3, prefix="/dirac/g7")
    one = store.counted_drifts(limit=1, open_only=True, since=T0 + 4)

    # The list and its counts in one statement; the times corrected in another.
    of_drifts = [text for text, _ in sent if "drift_corrections" not in text]
    assert len(of_drifts) == 1 and "count(" in of_drifts[0].lower()
    assert counts == (4, 2)
    assert [d.app_id for d in listed] == ["/dirac/g1/a5", "/dirac/g0/a4", "/dirac/g0/a2"]
    assert ([d.app_id for d in narrowed[0]], narrowed[1]) == (
        ["/dirac/g1/a5", "/dirac/g1/a1", "/dirac/g1/a3"], (2, 1))
    assert nothing == ([], (0, 0))
    assert ([d.app_id for d in one[0]], one[1]) == (["/dirac/g1/a5"], (2, 0))
    assert listed == store.drifts(limit=3)
    with pytest.raises(ValueError, match="limit of 0"):
        store.counted_drifts(limit=0)


def test_every_drift_record_comes_with_its_corrections_whatever_their_number(
    store: records.RecordStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The corrections of a list of drift records are asked a few thousand ids at a time:
    SQLite takes 32,766 parameters a statement, and ``reconciler drift`` lists every record
    (three at a time here, to see the lists joined)."""
    monkeypatch.setattr(records_drift, "_IDS_ASKED", 3)
    for n in range(7):
        drift, _ = store.observe_drift(app_id=f"/dirac/a{n}", kind="scale",
                                       patch=DRIFT_PATCH[:1], fingerprint="f", policy="correct")
        for _ in range(n % 3):
            store.set_drift_action(drift.drift_id, action="corrected", count_correction=True)
        clock.advance(1)

    found = store.drifts()
    assert {d.app_id: d.corrections for d in found} == {f"/dirac/a{n}": n % 3 for n in range(7)}
    assert {d.app_id: len(d.corrected_at) for d in found} == {
        f"/dirac/a{n}": n % 3 for n in range(7)}


def test_corrections_are_counted_in_a_window_for_flapping_detection(
    store: records.RecordStore, clock: Clock
) -> None:
    drift, _ = store.observe_drift(app_id="/dirac/fts", kind="scale", patch=DRIFT_PATCH[:1],
                                   fingerprint="f", policy="correct")
    for _ in range(3):
        store.set_drift_action(drift.drift_id, action="corrected", count_correction=True)
        clock.advance(100)
    resolved = store.resolve_drift(app_id="/dirac/fts", action="corrected")
    assert [d.status for d in resolved] == ["resolved"]
    store.observe_drift(app_id="/dirac/fts", kind="scale", patch=DRIFT_PATCH[:1],
                        fingerprint="f", policy="correct")
    flapping = store.set_drift_action(
        store.drifts(open_only=True)[0].drift_id, action="flapping-stopped", status="flapping",
        count_correction=True)

    assert flapping.corrections == 1 and flapping.corrected_at == (iso(T0 + 300),)
    first = store.drift(drift.drift_id)
    assert first.corrections == 3
    assert first.corrected_at == (iso(T0), iso(T0 + 100), iso(T0 + 200))
    assert first.resolved_at == iso(T0 + 300)
    assert store.recent_corrections(app_id="/dirac/fts", since=T0 + 150) == 2
    assert store.recent_corrections(
        app_id="/dirac/fts", since=dt.datetime.fromtimestamp(T0, dt.UTC)) == 4
    assert store.recent_corrections(app_id="/dirac/web", since=T0) == 0


def test_drift_queries_filter_by_state_time_and_group(
    store: records.RecordStore, clock: Clock
) -> None:
    for app_id in ("/dirac/fts", "/diracx/api", "/dirac"):
        store.observe_drift(app_id=app_id, kind="config", patch=DRIFT_PATCH, fingerprint="f",
                            policy="report")
        clock.advance(10)
    store.resolve_drift(app_id="/dirac", action="corrected")
    ack = store.acknowledge_drift(store.drifts(app_id="/diracx/api")[0].drift_id, by="oncall")
    assert (ack.acknowledged_by, ack.action, ack.status) == ("oncall", "acknowledged", "open")

    assert [d.app_id for d in store.drifts()] == ["/diracx/api", "/dirac/fts", "/dirac"]
    assert [d.app_id for d in store.drifts(open_only=True)] == ["/diracx/api", "/dirac/fts"]
    assert [d.app_id for d in store.drifts(prefix="/dirac")] == ["/dirac/fts", "/dirac"]
    assert [d.app_id for d in store.drifts(prefix="/")] == ["/diracx/api", "/dirac/fts",
                                                            "/dirac"]
    assert [d.app_id for d in store.drifts(since=T0 + 10)] == ["/diracx/api", "/dirac"]


# -- audit, notifications, history -----------------------------------------------------------


def test_audit_and_notifications(store: records.RecordStore, clock: Clock) -> None:
    store.audit(who="ada", action="sync", target="/dirac", result="accepted")
    clock.advance(1)
    store.audit(who="bob", action="lift-quarantine", target="/dirac/fts", result="lifted 1")
    assert [(a.who, a.at) for a in store.audit_log()] == [("bob", iso(T0 + 1)),
                                                          ("ada", iso(T0))]
    key = f"rollback:/dirac/fts:{SHA}"
    assert store.claim_notification(key)
    assert not store.claim_notification(key)
    assert store.claim_notification(f"recovered:/dirac/fts:{SHA}")


def test_history_is_in_time_order_across_kinds_and_filters_by_app_and_time(
    store: records.RecordStore, clock: Clock
) -> None:
    run_id = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    change(store, run_id, "/dirac/fts")
    clock.advance(10)
    store.record_rollback(run_id=run_id, app_id="/dirac/fts", from_version="v2",
                          to_version="v1", reason="deployment failed", failure=None,
                          stuck_step=None, method="cancel", outcome="succeeded",
                          requested_by=None)
    clock.advance(10)
    store.quarantine(app_id="/dirac/fts", revision=SHA, reason="rolled back")
    change(store, run_id, "/dirac/web")

    assert [(e.kind, e.app_id, e.at) for e in store.history()] == [
        ("run", None, iso(T0)), ("change", "/dirac/fts", iso(T0)),
        ("rollback", "/dirac/fts", iso(T0 + 10)), ("change", "/dirac/web", iso(T0 + 20)),
        ("quarantine", "/dirac/fts", iso(T0 + 20))]
    assert [e.kind for e in store.history(app_id="/dirac/fts")] == [
        "change", "rollback", "quarantine"]
    since = dt.datetime.fromtimestamp(T0 + 10, dt.UTC)
    assert [e.kind for e in store.history(since=since)] == ["rollback", "change",
                                                            "quarantine"]
    with pytest.raises(ValueError, match="time zone"):
        store.history(since=dt.datetime(2026, 1, 1))


def test_history_entries_publish_every_field_of_their_record_with_kind_and_time(
    store: records.RecordStore, clock: Clock
) -> None:
    """The shape of ``reconciler history --output json`` and ``/api/v1/history``."""
    run_id = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    change_id = change(store, run_id, "/dirac/fts")
    clock.advance(10)
    store.finish_change(change_id, outcome="failed", reason="unhealthy")
    store.record_rollback(run_id=run_id, app_id="/dirac/fts", from_version="v2",
                          to_version="v1", reason="deployment failed", failure=None,
                          stuck_step=None, method="cancel", outcome="succeeded",
                          requested_by=None)
    store.quarantine(app_id="/dirac/fts", revision=SHA, reason="rolled back")

    run, changed, rollback, quarantine = (e.as_json() for e in store.history())
    assert list(run.items()) == [
        ("kind", "run"), ("run_id", run_id), ("revision", SHA), ("trigger", "poll"),
        ("requested_by", None), ("dry_run", False), ("started_at", iso(T0)),
        ("finished_at", None), ("outcome", None), ("error", None), ("summary", None),
        ("term", None), ("at", iso(T0))]
    assert list(changed.items()) == [
        ("kind", "change"), ("change_id", change_id), ("run_id", run_id),
        ("app_id", "/dirac/fts"), ("action", "update"), ("revision", SHA),
        ("purpose", "change"),
        ("patch", [{"op": "replace", "path": "/env/DIRAC_DB_PASSWORD", "value": "***"},
                   {"op": "replace", "path": "/container/docker/image",
                    "value": "lhcbdirac:v8r2p44"}]),
        ("deployment_id", "d-1"), ("version", "2026-11-25T06:00:00.000Z"),
        ("previous_version", "2026-11-24T06:00:00.000Z"), ("deadline_seconds", 600.0),
        ("started_at", iso(T0)), ("finished_at", iso(T0 + 10)), ("outcome", "failed"),
        ("reason", "unhealthy"), ("term", None), ("at", iso(T0))]
    assert list(rollback) == ["kind", "rollback_id", "run_id", "app_id", "from_version",
                              "to_version", "reason", "failure", "stuck_step", "method",
                              "outcome", "requested_by", "at", "term"]
    assert (rollback["kind"], rollback["at"], rollback["method"]) == (
        "rollback", iso(T0 + 10), "cancel")
    assert list(quarantine) == ["kind", "quarantine_id", "app_id", "revision", "reason", "at",
                                "lifted_at", "lifted_by", "term"]
    assert (quarantine["kind"], quarantine["at"], quarantine["lifted_at"]) == (
        "quarantine", iso(T0 + 10), None)


# -- concurrency, durability, schema ---------------------------------------------------------


def test_a_controller_thread_and_web_threads_share_the_store(
    store: records.RecordStore,
) -> None:
    errors: list[BaseException] = []
    reads: list[int] = []

    def controller(name: str) -> None:
        try:
            for i in range(40):
                run_id = store.start_run(revision=SHA, trigger="poll", requested_by=name,
                                         dry_run=False)
                change_id = change(store, run_id, f"/{name}/{i}")
                store.finish_change(change_id, outcome="succeeded", reason=None)
                store.finish_run(run_id, outcome="succeeded", error=None, summary=None)
                store.claim_notification(f"{name}-{i % 5}")
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    def web() -> None:
        try:
            for _ in range(40):
                reads.append(len(store.history()))
                store.pending_changes()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=controller, args=(n,)) for n in ("a", "b")]
    threads += [threading.Thread(target=web) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    runs = store.runs()
    assert len(runs) == 80 and len({r.run_id for r in runs}) == 80
    assert all(r.outcome == "succeeded" for r in runs)
    assert len(store.changes()) == 80 and store.pending_changes() == []
    assert len(reads) == 80


def test_two_stores_on_one_sqlite_file_write_concurrently(tmp_path: Path) -> None:
    """The controller and a CLI command (another process in real life) write the same file."""
    url = f"sqlite:///{tmp_path / 'reconciler.db'}"
    stores = [records.RecordStore(url), records.RecordStore(url)]
    errors: list[BaseException] = []

    def write(store: records.RecordStore, who: str) -> None:
        try:
            for i in range(50):
                store.audit(who=who, action="sync", target=str(i), result=None)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=write, args=(s, w))
               for s, w in zip(stores, "ab", strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        assert len(stores[0].audit_log()) == 100
    finally:
        for store in stores:
            store.close()


def test_the_sqlite_store_lives_in_the_state_dir_in_wal_mode_and_survives_reopening(
    tmp_path: Path, clock: Clock
) -> None:
    state = tmp_path / "state" / "nested"
    store = records.open_store(state, clock=clock)
    run_id = store.start_run(revision=SHA, trigger="cli", requested_by="ada", dry_run=False)
    store.quarantine(app_id="/dirac/fts", revision=SHA, reason="x")
    store.close()

    with sqlite3.connect(state / "reconciler.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reopened = records.open_store(state, clock=clock)
    try:
        assert [r.run_id for r in reopened.runs()] == [run_id]
        assert reopened.is_quarantined(app_id="/dirac/fts", revision=SHA)
        assert reopened.schema_version() == migrate.head()
    finally:
        reopened.close()


def test_an_unreachable_database_is_store_unavailable_without_its_password(
    tmp_path: Path,
) -> None:
    from reconciler.shell.ports import free_port

    url = f"postgresql+psycopg://reconciler:s3cr3t@127.0.0.1:{free_port()}/records"
    with pytest.raises(records.StoreUnavailable) as caught:
        records.RecordStore(url)
    assert "s3cr3t" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(records.StoreUnavailable, match="cannot open"):
        records.RecordStore(f"sqlite:///{blocked / 'reconciler.db'}")


def test_rows_carry_the_leadership_term_of_the_replica_that_wrote_them(
    store: records.RecordStore,
) -> None:
    """A replica alone writes no term; a leader stamps each row it inserts with its own."""
    alone = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    store.set_term(7)
    led = store.start_run(revision=SHA, trigger="poll", requested_by=None, dry_run=False)
    change_id = change(store, led, "/dirac/fts")
    store.set_term(8)
    store.finish_change(change_id, outcome="succeeded", reason=None)  # an update keeps it
    terms = {r.run_id: r.term for r in store.runs()}
    assert (terms[alone], terms[led]) == (None, 7)
    assert [c.term for c in store.changes(run_id=led)] == [7]


def test_history_pages_of_any_size_put_together_are_the_whole_history(
    store: records.RecordStore, clock: Clock
) -> None:
    """A page ends where the next one starts, also among entries of the same time."""
    for n in range(3):  # the run, its changes, a rollback and a quarantine at one time
        run_id = store.start_run(revision=SHA, trigger="poll", requested_by=None,
                                 dry_run=False)
        change(store, run_id, "/dirac/fts")
        change(store, run_id, "/dirac/web")
        store.record_rollback(run_id=run_id, app_id="/dirac/fts", from_version="v2",
                              to_version="v1", reason="deployment failed", failure=None,
                              stuck_step=None, method="cancel", outcome="succeeded",
                              requested_by=None)
        store.quarantine(app_id="/dirac/web", revision=f"{n}" * 40, reason="rolled back")
        clock.advance(10)
    whole = store.history()

    for size in (1, 2, 4, 100):
        pages: list[list[records.HistoryEntry]] = []
        before = None
        while page := store.history(limit=size, before=before):
            pages.insert(0, page)
            before = page[0].key
        assert [e.record for p in pages for e in p] == [e.record for e in whole], size
    assert len(whole) == 15
    assert [e.kind for e in store.history(app_id="/dirac/fts", limit=2)] == [
        "change", "rollback"]


def test_drift_lists_go_open_first_then_newest_seen_and_pages_go_by_id(
    store: records.RecordStore, clock: Clock
) -> None:
    for n in range(7):
        store.observe_drift(app_id=f"/dirac/a{n}", kind="scale", fingerprint=f"f{n}",
                            policy="report", patch=[{"op": "replace", "path": "/instances",
                                                     "value": n}])
        if n % 2:
            clock.advance(1)  # two at a time share a time
    store.resolve_drift(app_id="/dirac/a6", action="corrected")
    clock.advance(1)
    store.observe_drift(app_id="/dirac/a0", kind="scale", fingerprint="f0", policy="report",
                        patch=[{"op": "replace", "path": "/instances", "value": 9}])
    whole = store.drifts()

    assert [d.app_id for d in whole] == [
        "/dirac/a0", "/dirac/a5", "/dirac/a4", "/dirac/a3", "/dirac/a2", "/dirac/a1",
        "/dirac/a6"]
    assert [d.app_id for d in store.drifts(open_only=True, limit=3)] == [
        "/dirac/a0", "/dirac/a5", "/dirac/a4"]
    assert store.drifts(limit=2) == whole[:2]
    for size in (1, 2, 3, 10):
        pages: list[list[records.Drift]] = []
        before = None
        while True:
            page, before = store.drift_page(limit=size, before=before)
            pages.append(page)
            if before is None:
                break
            # Seen again between two pages: a page by the time seen would skip it.
            clock.advance(1)
            store.observe_drift(app_id="/dirac/a1", kind="scale", fingerprint="f1",
                                policy="report", patch=[])
        assert [d.drift_id for p in pages for d in p] == sorted(
            (d.drift_id for d in whole), reverse=True), size
    assert store.counted_drifts(limit=2) == (store.drifts(limit=2), (6, 1))
    assert store.counted_drifts(limit=1, open_only=True)[1] == (6, 0)
    assert store.counted_drifts(limit=1, prefix="/dirac/a6") == (
        store.drifts(prefix="/dirac/a6"), (0, 1))
    with pytest.raises(LookupError, match="no drift 999"):
        store.drift(999)


def test_the_drift_check_asks_which_apps_have_a_drift_open(
    store: records.RecordStore, clock: Clock
) -> None:
    for app_id in ("/dirac/fts", "/dirac/web", "/dirac/portal"):
        store.observe_drift(app_id=app_id, kind="scale", fingerprint="f", policy="report",
                            patch=[])
    store.resolve_drift(app_id="/dirac/web", action="corrected")
    clock.advance(1)
    store.observe_drift(app_id="/dirac/web", kind="scale", fingerprint="f", policy="report",
                        patch=[])
    store.resolve_drift(app_id="/dirac/portal", action="corrected")

    assert store.open_drift_apps() == {"/dirac/fts", "/dirac/web"}
