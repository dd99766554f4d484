"""Lists read from the records come back from SQLite in one step of its driver.

Python's ``sqlite3`` gives the interpreter up at every row it steps to and waits to get it
back while other threads compute (a release's): the History page's 400 rows waited 400
times. ``database.all_rows`` reads a list as one JSON array; these tests hold it to the
rows, types and order the plain query gives, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.shell import records
from reconciler.shell.records import database, schema
from tests.shell import driver_rows

T0 = 1_790_000_000.123456  # microseconds: SQLite's JSON would keep 15 digits of it
SHA = "3f2a9c0d1b7e4f60a8c5d2e1f0b9a8c7d6e5f4a3"


@pytest.fixture
def store(store_url: str) -> Iterator[records.RecordStore]:
    times = iter(T0 + n * 0.000001 for n in range(10_000))
    store = records.RecordStore(store_url, clock=lambda: next(times))
    try:
        yield store
    finally:
        store.close()


def plain(store: records.RecordStore, query: sa.Select[Any]) -> list[dict[str, Any]]:
    with store._db.begin() as conn:  # noqa: SLF001 - the query the helper replaces
        return [dict(r) for r in conn.execute(query).mappings()]


def listed(store: records.RecordStore, query: sa.Select[Any],
           order_by: list[sa.ColumnElement[Any]]) -> list[dict[str, Any]]:
    with store._db.begin() as conn:  # noqa: SLF001 - the helper itself
        return [dict(r) for r in database.all_rows(conn, query, order_by=order_by)]


def test_a_list_has_the_rows_types_and_order_of_the_plain_query(
        store: records.RecordStore) -> None:
    for n in range(30):
        run = store.start_run(revision=SHA, trigger="poll" if n % 3 else "webhook",
                              requested_by=None if n % 2 else "ada", dry_run=n % 4 == 0)
        if n % 5:
            store.finish_run(run, outcome="succeeded", error=None, summary={"n": n})
    store.record_revision(revision=SHA, definitions={}, author="Ada <ada@cern.ch>")
    runs, revisions = schema.runs, schema.revisions

    cases: list[tuple[sa.Select[Any], list[sa.ColumnElement[Any]]]] = [
        (sa.select(runs), [runs.c.run_id.desc()]),
        (sa.select(runs).limit(7), [runs.c.trigger, runs.c.run_id.desc()]),
        (sa.select(runs.c.run_id, runs.c.finished_at).where(runs.c.dry_run.is_(True)),
         [runs.c.run_id]),
        (sa.select(runs).where(runs.c.run_id < 0), [runs.c.run_id]),
        (sa.select(runs.c.run_id, revisions.c.author, revisions.c.first_seen_at)
         .join(revisions, revisions.c.revision == runs.c.revision).limit(5),
         [runs.c.started_at.desc(), runs.c.run_id]),
        (sa.select(runs.c.trigger, sa.func.count().label("runs")).group_by(runs.c.trigger),
         [runs.c.trigger]),
    ]
    for query, order_by in cases:
        expected = plain(store, query.order_by(*order_by))
        assert listed(store, query, order_by) == expected
        assert expected or query is cases[3][0]
    first = listed(store, sa.select(runs), [runs.c.run_id])[0]
    # Times to the microsecond, booleans as booleans, an unfinished run's None kept.
    assert first["started_at"] == T0 and first["dry_run"] is True
    assert type(first["dry_run"]) is bool and first["finished_at"] is None


def test_on_sqlite_a_list_is_one_row_of_the_driver(tmp_path: Path) -> None:
    store = records.open_store(tmp_path)
    try:
        for _ in range(50):
            store.audit(who="ada", action="sync", target="/dirac/fts", result="accepted")
        with driver_rows.rows_stepped(store) as stepped:
            entries = store.audit_log(limit=40)
    finally:
        store.close()

    assert len(entries) == 40
    assert stepped[0] == 1
