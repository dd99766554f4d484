"""Bring the records' database to the newest schema when a store opens, with Alembic.

The revisions live in ``migrations/versions`` (shipped as package data); ``migrations/env.py``
migrates the connection handed to it in ``config.attributes``, so no ``alembic.ini`` is
needed at run time. Everything happens in one transaction that first takes a lock, so that
two processes opening a new database at once do not both create its tables: a PostgreSQL
advisory lock (released with the transaction), or ``BEGIN IMMEDIATE`` on SQLite (the write
lock of the file). The second one then finds the schema up to date. Within one process,
migrations also take turns, because Alembic keeps its context in module globals. A database
from before Alembic is adopted first (:mod:`.legacy`).

Only a database that is not at the newest revision comes here (:mod:`.revision` tells,
without Alembic). ``reconciler run`` keeps Alembic out of its long-lived process by running
this module as a child (:func:`main`, ``python -m reconciler.shell.records.migrate``), which
reads the database URL from stdin.

To write a new revision, add a file to ``migrations/versions`` beside the baseline (or run
``alembic revision`` with ``script_location`` pointing there) and change :mod:`.schema` to
match, and bump :data:`revision.HEAD`: tests check that the migrations produce exactly the
schema of :mod:`.schema`, and that ``HEAD`` is their head.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import alembic.command
import alembic.config
import alembic.script
import alembic.util
import sqlalchemy as sa

from reconciler.shell.records import database, legacy, revision, store

MIGRATIONS = Path(__file__).with_name("migrations")

_ADVISORY_LOCK = int.from_bytes(b"records", "big")
"""The key of the PostgreSQL advisory lock held while migrating (any constant would do;
this one is ``records`` in ASCII). Advisory locks are per database."""

_IN_PROCESS = threading.Lock()
"""Alembic's ``context`` and ``op`` are module globals: one migration at a time per process,
whichever database it is for (the database's own lock only keeps processes apart)."""


def upgrade(db: database.Database) -> None:
    """Adopt a database from before Alembic, then upgrade it to the newest revision.

    Raises :class:`database.StoreUnavailable` when the database cannot be reached, or holds a
    revision this reconciler does not know (a newer reconciler migrated it).
    """
    with _IN_PROCESS, db.opening(), db.engine.connect() as conn:
        _lock(conn)
        config = _config(conn)
        try:
            if legacy.is_legacy(conn):
                legacy.adopt(conn, url=db.url,
                             stamp=lambda revision: alembic.command.stamp(config, revision))
            _refuse_unknown(conn, url=db.url)
            alembic.command.upgrade(config, "head")
        except alembic.util.CommandError as e:
            raise database.StoreUnavailable(
                f"cannot migrate the record store {db.url}: {e}") from e
        conn.commit()


def head() -> str:
    """The newest revision of ``migrations/versions``, as Alembic finds it (what
    :data:`revision.HEAD` must say)."""
    newest = _scripts().get_current_head()
    if newest is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS}: the package is broken")
    return newest


def _lock(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
    elif conn.dialect.name == "sqlite":
        # pysqlite opens transactions lazily, at the first write: take the write lock now,
        # before reading what is there (the busy timeout makes the other opener wait).
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _config(conn: sa.Connection) -> alembic.config.Config:
    config = alembic.config.Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _scripts() -> alembic.script.ScriptDirectory:
    return alembic.script.ScriptDirectory(str(MIGRATIONS))


def _refuse_unknown(conn: sa.Connection, *, url: str) -> None:
    at = revision.current(conn)
    known = {script.revision for script in _scripts().walk_revisions()}
    if at is not None and at not in known:
        raise database.StoreUnavailable(
            f"the record store {url} has schema version {at}, unknown to this "
            f"reconciler (its newest is {head()}): upgrade reconciler")


def main() -> None:
    """The child process: upgrade the database whose URL is the first line of stdin (never
    an argument: ``ps`` shows arguments to everyone on the host, with the password). Exits
    with :data:`store.MIGRATE_REFUSED` and the reason as the last line of stderr when the
    store cannot be migrated; the reason names the URL with its password hidden."""
    db = database.Database(sys.stdin.readline().strip(), clock=time.time)
    try:
        upgrade(db)
    except database.StoreUnavailable as e:
        print(" ".join(str(e).split()), file=sys.stderr)
        sys.exit(store.MIGRATE_REFUSED)
    finally:
        db.close()


if __name__ == "__main__":
    main()
