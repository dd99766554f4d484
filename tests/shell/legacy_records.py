"""A record store database as the code before Alembic made it: a fixture, frozen on purpose.

The DDL is what that code's ``metadata.create_all`` emitted (``reconciler/shell/records.py``
at e8a24a8 for schema version 2, at 90c7f21 for version 1), with its own ``schema_version``
table. SQLite and PostgreSQL differ only in how integer keys autoincrement (``{serial}``).
Rows are inserted the way that code inserted them: keys left to the database.
"""

from __future__ import annotations

import sqlalchemy as sa

VERSION_2 = """
CREATE TABLE schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE revisions (
    revision VARCHAR(200) NOT NULL,
    first_seen_at FLOAT NOT NULL,
    author TEXT,
    message TEXT,
    committed_at FLOAT,
    definitions TEXT NOT NULL,
    source TEXT,
    ref TEXT,
    PRIMARY KEY (revision)
);
CREATE TABLE runs (
    run_id {serial} NOT NULL,
    revision VARCHAR(200) NOT NULL,
    "trigger" VARCHAR(50) NOT NULL,
    requested_by TEXT,
    dry_run BOOLEAN NOT NULL,
    started_at FLOAT NOT NULL,
    finished_at FLOAT,
    outcome VARCHAR(30),
    error TEXT,
    summary TEXT,
    PRIMARY KEY (run_id)
);
CREATE TABLE changes (
    change_id {serial} NOT NULL,
    run_id INTEGER NOT NULL,
    app_id TEXT NOT NULL,
    action VARCHAR(20) NOT NULL,
    revision VARCHAR(200) NOT NULL,
    purpose VARCHAR(20) NOT NULL,
    patch TEXT NOT NULL,
    deployment_id VARCHAR(100),
    version VARCHAR(50),
    previous_version VARCHAR(50),
    deadline_seconds FLOAT,
    started_at FLOAT NOT NULL,
    finished_at FLOAT,
    outcome VARCHAR(30),
    reason TEXT,
    PRIMARY KEY (change_id)
);
CREATE INDEX ix_changes_run_id ON changes (run_id);
CREATE INDEX ix_changes_app_id ON changes (app_id);
CREATE TABLE rollbacks (
    rollback_id {serial} NOT NULL,
    run_id INTEGER,
    app_id TEXT NOT NULL,
    from_version VARCHAR(50),
    to_version VARCHAR(50),
    reason TEXT,
    failure TEXT,
    stuck_step TEXT,
    method VARCHAR(30),
    outcome VARCHAR(30),
    requested_by TEXT,
    at FLOAT NOT NULL,
    PRIMARY KEY (rollback_id)
);
CREATE INDEX ix_rollbacks_app_id ON rollbacks (app_id);
CREATE TABLE quarantines (
    quarantine_id {serial} NOT NULL,
    app_id TEXT NOT NULL,
    revision VARCHAR(200) NOT NULL,
    reason TEXT,
    at FLOAT NOT NULL,
    lifted_at FLOAT,
    lifted_by TEXT,
    PRIMARY KEY (quarantine_id)
);
CREATE INDEX ix_quarantines_app_id ON quarantines (app_id);
CREATE TABLE drifts (
    drift_id {serial} NOT NULL,
    app_id TEXT NOT NULL,
    kind VARCHAR(20) NOT NULL,
    patch TEXT NOT NULL,
    fingerprint VARCHAR(100) NOT NULL,
    first_seen_at FLOAT NOT NULL,
    last_seen_at FLOAT NOT NULL,
    client_ip TEXT,
    uri TEXT,
    attributed_at TEXT,
    live_version VARCHAR(50),
    policy VARCHAR(20) NOT NULL,
    action VARCHAR(30),
    status VARCHAR(20) NOT NULL,
    corrections INTEGER NOT NULL,
    resolved_at FLOAT,
    acknowledged_by TEXT,
    PRIMARY KEY (drift_id)
);
CREATE INDEX ix_drifts_app_id ON drifts (app_id);
CREATE TABLE drift_corrections (
    correction_id {serial} NOT NULL,
    drift_id INTEGER NOT NULL,
    app_id TEXT NOT NULL,
    at FLOAT NOT NULL,
    PRIMARY KEY (correction_id)
);
CREATE INDEX ix_drift_corrections_drift_id ON drift_corrections (drift_id);
CREATE INDEX ix_drift_corrections_app_id ON drift_corrections (app_id);
CREATE TABLE audit (
    audit_id {serial} NOT NULL,
    at FLOAT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    result TEXT,
    PRIMARY KEY (audit_id)
);
CREATE TABLE notifications (
    "key" VARCHAR(300) NOT NULL,
    at FLOAT NOT NULL,
    PRIMARY KEY ("key")
);
"""

VERSION_1 = (
    VERSION_2
    .replace("    source TEXT,\n    ref TEXT,\n", "")
    .split("CREATE TABLE drift_corrections")[0]
    + "CREATE TABLE audit" + VERSION_2.split("CREATE TABLE audit")[1]
)
"""Version 2 without what it added: ``revisions.source`` and ``ref``, ``drift_corrections``."""

T0 = 1_790_000_000.0
SHA = "3f2a9c0d1b7e4f60a8c5d2e1f0b9a8c7d6e5f4a3"

_ROWS = [
    "INSERT INTO revisions (revision, first_seen_at, author, message, committed_at, definitions"
    "{origin_columns}) VALUES ('{sha}', {t0}, 'Ada <ada@cern.ch>', 'Bump', {t0} - 60, "
    """'{{"/dirac/fts": {{"id": "/dirac/fts", "instances": 2}}}}'{origin_values})""",
    'INSERT INTO runs (revision, "trigger", requested_by, dry_run, started_at, finished_at, '
    "outcome, error, summary) VALUES ('{sha}', 'poll', NULL, {false}, {t0}, {t0} + 5, "
    "'rolled back', NULL, '{{\"rolled back\": 1}}')",
    "INSERT INTO changes (run_id, app_id, action, revision, purpose, patch, deployment_id, "
    "version, previous_version, deadline_seconds, started_at, finished_at, outcome, reason) "
    "VALUES (1, '/dirac/fts', 'update', '{sha}', 'change', "
    """'[{{"op": "replace", "path": "/instances", "value": 2}}]', 'd-1', 'v2', 'v1', 600.0, """
    "{t0}, {t0} + 4, 'failed', 'unhealthy')",
    "INSERT INTO rollbacks (run_id, app_id, from_version, to_version, reason, failure, "
    "stuck_step, method, outcome, requested_by, at) VALUES (1, '/dirac/fts', 'v2', 'v1', "
    "'deployment failed', 'exit 1', NULL, 'cancel deployment', 'succeeded', NULL, {t0} + 4)",
    "INSERT INTO quarantines (app_id, revision, reason, at, lifted_at, lifted_by) "
    "VALUES ('/dirac/fts', '{sha}', 'rolled back', {t0} + 5, NULL, NULL)",
    "INSERT INTO drifts (app_id, kind, patch, fingerprint, first_seen_at, last_seen_at, "
    "client_ip, uri, attributed_at, live_version, policy, action, status, corrections, "
    "resolved_at, acknowledged_by) VALUES ('/dirac/web', 'scale', "
    """'[{{"op": "replace", "path": "/instances", "value": 5}}]', 'f', {t0} + 6, {t0} + 7, """
    "'10.0.0.7', '/v2/apps/dirac/web', NULL, 'v9', 'correct', 'corrected', 'open', 1, NULL, "
    "NULL)",
    "INSERT INTO audit (at, who, action, target, result) "
    "VALUES ({t0} + 8, 'ada', 'sync', '/dirac', 'accepted')",
    "INSERT INTO notifications (\"key\", at) VALUES ('rollback:/dirac/fts:{sha}', {t0} + 9)",
]
_CORRECTION = ("INSERT INTO drift_corrections (drift_id, app_id, at) "
               "VALUES (1, '/dirac/web', {t0} + 7)")


def create(url: str, *, version: int, ddl: str | None = None, rows: bool = True) -> None:
    """A database at ``url`` made by the old code at schema ``version``, with one row in
    each table (``ddl`` replaces the version's own, to make a damaged database)."""
    engine = sa.create_engine(url)
    serial = "SERIAL" if engine.dialect.name == "postgresql" else "INTEGER"
    statements = (ddl or (VERSION_2 if version >= 2 else VERSION_1)).format(serial=serial)
    origin = version >= 2
    values = {
        "sha": SHA, "t0": T0, "false": "false" if serial == "SERIAL" else "0",
        "origin_columns": ", source, ref" if origin else "",
        "origin_values": ", 'https://gitlab.cern.ch/lhcb/config.git', 'main'" if origin else "",
    }
    try:
        with engine.begin() as conn:
            for statement in statements.split(";"):
                if statement.strip():
                    conn.exec_driver_sql(statement)
            conn.exec_driver_sql(f"INSERT INTO schema_version VALUES ({version})")
            if rows:
                for row in _ROWS + ([_CORRECTION] if origin else []):
                    conn.exec_driver_sql(row.format(**values))
    finally:
        engine.dispose()
