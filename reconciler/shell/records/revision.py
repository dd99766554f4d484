"""The schema revision of the records' database, read without importing Alembic.

Alembic (with mako and pygments, which it pulls in) weighs ~11 MB of resident memory:
``reconciler run`` must not carry it for its whole life only to learn that the database is
already up to date. So the newest revision is written here as a constant, and the database's
revision is read from Alembic's own ``alembic_version`` table with plain SQLAlchemy. A test
checks :data:`HEAD` against Alembic's head of ``migrations/versions``: a new migration must
bump it. (A schema revision, not a Git revision of the config repo.)
"""

from __future__ import annotations

import sqlalchemy as sa

HEAD = "0007"
"""The newest migration in ``migrations/versions``: the schema this reconciler works with."""

VERSION_TABLE = "alembic_version"
"""Where Alembic keeps the revision a database is at (its default name, which we keep)."""


def current(conn: sa.Connection) -> str | None:
    """The revision the database is at; None before the first migration (no version table,
    or an empty one). Our migrations are linear, so the table holds one row; several (the
    heads of branches, from elsewhere) read as one string that is no known revision."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return " ".join(sorted(rows)) or None
