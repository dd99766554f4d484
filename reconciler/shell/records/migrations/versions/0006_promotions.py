"""Promotions: an image's tag taken from one environment's release to another's.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

``promotions`` keeps, in the target environment's records, who promoted which image from
which environment to which, the tag before and after, the source release it came from (its
revision there), the commit that wrote it, the evidence of the soak (each source app and
since when it was healthy), and the target's release once the commit has rolled out
(``target_revision``, linked when it appears).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "promotions",
        sa.Column("promotion_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("image", sa.String(200), nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("previous_tag", sa.Text),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("target", sa.String(50), nullable=False),
        sa.Column("source_revision", sa.String(200)),
        sa.Column("commit", sa.String(200), nullable=False),
        sa.Column("target_revision", sa.String(200)),
        sa.Column("requested_by", sa.Text),
        sa.Column("automatic", sa.Boolean, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("linked_at", sa.Float),
    )


def downgrade() -> None:
    op.drop_table("promotions")
