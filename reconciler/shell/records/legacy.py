"""Bring a database made before Alembic under Alembic, keeping every row.

Until the store moved to Alembic, it kept its own ``schema_version`` table (version 1, then
2) and, on every open, created missing tables and ran the step to version 2. Such a database
is finished the way that code would have finished it, stamped with the Alembic revision that
matches its schema (the baseline, which is version 2) and stripped of ``schema_version``;
the normal upgrade then takes it from there. The definitions here are frozen copies of the
old code's: they must not follow :mod:`.schema`, which describes the newest revision.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from reconciler.shell.records import database

VERSION_TABLE = "schema_version"
NEWEST_VERSION = 2
"""The last version of the old scheme; the Alembic baseline has exactly its schema."""
BASELINE = "0001"
"""The Alembic revision that a version 2 database matches."""

_VERSION_2_TABLES = frozenset({
    "revisions", "runs", "changes", "rollbacks", "quarantines", "drifts", "drift_corrections",
    "audit", "notifications"})


def is_legacy(conn: sa.Connection) -> bool:
    """Whether the database holds the old scheme's tables and no Alembic version yet."""
    tables = set(sa.inspect(conn).get_table_names())
    if "alembic_version" in tables:
        return False
    return bool(tables & (_VERSION_2_TABLES | {VERSION_TABLE}))


def adopt(conn: sa.Connection, *, url: str, stamp: Callable[[str], None]) -> None:
    """Finish the old scheme's upgrade to version 2, ``stamp`` the baseline, drop the old
    version table; in the caller's transaction, so that a failure leaves it untouched.

    Raises :class:`database.StoreUnavailable` for a version newer than 2 (a newer reconciler
    of the old scheme wrote it) or for tables missing beyond what version 2 added.
    """
    tables = set(sa.inspect(conn).get_table_names())
    version = _version(conn) if VERSION_TABLE in tables else None
    if version is not None and version > NEWEST_VERSION:
        raise database.StoreUnavailable(
            f"the record store {url} has schema version {version}, newer than this "
            f"reconciler's: upgrade reconciler")
    _add_version_2(conn, tables=tables)
    missing = _VERSION_2_TABLES - set(sa.inspect(conn).get_table_names())
    if missing:
        # The old code created its tables one by one on SQLite: a first start that died
        # half-way leaves some. Guessing the rest could hide a worse problem.
        raise database.StoreUnavailable(
            f"the record store {url} lacks the tables {', '.join(sorted(missing))} of schema "
            f"version {version or 'unknown'}: restore it from a backup, or move it away to "
            f"start a new one")
    stamp(BASELINE)
    if VERSION_TABLE in tables:
        conn.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))


def _version(conn: sa.Connection) -> int | None:
    row = conn.execute(sa.text(f"SELECT version FROM {VERSION_TABLE}")).first()
    return None if row is None else int(row[0])


def _add_version_2(conn: sa.Connection, *, tables: set[str]) -> None:
    """Version 2 (idempotent, as the old code ran it): revisions know their source and ref;
    drift corrections are rows of their own."""
    if "revisions" in tables:
        present = {c["name"] for c in sa.inspect(conn).get_columns("revisions")}
        for name in ("source", "ref"):
            if name not in present:
                conn.execute(sa.text(f"ALTER TABLE revisions ADD COLUMN {name} TEXT"))
    if "drift_corrections" not in tables:
        corrections = sa.Table(
            "drift_corrections", sa.MetaData(),
            sa.Column("correction_id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("drift_id", sa.Integer, nullable=False, index=True),
            sa.Column("app_id", sa.Text, nullable=False, index=True),
            sa.Column("at", sa.Float, nullable=False),
        )
        corrections.create(conn)
