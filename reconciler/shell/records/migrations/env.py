"""Alembic's environment for the record store: migrate the connection the store hands over.

:func:`reconciler.shell.records.migrate.upgrade` runs it with an open connection in
``config.attributes["connection"]``, inside the transaction that holds the migration lock;
there is no ``alembic.ini`` and no URL here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from reconciler.shell.records import schema

connection = context.config.attributes.get("connection")
if not isinstance(connection, sa.Connection):
    raise RuntimeError("the record store's migrations run from reconciler.shell.records."
                       "migrate, which hands over a connection in config.attributes")

context.configure(
    connection=connection, target_metadata=schema.metadata,
    # SQLite alters a table by copying it: let later revisions say so with batch operations.
    render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
