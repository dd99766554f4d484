"""Baseline: the schema of the store's own version 2, the last before Alembic.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

A frozen copy of the tables as the store created them then (``index=True`` columns got
SQLAlchemy's ``ix_<table>_<column>`` indexes): a database made by that code is stamped with
this revision instead of running it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "revisions",
        sa.Column("revision", sa.String(200), primary_key=True),
        sa.Column("first_seen_at", sa.Float, nullable=False),
        sa.Column("author", sa.Text),
        sa.Column("message", sa.Text),
        sa.Column("committed_at", sa.Float),
        sa.Column("definitions", sa.Text, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("ref", sa.Text),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("revision", sa.String(200), nullable=False),
        sa.Column("trigger", sa.String(50), nullable=False),
        sa.Column("requested_by", sa.Text),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.Column("outcome", sa.String(30)),
        sa.Column("error", sa.Text),
        sa.Column("summary", sa.Text),
    )
    op.create_table(
        "changes",
        sa.Column("change_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False, index=True),
        sa.Column("app_id", sa.Text, nullable=False, index=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("revision", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("patch", sa.Text, nullable=False),
        sa.Column("deployment_id", sa.String(100)),
        sa.Column("version", sa.String(50)),
        sa.Column("previous_version", sa.String(50)),
        sa.Column("deadline_seconds", sa.Float),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.Column("outcome", sa.String(30)),
        sa.Column("reason", sa.Text),
    )
    op.create_table(
        "rollbacks",
        sa.Column("rollback_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer),
        sa.Column("app_id", sa.Text, nullable=False, index=True),
        sa.Column("from_version", sa.String(50)),
        sa.Column("to_version", sa.String(50)),
        sa.Column("reason", sa.Text),
        sa.Column("failure", sa.Text),
        sa.Column("stuck_step", sa.Text),
        sa.Column("method", sa.String(30)),
        sa.Column("outcome", sa.String(30)),
        sa.Column("requested_by", sa.Text),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "quarantines",
        sa.Column("quarantine_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.Text, nullable=False, index=True),
        sa.Column("revision", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("lifted_at", sa.Float),
        sa.Column("lifted_by", sa.Text),
    )
    op.create_table(
        "drifts",
        sa.Column("drift_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.Text, nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("patch", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(100), nullable=False),
        sa.Column("first_seen_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("client_ip", sa.Text),
        sa.Column("uri", sa.Text),
        sa.Column("attributed_at", sa.Text),
        sa.Column("live_version", sa.String(50)),
        sa.Column("policy", sa.String(20), nullable=False),
        sa.Column("action", sa.String(30)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("corrections", sa.Integer, nullable=False),
        sa.Column("resolved_at", sa.Float),
        sa.Column("acknowledged_by", sa.Text),
    )
    op.create_table(
        "drift_corrections",
        sa.Column("correction_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("drift_id", sa.Integer, nullable=False, index=True),
        sa.Column("app_id", sa.Text, nullable=False, index=True),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "audit",
        sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("who", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("result", sa.Text),
    )
    op.create_table(
        "notifications",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("notifications", "audit", "drift_corrections", "drifts", "quarantines",
                  "rollbacks", "changes", "runs", "revisions"):
        op.drop_table(table)
