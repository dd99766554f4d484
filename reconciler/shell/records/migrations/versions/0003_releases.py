"""Releases: one revision applied across apps, with each app's outcome; drift outcomes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

``releases`` keeps a revision's trigger, who asked, and its image references with those of
the release before (what changed, old -> new tag); ``release_apps`` each app's change of that
revision and its outcome (written only by a change, never by a no-op run). Three columns of
``drifts`` say how a drift ended beyond its action word: the correcting run (``run_id``), the
revision whose sync overwrote it (``revision``), or why it is blocked (``reason``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("revision", sa.String(200), primary_key=True),
        sa.Column("trigger", sa.String(50), nullable=False),
        sa.Column("requested_by", sa.Text),
        sa.Column("run_id", sa.Integer),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("images", sa.Text, nullable=False),
        sa.Column("images_before", sa.Text, nullable=False),
    )
    op.create_table(
        "release_apps",
        sa.Column("revision", sa.String(200), primary_key=True),
        sa.Column("app_id", sa.String(500), primary_key=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(30)),
        sa.Column("reason", sa.Text),
        sa.Column("run_id", sa.Integer),
        sa.Column("at", sa.Float, nullable=False),
    )
    # Plain ADD COLUMN (nullable, no default): SQLite does it without copying the table.
    for column in (sa.Column("run_id", sa.Integer), sa.Column("revision", sa.String(200)),
                   sa.Column("reason", sa.Text)):
        op.add_column("drifts", column)


def downgrade() -> None:
    with op.batch_alter_table("drifts") as batch:
        for column in ("reason", "revision", "run_id"):
            batch.drop_column(column)
    for table in ("release_apps", "releases"):
        op.drop_table(table)
