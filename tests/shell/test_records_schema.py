"""The record store's schema: Alembic migrations, adopting databases from before Alembic, and
opening a new database from several processes at once; on SQLite and a real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import alembic.autogenerate
import alembic.migration
import pytest
import sqlalchemy as sa

from reconciler.shell import records
from reconciler.shell.records import migrate, schema
from tests.shell import legacy_records

T0, SHA = legacy_records.T0, legacy_records.SHA


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    """A plain connection to the store's database, to look at it as the store does not."""
    engine = sa.create_engine(store_url)
    try:
        yield engine
    finally:
        engine.dispose()


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def schema_differences(engine: sa.Engine) -> list[object]:
    """What Alembic's autogenerate would change to make the database match :mod:`schema`."""
    with engine.connect() as conn:
        context = alembic.migration.MigrationContext.configure(conn)
        differences: list[object] = alembic.autogenerate.compare_metadata(
            context, schema.metadata)
    return differences


def iso(seconds: float) -> str:
    return records.iso(seconds)


def test_a_new_database_gets_the_schema_of_the_newest_migration(
    store_url: str, engine: sa.Engine
) -> None:
    store = records.RecordStore(store_url)
    try:
        assert store.schema_version() == migrate.head() == "0005"
    finally:
        store.close()
    assert tables(engine) == set(schema.metadata.tables) | {"alembic_version"}
    assert schema_differences(engine) == [], "schema.py and the migrations disagree"


def test_schema_differences_would_be_seen(store_url: str, engine: sa.Engine) -> None:
    """The comparison above can fail: a column the migrations do not create is reported."""
    records.RecordStore(store_url).close()
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit ADD COLUMN extra TEXT"))
    assert [d[0] for d in schema_differences(engine)] == ["remove_column"]  # type: ignore[index]


@pytest.mark.parametrize("version", [1, 2])
def test_a_database_from_before_alembic_is_adopted_with_every_row(
    store_url: str, engine: sa.Engine, version: int
) -> None:
    legacy_records.create(store_url, version=version)

    store = records.RecordStore(store_url, clock=lambda: T0 + 100)
    try:
        assert store.schema_version() == migrate.head()
        [revision] = store.revisions()
        assert (revision.revision, revision.author, revision.apps, revision.last_outcome) == (
            SHA, "Ada <ada@cern.ch>", 1, "rolled back")
        assert (revision.source, revision.ref) == (
            ("https://gitlab.cern.ch/lhcb/config.git", "main") if version == 2 else
            (None, None))
        assert store.desired_definition(revision=SHA, app_id="/dirac/fts") == {
            "id": "/dirac/fts", "instances": 2}
        assert store.runs() == [records.Run(
            run_id=1, revision=SHA, trigger="poll", requested_by=None, dry_run=False,
            started_at=iso(T0), finished_at=iso(T0 + 5), outcome="rolled back", error=None,
            summary='{"rolled back": 1}')]
        [change] = store.changes()
        assert (change.app_id, change.patch, change.outcome, change.reason) == (
            "/dirac/fts", ({"op": "replace", "path": "/instances", "value": 2},), "failed",
            "unhealthy")
        [rollback] = store.rollbacks()
        assert (rollback.failure, rollback.method, rollback.at) == (
            "exit 1", "cancel deployment", iso(T0 + 4))
        assert store.is_quarantined(app_id="/dirac/fts", revision=SHA)
        [drift] = store.drifts()
        assert (drift.app_id, drift.client_ip, drift.corrections, drift.corrected_at) == (
            "/dirac/web", "10.0.0.7", 1, (iso(T0 + 7),) if version == 2 else ())
        assert [(a.who, a.at) for a in store.audit_log()] == [("ada", iso(T0 + 8))]
        assert not store.claim_notification(f"rollback:/dirac/fts:{SHA}")
        assert [e.kind for e in store.history()] == ["run", "change", "rollback",
                                                     "quarantine"]

        # And it goes on: new rows get new keys, the new columns and table work.
        assert store.start_run(revision=SHA, trigger="cli", requested_by="ada",
                               dry_run=False) == 2
        store.record_revision(revision="b" * 40, definitions={}, source="repo", ref="main")
        corrected = store.set_drift_action(drift.drift_id, action="corrected",
                                           count_correction=True)
        assert corrected.corrections == 2 and corrected.corrected_at[-1] == iso(T0 + 100)
    finally:
        store.close()
    assert "schema_version" not in tables(engine)
    assert schema_differences(engine) == [], "an adopted database equals a new one"

    reopened = records.RecordStore(store_url)
    try:
        assert len(reopened.runs()) == 2
    finally:
        reopened.close()


def test_a_database_of_a_newer_reconciler_from_before_alembic_is_refused_untouched(
    store_url: str, engine: sa.Engine
) -> None:
    legacy_records.create(store_url, version=99)
    with pytest.raises(records.StoreUnavailable, match="schema version 99") as caught:
        records.RecordStore(store_url)
    assert "upgrade reconciler" in str(caught.value)
    assert "alembic_version" not in tables(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version FROM schema_version")).scalar_one() == 99


def test_a_database_at_a_revision_this_reconciler_does_not_know_is_refused(
    store_url: str, engine: sa.Engine
) -> None:
    records.RecordStore(store_url).close()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(records.StoreUnavailable, match="schema version ffff, unknown to this "
                                                        "reconciler .*: upgrade reconciler"):
        records.RecordStore(store_url)


def test_a_damaged_database_from_before_alembic_is_refused_and_left_as_it_was(
    store_url: str, engine: sa.Engine
) -> None:
    """Version 1 without its audit table: the adoption stops, and its first steps (two
    columns, a table) are rolled back with it."""
    damaged = legacy_records.VERSION_1.split("CREATE TABLE audit")[0] + (
        "CREATE TABLE notifications" + legacy_records.VERSION_1.split(
            "CREATE TABLE notifications")[1])
    legacy_records.create(store_url, version=1, ddl=damaged, rows=False)
    before = tables(engine)

    with pytest.raises(records.StoreUnavailable, match="lacks the tables audit"):
        records.RecordStore(store_url)
    assert tables(engine) == before
    columns = {c["name"] for c in sa.inspect(engine).get_columns("revisions")}
    assert "source" not in columns


# -- opening new databases at once -------------------------------------------------------

OPENER = """
import pathlib, sys, time
from reconciler.shell import records
go = pathlib.Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
records.RecordStore(sys.argv[1]).close()
"""


def open_from_processes(url: str, *, processes: int, go: Path) -> list[str]:
    """Open the store at ``url`` from new processes released together; their errors."""
    openers = [subprocess.Popen([sys.executable, "-c", OPENER, url, str(go)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(processes)]
    try:
        for opener in openers:
            assert opener.stdout is not None and opener.stdout.readline() == "ready\n"
        go.touch()
        ended = [(opener.wait(timeout=60), opener.communicate()[1]) for opener in openers]
    finally:
        go.unlink(missing_ok=True)
        for opener in openers:
            if opener.poll() is None:
                opener.kill()
    return [error for code, error in ended if code != 0]


def test_processes_opening_a_new_database_at_once_create_its_tables_once(
    store_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    """The controller and a CLI command (or two replicas) starting on a new database."""
    for _ in range(2):
        assert open_from_processes(store_url, processes=3, go=tmp_path / "go") == []
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
                (migrate.head(),)]
        assert schema_differences(engine) == []
        with engine.begin() as conn:  # new again, for the next round
            for table in reversed(schema.metadata.sorted_tables):
                conn.execute(sa.text(f"DROP TABLE {table.name}"))
            conn.execute(sa.text("DROP TABLE alembic_version"))


def test_threads_opening_different_new_databases_at_once_each_get_their_own_tables(
    tmp_path: Path,
) -> None:
    """Alembic's state is global to the process: two migrations at once must not mix."""
    urls = [f"sqlite:///{tmp_path / f'{name}.db'}" for name in "abcd"]
    start = threading.Barrier(len(urls))
    errors: list[BaseException] = []

    def open_store(url: str) -> None:
        try:
            start.wait(timeout=30)
            records.RecordStore(url).close()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=open_store, args=(url,)) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    for url in urls:
        engine = sa.create_engine(url)
        try:
            assert schema_differences(engine) == []
        finally:
            engine.dispose()
