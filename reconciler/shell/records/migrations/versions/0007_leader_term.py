"""Every record row carries the leadership term of the replica that wrote it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

With several replicas of ``reconciler run`` on ZooKeeper (``RECONCILER_ZK_URL``) only the
leader writes, and its term (a number that grows at each election) goes into ``term`` of each
row it inserts; a replica alone leaves it empty. Plain nullable ADD COLUMN on every table:
SQLite and PostgreSQL do it without copying a table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

TABLES = ("revisions", "runs", "changes", "rollbacks", "quarantines", "drifts",
          "drift_corrections", "audit", "notifications", "releases", "release_apps",
          "intents", "facts", "release_waves", "promotions", "window_holds")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("term", sa.BigInteger))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("term")
