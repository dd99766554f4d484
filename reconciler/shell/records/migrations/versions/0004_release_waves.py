"""Release waves: each wave of a release (state, apps, soak, started and finished), and when
each app's change of a release started.

Revision ID: 0004_release_waves
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "release_waves",
        sa.Column("revision", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("apps", sa.Text, nullable=False),
        sa.Column("soak", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("reason", sa.Text),
    )
    # Plain ADD COLUMN (nullable, no default): SQLite does it without copying the table.
    op.add_column("release_apps", sa.Column("started_at", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("release_apps") as batch:
        batch.drop_column("started_at")
    op.drop_table("release_waves")
