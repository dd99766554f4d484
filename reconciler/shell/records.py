"""The record store: the only module that touches the database.

Everything reconciler did, durably: revisions seen (with the desired definitions of each),
sync runs, per-app changes (recorded with their Marathon deployment id *before* waiting on
it, so a run that starts after a crash can wait on them instead of starting duplicates),
rollbacks, quarantines, drift and the audit of requested actions. History is never truncated.

SQLAlchemy Core over SQLite under the state directory by default; the same code runs on
PostgreSQL (``postgresql+psycopg://...``). Times are stored as UNIX seconds (UTC) and handed
out as ISO-8601 strings in history entries.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reconciler.core import redact

SCHEMA_VERSION = 1

_metadata = sa.MetaData()

_schema = sa.Table(
    "schema_version", _metadata, sa.Column("version", sa.Integer, nullable=False)
)
_revisions = sa.Table(
    "revisions", _metadata,
    sa.Column("revision", sa.String(200), primary_key=True),
    sa.Column("first_seen_at", sa.Float, nullable=False),
    sa.Column("author", sa.Text),
    sa.Column("message", sa.Text),
    sa.Column("committed_at", sa.Float),
    sa.Column("definitions", sa.Text, nullable=False),
)
_runs = sa.Table(
    "runs", _metadata,
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
_changes = sa.Table(
    "changes", _metadata,
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
_rollbacks = sa.Table(
    "rollbacks", _metadata,
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
_quarantines = sa.Table(
    "quarantines", _metadata,
    sa.Column("quarantine_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.Text, nullable=False, index=True),
    sa.Column("revision", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("lifted_at", sa.Float),
    sa.Column("lifted_by", sa.Text),
)
_drifts = sa.Table(
    "drifts", _metadata,
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
)
_audit = sa.Table(
    "audit", _metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("who", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target", sa.Text),
    sa.Column("result", sa.Text),
)
_notifications = sa.Table(
    "notifications", _metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
)


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class PendingChange:
    """A change whose Marathon deployment was started but whose outcome was never recorded."""

    change_id: int
    run_id: int
    app_id: str
    action: str
    revision: str
    deployment_id: str
    version: str
    previous_version: str | None
    purpose: str
    started_at: float
    deadline_seconds: float | None


@dataclass(frozen=True)
class Drift:
    drift_id: int
    app_id: str
    kind: str
    """``scale`` (only instances differ) or ``config``."""
    patch: list[dict[str, Any]]
    """JSON Patch from desired to live, secrets masked."""
    first_seen_at: str
    last_seen_at: str
    client_ip: str | None
    uri: str | None
    attributed_at: str | None
    live_version: str | None
    policy: str
    action: str | None
    status: str
    """``open``, ``resolved`` or ``flapping``."""
    corrections: int
    resolved_at: str | None
    acknowledged_by: str | None


class RecordStore:
    """Typed access to the records; safe to share between threads."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        if url.startswith("sqlite"):
            self._engine = sa.create_engine(
                url, connect_args={"check_same_thread": False, "timeout": 30}
            )
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
        else:
            self._engine = sa.create_engine(url, pool_pre_ping=True)
        _metadata.create_all(self._engine)
        with self._engine.begin() as conn:
            if conn.execute(sa.select(_schema.c.version)).first() is None:
                conn.execute(_schema.insert().values(version=SCHEMA_VERSION))

    def close(self) -> None:
        self._engine.dispose()

    def _tx(self) -> Any:
        return self._engine.begin()

    # -- revisions and runs ------------------------------------------------------------------

    def record_revision(
        self, *, revision: str, definitions: dict[str, Any], author: str | None = None,
        message: str | None = None, committed_at: float | None = None,
    ) -> None:
        with self._lock, self._tx() as conn:
            if conn.execute(sa.select(_revisions.c.revision).where(
                    _revisions.c.revision == revision)).first() is not None:
                return
            conn.execute(_revisions.insert().values(
                revision=revision, first_seen_at=self._clock(), author=author, message=message,
                committed_at=committed_at, definitions=json.dumps(definitions, sort_keys=True)))

    def resolve_revision(self, prefix: str) -> str | None:
        """The one recorded revision starting with ``prefix`` (a short sha), newest first."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(_revisions.c.revision)
                .where(_revisions.c.revision.startswith(prefix, autoescape=True))
                .order_by(_revisions.c.first_seen_at.desc())
            ).first()
        return None if row is None else str(row[0])

    def desired_definition(self, *, revision: str, app_id: str) -> dict[str, Any] | None:
        with self._tx() as conn:
            row = conn.execute(sa.select(_revisions.c.definitions).where(
                _revisions.c.revision == revision)).first()
        if row is None:
            return None
        definition: dict[str, Any] | None = json.loads(row[0]).get(app_id)
        return definition

    def revisions(self) -> list[dict[str, Any]]:
        """Revisions seen, newest first, with the outcome of their last run."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(_revisions).order_by(
                _revisions.c.first_seen_at.desc())).mappings().all()
            out = []
            for row in rows:
                last = conn.execute(
                    sa.select(_runs.c.outcome, _runs.c.finished_at, _runs.c.trigger)
                    .where(_runs.c.revision == row["revision"], _runs.c.dry_run.is_(False))
                    .order_by(_runs.c.run_id.desc())
                ).first()
                out.append({
                    "revision": row["revision"], "first_seen_at": iso(row["first_seen_at"]),
                    "author": row["author"], "message": row["message"],
                    "committed_at": iso(row["committed_at"]),
                    "apps": len(json.loads(row["definitions"])),
                    "outcome": last[0] if last else None,
                    "trigger": last[2] if last else None,
                })
        return out

    def start_run(
        self, *, revision: str, trigger: str, requested_by: str | None, dry_run: bool
    ) -> int:
        with self._lock, self._tx() as conn:
            result = conn.execute(_runs.insert().values(
                revision=revision, trigger=trigger, requested_by=requested_by, dry_run=dry_run,
                started_at=self._clock()))
            return int(result.inserted_primary_key[0])

    def finish_run(
        self, run_id: int, *, outcome: str, error: str | None,
        summary: str | dict[str, Any] | None,
    ) -> None:
        if summary is not None and not isinstance(summary, str):
            summary = json.dumps(summary, sort_keys=True)
        with self._lock, self._tx() as conn:
            conn.execute(_runs.update().where(_runs.c.run_id == run_id).values(
                outcome=outcome, error=error, summary=summary, finished_at=self._clock()))

    def runs(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        query = sa.select(_runs).order_by(_runs.c.run_id.desc())
        if limit:
            query = query.limit(limit)
        with self._tx() as conn:
            return [_run_entry(r) for r in conn.execute(query).mappings()]

    # -- changes -----------------------------------------------------------------------------

    def record_deployment(
        self, *, run_id: int, app_id: str, action: str, revision: str,
        deployment_id: str | None, version: str | None, previous_version: str | None,
        purpose: str, patch: list[dict[str, Any]], deadline_seconds: float | None,
    ) -> int:
        """Record a change; call it as soon as Marathon answered with a deployment id."""
        with self._lock, self._tx() as conn:
            result = conn.execute(_changes.insert().values(
                run_id=run_id, app_id=app_id, action=action, revision=revision, purpose=purpose,
                patch=json.dumps(redact.mask(patch)), deployment_id=deployment_id,
                version=version, previous_version=previous_version,
                deadline_seconds=deadline_seconds, started_at=self._clock()))
            return int(result.inserted_primary_key[0])

    def finish_change(self, change_id: int, *, outcome: str, reason: str | None) -> None:
        with self._lock, self._tx() as conn:
            conn.execute(_changes.update().where(_changes.c.change_id == change_id).values(
                outcome=outcome, reason=reason, finished_at=self._clock()))

    def pending_changes(self) -> list[PendingChange]:
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(_changes).where(_changes.c.outcome.is_(None),
                                          _changes.c.deployment_id.is_not(None))
                .order_by(_changes.c.change_id)
            ).mappings().all()
        return [PendingChange(
            change_id=r["change_id"], run_id=r["run_id"], app_id=r["app_id"], action=r["action"],
            revision=r["revision"], deployment_id=r["deployment_id"], version=r["version"] or "",
            previous_version=r["previous_version"], purpose=r["purpose"],
            started_at=r["started_at"], deadline_seconds=r["deadline_seconds"]) for r in rows]

    def latest_revision_for(self, *, app_id: str) -> str | None:
        """The revision of the app's last successful change from Git."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(_changes.c.revision)
                .where(_changes.c.app_id == app_id, _changes.c.purpose == "change",
                       _changes.c.outcome == "succeeded")
                .order_by(_changes.c.change_id.desc())
            ).first()
        return None if row is None else str(row[0])

    def last_applied(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Per app: the revision and desired definition of its last successful sync.

        This is the desired state drift is measured against.
        """
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(_changes.c.app_id, _changes.c.revision, _revisions.c.definitions)
                .join(_revisions, _revisions.c.revision == _changes.c.revision)
                .where(_changes.c.outcome == "succeeded", _changes.c.purpose == "change")
                .order_by(_changes.c.change_id)
            ).all()
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        cache: dict[str, dict[str, Any]] = {}
        for app_id, revision, definitions in rows:
            if revision not in cache:
                cache[revision] = json.loads(definitions)
            definition = cache[revision].get(app_id)
            if definition is not None:
                out[app_id] = (revision, definition)
            else:
                out.pop(app_id, None)
        return out

    # -- rollbacks and quarantines -----------------------------------------------------------

    def record_rollback(
        self, *, run_id: int | None, app_id: str, from_version: str | None,
        to_version: str | None, reason: str | None, failure: str | None,
        stuck_step: str | None, method: str | None, outcome: str | None,
        requested_by: str | None,
    ) -> int:
        with self._lock, self._tx() as conn:
            result = conn.execute(_rollbacks.insert().values(
                run_id=run_id, app_id=app_id, from_version=from_version, to_version=to_version,
                reason=reason, failure=failure, stuck_step=stuck_step, method=method,
                outcome=outcome, requested_by=requested_by, at=self._clock()))
            return int(result.inserted_primary_key[0])

    def rollbacks(self, *, app_id: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(_rollbacks).order_by(_rollbacks.c.at.desc())
        if app_id:
            query = query.where(_rollbacks.c.app_id == app_id)
        with self._tx() as conn:
            return [_entry("rollback", r, "at") for r in conn.execute(query).mappings()]

    def quarantine(self, *, app_id: str, revision: str, reason: str | None) -> None:
        with self._lock, self._tx() as conn:
            if conn.execute(sa.select(_quarantines.c.quarantine_id).where(
                    _quarantines.c.app_id == app_id, _quarantines.c.revision == revision,
                    _quarantines.c.lifted_at.is_(None))).first() is not None:
                return
            conn.execute(_quarantines.insert().values(
                app_id=app_id, revision=revision, reason=reason, at=self._clock()))

    def is_quarantined(self, *, app_id: str, revision: str) -> bool:
        with self._tx() as conn:
            return conn.execute(sa.select(_quarantines.c.quarantine_id).where(
                _quarantines.c.app_id == app_id, _quarantines.c.revision == revision,
                _quarantines.c.lifted_at.is_(None))).first() is not None

    def lift_quarantine(
        self, *, app_id: str, revision: str | None = None, lifted_by: str | None = None
    ) -> int:
        """Lift the app's quarantine (of ``revision``, or all); returns how many were lifted."""
        condition = sa.and_(_quarantines.c.app_id == app_id, _quarantines.c.lifted_at.is_(None))
        if revision is not None:
            condition = sa.and_(condition, _quarantines.c.revision == revision)
        with self._lock, self._tx() as conn:
            result = conn.execute(_quarantines.update().where(condition).values(
                lifted_at=self._clock(), lifted_by=lifted_by))
            return int(result.rowcount)

    def active_quarantines(self) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(_quarantines).where(
                _quarantines.c.lifted_at.is_(None)).order_by(_quarantines.c.at.desc())).mappings()
            return [_entry("quarantine", r, "at") for r in rows]

    # -- drift -------------------------------------------------------------------------------

    def observe_drift(
        self, *, app_id: str, kind: str, patch: list[dict[str, Any]], fingerprint: str,
        policy: str, client_ip: str | None = None, uri: str | None = None,
        attributed_at: str | None = None, live_version: str | None = None,
    ) -> tuple[Drift, bool]:
        """Record drift seen now: the open record of the app is updated, or a new one opened.

        Returns the record and whether it is new (a transition worth a notification).
        """
        now = self._clock()
        masked = json.dumps(redact.mask(patch))
        with self._lock, self._tx() as conn:
            row = conn.execute(sa.select(_drifts).where(
                _drifts.c.app_id == app_id, _drifts.c.status.in_(("open", "flapping")))
                .order_by(_drifts.c.drift_id.desc())).mappings().first()
            attribution = {k: v for k, v in (("client_ip", client_ip), ("uri", uri),
                                             ("attributed_at", attributed_at)) if v}
            if row is not None:
                conn.execute(_drifts.update().where(_drifts.c.drift_id == row["drift_id"]).values(
                    last_seen_at=now, patch=masked, kind=kind, fingerprint=fingerprint,
                    live_version=live_version, **attribution))
                drift_id, created = row["drift_id"], False
            else:
                result = conn.execute(_drifts.insert().values(
                    app_id=app_id, kind=kind, patch=masked, fingerprint=fingerprint,
                    first_seen_at=now, last_seen_at=now, policy=policy, status="open",
                    corrections=0, live_version=live_version, **attribution))
                drift_id, created = int(result.inserted_primary_key[0]), True
        return self.drift(drift_id), created

    def attribute_drift(self, *, app_id: str, client_ip: str, uri: str, at: str) -> None:
        """Remember who last changed the app through Marathon's API (from ``api_post_event``)."""
        with self._lock, self._tx() as conn:
            conn.execute(_drifts.update().where(
                _drifts.c.app_id == app_id, _drifts.c.status.in_(("open", "flapping"))).values(
                client_ip=client_ip, uri=uri, attributed_at=at))

    def set_drift_action(
        self, drift_id: int, *, action: str, status: str | None = None,
        count_correction: bool = False,
    ) -> Drift:
        values: dict[str, Any] = {"action": action}
        if status is not None:
            values["status"] = status
            if status == "resolved":
                values["resolved_at"] = self._clock()
        if count_correction:
            values["corrections"] = _drifts.c.corrections + 1
        with self._lock, self._tx() as conn:
            conn.execute(_drifts.update().where(_drifts.c.drift_id == drift_id).values(**values))
        return self.drift(drift_id)

    def resolve_drift(self, *, app_id: str, action: str) -> list[Drift]:
        """Close the app's open drift (live equals desired again)."""
        with self._tx() as conn:
            ids = [r[0] for r in conn.execute(sa.select(_drifts.c.drift_id).where(
                _drifts.c.app_id == app_id, _drifts.c.status == "open"))]
        return [self.set_drift_action(i, action=action, status="resolved") for i in ids]

    def acknowledge_drift(self, drift_id: int, *, by: str) -> Drift:
        with self._lock, self._tx() as conn:
            conn.execute(_drifts.update().where(_drifts.c.drift_id == drift_id).values(
                acknowledged_by=by))
        return self.drift(drift_id)

    def recent_corrections(self, *, app_id: str, since: float) -> int:
        """How many drift records of the app were corrected since ``since`` (flapping)."""
        with self._tx() as conn:
            row = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(_drifts.c.corrections), 0))
                               .where(_drifts.c.app_id == app_id,
                                      _drifts.c.last_seen_at >= since)).first()
        return int(row[0]) if row else 0

    def drift(self, drift_id: int) -> Drift:
        with self._tx() as conn:
            row = conn.execute(sa.select(_drifts).where(
                _drifts.c.drift_id == drift_id)).mappings().one()
        return _drift(row)

    def drifts(
        self, *, open_only: bool = False, since: float | None = None, prefix: str | None = None,
        app_id: str | None = None,
    ) -> list[Drift]:
        """Drift records, open (and flapping) first, newest first."""
        query = sa.select(_drifts)
        if open_only:
            query = query.where(_drifts.c.status.in_(("open", "flapping")))
        if since is not None:
            query = query.where(_drifts.c.last_seen_at >= since)
        if app_id is not None:
            query = query.where(_drifts.c.app_id == app_id)
        elif prefix and prefix.strip("/"):
            base = "/" + prefix.strip("/")
            query = query.where(sa.or_(_drifts.c.app_id == base,
                                       _drifts.c.app_id.startswith(base + "/", autoescape=True)))
        with self._tx() as conn:
            rows = conn.execute(query.order_by(_drifts.c.last_seen_at.desc())).mappings().all()
        drifts = [_drift(r) for r in rows]
        return sorted(drifts, key=lambda d: d.status == "resolved")

    # -- audit and notifications -------------------------------------------------------------

    def audit(self, *, who: str, action: str, target: str | None, result: str | None) -> None:
        with self._lock, self._tx() as conn:
            conn.execute(_audit.insert().values(at=self._clock(), who=who, action=action,
                                                target=target, result=result))

    def audit_log(self) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(_audit).order_by(_audit.c.audit_id.desc())).mappings()
            return [{**dict(r), "at": iso(r["at"])} for r in rows]

    def claim_notification(self, key: str) -> bool:
        """True the first time ``key`` is claimed: notifications go out once per transition."""
        with self._lock, self._tx() as conn:
            if conn.execute(sa.select(_notifications.c.key).where(
                    _notifications.c.key == key)).first() is not None:
                return False
            conn.execute(_notifications.insert().values(key=key, at=self._clock()))
            return True

    # -- history -----------------------------------------------------------------------------

    def history(
        self, *, app_id: str | None = None, since: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Runs, changes, rollbacks and quarantines in time order (never truncated)."""
        after = since.timestamp() if since else None
        entries: list[tuple[float, dict[str, Any]]] = []
        with self._tx() as conn:
            if app_id is None:
                query = sa.select(_runs)
                if after is not None:
                    query = query.where(_runs.c.started_at >= after)
                entries += [(r["started_at"], _run_entry(r))
                            for r in conn.execute(query).mappings()]
            for table, kind, at in ((_changes, "change", "started_at"),
                                    (_rollbacks, "rollback", "at"),
                                    (_quarantines, "quarantine", "at")):
                query = sa.select(table)
                if app_id is not None:
                    query = query.where(table.c.app_id == app_id)
                if after is not None:
                    query = query.where(table.c[at] >= after)
                entries += [(r[at], _entry(kind, r, at)) for r in conn.execute(query).mappings()]
        return [e for _, e in sorted(entries, key=lambda pair: pair[0])]


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _entry(kind: str, row: Any, at: str) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind, **dict(row)}
    for key in ("at", "started_at", "finished_at", "lifted_at"):
        if key in out:
            out[key] = iso(out[key])
    if "patch" in out and isinstance(out["patch"], str):
        out["patch"] = json.loads(out["patch"])
    out.setdefault("at", out.get(at))
    return out


def _run_entry(row: Any) -> dict[str, Any]:
    return _entry("run", row, "started_at")


def _drift(row: Any) -> Drift:
    return Drift(
        drift_id=row["drift_id"], app_id=row["app_id"], kind=row["kind"],
        patch=json.loads(row["patch"]), first_seen_at=iso(row["first_seen_at"]) or "",
        last_seen_at=iso(row["last_seen_at"]) or "", client_ip=row["client_ip"], uri=row["uri"],
        attributed_at=row["attributed_at"], live_version=row["live_version"],
        policy=row["policy"], action=row["action"], status=row["status"],
        corrections=row["corrections"], resolved_at=iso(row["resolved_at"]),
        acknowledged_by=row["acknowledged_by"],
    )


def open_store(state_dir: Path, *, url: str | None = None) -> RecordStore:
    """The store at ``url``, or SQLite in ``state_dir`` (created if missing)."""
    if url is None:
        state_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{state_dir / 'reconciler.db'}"
    return RecordStore(url)
