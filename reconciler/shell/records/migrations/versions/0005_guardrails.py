"""Guard rails: apps planned but held by a sync window, until it opens.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

``window_holds`` keeps, per app, the revision a sync window held back, the scope
(``revisions`` or ``drift``), until when and why; ``ended`` says how the hold ended
(``applied`` when the window opened, ``superseded`` by a newer revision, ``overridden``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "window_holds",
        sa.Column("hold_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.Text, nullable=False, index=True),
        sa.Column("revision", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("until", sa.Float),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("ended", sa.String(30)),
    )


def downgrade() -> None:
    op.drop_table("window_holds")
