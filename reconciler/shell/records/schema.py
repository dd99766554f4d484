"""The record store's tables, as SQLAlchemy Core metadata: what the stores query.

This is the schema the newest migration produces; the migrations under ``migrations/``
create and change the real tables (a test compares the two). Adding a column means adding it
here *and* writing a migration for it.

Times are UNIX seconds (``Float``); patches and definitions are JSON text; the free-text
vocabulary of the columns is described in :mod:`reconciler.shell.records`.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

revisions = sa.Table(
    "revisions", metadata,
    sa.Column("revision", sa.String(200), primary_key=True),
    sa.Column("first_seen_at", sa.Float, nullable=False),
    sa.Column("author", sa.Text),
    sa.Column("message", sa.Text),
    sa.Column("committed_at", sa.Float),
    sa.Column("definitions", sa.Text, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("ref", sa.Text),
)
runs = sa.Table(
    "runs", metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("revision", sa.String(200), nullable=False),
    sa.Column("trigger", sa.String(50), nullable=False),
    sa.Column("requested_by", sa.Text),
    sa.Column("dry_run", sa.Boolean, nullable=False, default=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("outcome", sa.String(30)),
    sa.Column("error", sa.Text),
    sa.Column("summary", sa.Text),
)
changes = sa.Table(
    "changes", metadata,
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
rollbacks = sa.Table(
    "rollbacks", metadata,
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
quarantines = sa.Table(
    "quarantines", metadata,
    sa.Column("quarantine_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.Text, nullable=False, index=True),
    sa.Column("revision", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("lifted_at", sa.Float),
    sa.Column("lifted_by", sa.Text),
)
drifts = sa.Table(
    "drifts", metadata,
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
    sa.Column("corrections", sa.Integer, nullable=False, default=0),
    sa.Column("resolved_at", sa.Float),
    sa.Column("acknowledged_by", sa.Text),
    sa.Column("run_id", sa.Integer),
    sa.Column("revision", sa.String(200)),
    sa.Column("reason", sa.Text),
)
drift_corrections = sa.Table(
    "drift_corrections", metadata,
    sa.Column("correction_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("drift_id", sa.Integer, nullable=False, index=True),
    sa.Column("app_id", sa.Text, nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
)
audit = sa.Table(
    "audit", metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("who", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target", sa.Text),
    sa.Column("result", sa.Text),
)
notifications = sa.Table(
    "notifications", metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
)
releases = sa.Table(
    "releases", metadata,
    sa.Column("revision", sa.String(200), primary_key=True),
    sa.Column("trigger", sa.String(50), nullable=False),
    sa.Column("requested_by", sa.Text),
    sa.Column("run_id", sa.Integer),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("images", sa.Text, nullable=False),
    sa.Column("images_before", sa.Text, nullable=False),
)
release_apps = sa.Table(
    "release_apps", metadata,
    sa.Column("revision", sa.String(200), primary_key=True),
    sa.Column("app_id", sa.String(500), primary_key=True),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("outcome", sa.String(30)),
    sa.Column("reason", sa.Text),
    sa.Column("run_id", sa.Integer),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
)
release_waves = sa.Table(
    "release_waves", metadata,
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
intents = sa.Table(
    "intents", metadata,
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
facts = sa.Table(
    "facts", metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)
promotions = sa.Table(
    "promotions", metadata,
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

window_holds = sa.Table(
    "window_holds", metadata,
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


TERM_OPTION = "leader_term"
"""The execution option that carries the writer's leadership term (:class:`database.Database`
sets it on every connection)."""


def _leader_term(context: sa.engine.interfaces.ExecutionContext) -> int | None:
    term = context.execution_options.get(TERM_OPTION)
    return None if term is None else int(term)


# Every record row carries the leadership term of the replica that wrote it (None when the
# controller runs alone): who wrote what survives a failover (migration 0007).
for _table in metadata.sorted_tables:
    _table.append_column(sa.Column("term", sa.BigInteger, default=_leader_term))
