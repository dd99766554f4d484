"""Intents: each Marathon write, recorded before the request leaves; facts about the store.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

A controller killed while Marathon holds its request never learns the deployment id; the
intent (app, action, digest of the desired definition, run) lets its successor find the
deployment and adopt it, or mark the intent as never sent.

``facts`` holds what the store knows about itself: the identity of the Marathon its records
describe (set at first contact) and the time of the last write probe (readiness).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "intents",
        sa.Column("intent_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False, index=True),
        sa.Column("app_id", sa.Text, nullable=False, index=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("revision", sa.String(200), nullable=False),
        sa.Column("digest", sa.String(100)),
        sa.Column("previous_version", sa.String(50)),
        sa.Column("deadline_seconds", sa.Float),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("resolved_at", sa.Float),
        sa.Column("resolution", sa.String(30)),
        sa.Column("change_id", sa.Integer),
    )
    op.create_table(
        "facts",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("facts")
    op.drop_table("intents")
