"""Rows SQLite's driver steps to: each step gives the interpreter up (see
``database.all_rows``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from reconciler.shell import records


@contextlib.contextmanager
def rows_stepped(store: records.RecordStore) -> Iterator[list[int]]:
    """How many rows SQLite's driver stepped to in the block (each gave the interpreter up),
    counted by a row factory set on each connection the store takes from its pool."""
    count = [0]

    def counting(_: Any, row: tuple[Any, ...]) -> tuple[Any, ...]:
        count[0] += 1
        return row

    def on_checkout(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.row_factory = counting

    def on_checkin(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.row_factory = None

    engine = store._db.engine  # noqa: SLF001 - the driver's connections are counted
    sa.event.listen(engine, "checkout", on_checkout)
    sa.event.listen(engine, "checkin", on_checkin)
    try:
        yield count
    finally:
        sa.event.remove(engine, "checkout", on_checkout)
        sa.event.remove(engine, "checkin", on_checkin)
