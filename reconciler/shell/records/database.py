"""The connection to the records' database, shared by every store of the package.

One :class:`Database` holds the SQLAlchemy engine, the write lock and the injected clock.
SQLite (the default, a file in the state directory) runs in WAL mode, so that the controller
thread writes while web server threads read; PostgreSQL (``postgresql+psycopg://...``) runs
the same code. Errors of the driver become :class:`StoreUnavailable` here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.sql import util as sql_util
from sqlalchemy.sql import visitors

from reconciler.shell.records import schema

Clock = Callable[[], float]
When = dt.datetime | float
"""A point in time: an aware datetime, or UNIX seconds."""


class StoreUnavailable(Exception):
    """The database cannot be opened or written: stop and alert (disk, URL, credentials)."""


class Database:
    """The engine, the lock and the clock of one database; safe to share between threads.

    Writes are serialized by :attr:`lock` (SQLite allows one writer; on PostgreSQL it keeps
    read-then-write steps such as claiming a notification atomic within the process).
    Creating it does not connect: the first connection is the migration's.
    """

    def __init__(self, url: str, *, clock: Clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.term: int | None = None
        """The leadership term written into every row inserted from now on."""
        parsed = sa.engine.make_url(url)
        self.url = parsed.render_as_string(hide_password=True)
        """The database URL with its password hidden, fit for logs."""
        self._password = str(parsed.password or "")
        with self.opening():
            if url.startswith("sqlite"):
                self.engine = sa.create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 30})
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.engine = sa.create_engine(url, pool_pre_ping=True)

    @contextlib.contextmanager
    def opening(self) -> Iterator[None]:
        """Turn the driver's errors while opening the store into :class:`StoreUnavailable`."""
        try:
            yield
        except sqlalchemy.exc.SQLAlchemyError as e:
            cause = e.orig if hasattr(e, "orig") else e
            raise StoreUnavailable(f"cannot open the record store {self.url}: "
                                   f"{type(cause).__name__}: {_first_line(e)}") from e

    @contextlib.contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A connection in a transaction, committed when the block ends without error.

        The database refusing work (read-only, disk full, server gone) raises
        :class:`StoreUnavailable`; other errors (a unique key taken) pass unchanged.
        """
        try:
            with self.engine.begin() as conn:
                conn.execution_options(**{schema.TERM_OPTION: self.term})
                yield conn
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InternalError) as e:
            raise StoreUnavailable(f"the record store {self.url} refused work: "
                                   f"{_first_line(e)}") from e

    def mask(self, text: str) -> str:
        """``text`` with the database's password hidden (text from elsewhere, such as the
        migrating child's, that may quote the URL)."""
        if not self._password:
            return text
        # As typed, and as a URL spells it (``p%40ss`` for ``p@ss``).
        for form in {self._password, urllib.parse.quote(self._password, safe="")}:
            text = text.replace(form, "***")
        return text

    def now(self) -> float:
        return float(self.clock())

    def close(self) -> None:
        self.engine.dispose()


class Store:
    """The base of the stores of one concern: they share one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self._db = db


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key the database gave the row just inserted."""
    key = result.inserted_primary_key
    if key is None:
        raise StoreUnavailable("the database returned no key for an inserted row")
    return int(key[0])


def seconds(when: When) -> float:
    """``when`` as UNIX seconds; a naive datetime is refused (its zone would be a guess)."""
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            raise ValueError(f"{when.isoformat()} has no time zone: pass an aware UTC datetime")
        return when.timestamp()
    return float(when)


def all_rows(conn: sa.Connection, query: sa.Select[Any], *,
             order_by: Sequence[sa.ColumnElement[Any]]) -> Iterator[Mapping[str, Any]]:
    """Every row of ``query`` in the order of ``order_by``, each a mapping of its columns'
    keys (a ``limit`` of ``query`` keeps the first rows in that order). Every row is read
    when this returns; each mapping is made as it is asked for.

    On SQLite the rows come back as one JSON array, in one step of the driver. Python's
    ``sqlite3`` gives the interpreter up at every row it steps to and waits to get it back,
    up to the switch interval each time, while a release's threads compute: a page of 200
    rows waited 200 times. PostgreSQL's driver reads every row in one call already. The
    array is held whole while it is parsed: a list of 100,000 rows is read as 100,000 rows
    were before, plus its JSON text for a moment.
    """
    if conn.dialect.name != "sqlite":
        found = conn.execute(query.order_by(*order_by)).mappings().all()
        return (dict(r) for r in found)
    dialect = conn.dialect
    # The rows are numbered in the query's order (an aggregate's input order is not
    # promised), after its limit: the database sorts only the first rows, as before. The
    # columns the order names go through the first rows too (not in the array).
    chosen = {id(c) for c in query.selected_columns}
    ordering = [c for o in order_by for c in visitors.iterate(o)
                if isinstance(c, sa.Column) and id(c) not in chosen]
    first = query.add_columns(*dict.fromkeys(ordering)).order_by(*order_by).subquery()
    outer = sql_util.ClauseAdapter(first)
    numbered = sa.select(first, sa.func.row_number().over(
        order_by=[outer.traverse(o) for o in order_by]).label("row_number")).subquery()
    cells: list[sa.ColumnElement[Any]] = [numbered.c.row_number]
    readers: list[tuple[str, Callable[[Any], Any] | None, bool]] = []
    for column, inner in zip(query.selected_columns, numbered.c, strict=False):
        exact = isinstance(column.type, sa.Float)
        # A REAL in SQLite's JSON keeps 15 digits; as text with 17 it reads back unchanged.
        cells.append(sa.case((inner.is_(None), None), else_=sa.func.printf("%!.17g", inner))
                     if exact else inner)
        readers.append((str(column.key), column.type.dialect_impl(dialect).result_processor(
            dialect, None), exact))
    found = json.loads(conn.execute(
        sa.select(sa.func.json_group_array(sa.func.json_array(*cells))).select_from(numbered)
    ).scalar_one())
    found.sort(key=lambda row: row[0])
    return (_sqlite_row(readers, values) for _, *values in found)


def _sqlite_row(readers: Sequence[tuple[str, Callable[[Any], Any] | None, bool]],
                values: Sequence[Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for (key, process, exact), value in zip(readers, values, strict=True):
        if exact and value is not None:
            value = float(value)
        row[key] = value if process is None or value is None else process(value)
    return row


SQLITE_CACHE_KIB = 512


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 512 KiB of page cache per connection, not SQLite's 2 MB: the pool keeps several, each
    # fills up during a release, and the operating system caches the file anyway.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
