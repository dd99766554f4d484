"""The record store: the only module that touches the database.

Everything reconciler did, durably: revisions seen (with the desired definitions of each),
sync runs, per-app changes (recorded with their Marathon deployment id *before* waiting on
it, so a run that starts after a crash can wait on them instead of starting duplicates),
rollbacks, quarantines, drift (with each correction, for flapping detection), the audit of
requested actions and the notifications already sent. History is never truncated.

SQLAlchemy Core over SQLite under the state directory by default (WAL, so the controller
thread writes while web server threads read); the same code runs on PostgreSQL
(``postgresql+psycopg://...``). Times are stored as UNIX seconds (UTC, from the injected
clock) and handed out as ISO-8601 strings. Queries return frozen dataclasses, except
:meth:`RecordStore.history`, a time-ordered feed of plain dicts of several kinds.

Patches are masked before they are stored; the desired definitions of a revision are kept
as they are, because a rollback to that revision must send them to Marathon again.

Vocabulary of the free-text columns: run triggers are ``poll``, ``webhook``, ``manual``,
``drift-correction``, ``cli`` and ``rollback``; outcomes are :class:`model.Outcome` values;
change purposes are ``change`` (from Git) and ``rollback``; drift status is ``open``,
``flapping`` or ``resolved``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc

from reconciler.core import drift as drifting
from reconciler.core import redact

SCHEMA_VERSION = 2
"""Bump it with a step in ``_MIGRATIONS`` whenever a table or column is added."""

Clock = Callable[[], float]
When = dt.datetime | float
"""A point in time: an aware datetime, or UNIX seconds."""

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
    sa.Column("source", sa.Text),
    sa.Column("ref", sa.Text),
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
_drift_corrections = sa.Table(
    "drift_corrections", _metadata,
    sa.Column("correction_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("drift_id", sa.Integer, nullable=False, index=True),
    sa.Column("app_id", sa.Text, nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
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

_OPEN_DRIFT = ("open", "flapping")


class StoreUnavailable(Exception):
    """The database cannot be opened or written: stop and alert (disk, URL, credentials)."""


def iso(seconds: float | None) -> str | None:
    """UNIX seconds as an ISO-8601 UTC time (``2026-11-25T06:11:46+00:00``)."""
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


def definition_digest(definition: Mapping[str, Any]) -> str:
    """A stable digest of a desired definition (key order does not matter)."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


# -- what the queries return ---------------------------------------------------------------


@dataclass(frozen=True)
class Revision:
    revision: str
    """Git commit sha, or ``dir:<content digest>``."""
    source: str | None
    ref: str | None
    author: str | None
    message: str | None
    committed_at: str | None
    first_seen_at: str
    apps: int
    """How many apps this revision's desired state holds."""
    last_outcome: str | None
    """Outcome of the last (not dry) run of this revision, None when it never ran."""
    last_trigger: str | None


@dataclass(frozen=True)
class Run:
    run_id: int
    revision: str
    trigger: str
    requested_by: str | None
    dry_run: bool
    started_at: str
    finished_at: str | None
    outcome: str | None
    """None while the run is in progress (or when the controller died during it)."""
    error: str | None
    summary: str | None


@dataclass(frozen=True)
class Change:
    change_id: int
    run_id: int
    app_id: str
    action: str
    revision: str
    purpose: str
    patch: tuple[dict[str, Any], ...]
    """RFC 6902 operations, secrets masked."""
    deployment_id: str | None
    version: str | None
    previous_version: str | None
    """The live Marathon version before this change (what a rollback returns to)."""
    deadline_seconds: float | None
    started_at: str
    finished_at: str | None
    outcome: str | None
    reason: str | None


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
    """UNIX seconds (the engine computes deadlines from it)."""
    deadline_seconds: float | None


@dataclass(frozen=True)
class Rollback:
    rollback_id: int
    run_id: int | None
    app_id: str
    from_version: str | None
    to_version: str | None
    reason: str | None
    """Why: deadline missed, deployment failed, manual."""
    failure: str | None
    """Marathon's ``lastTaskFailure`` message, when there was one."""
    stuck_step: str | None
    method: str | None
    outcome: str | None
    requested_by: str | None
    at: str


@dataclass(frozen=True)
class Quarantine:
    quarantine_id: int
    app_id: str
    revision: str
    reason: str | None
    at: str
    lifted_at: str | None
    lifted_by: str | None


@dataclass(frozen=True)
class Applied:
    """The last desired state applied successfully to one app: what drift is measured against."""

    app_id: str
    revision: str
    definition: dict[str, Any]
    digest: str
    applied_at: str


@dataclass(frozen=True)
class Drift:
    drift_id: int
    app_id: str
    kind: str
    """``scale`` (only instances differ) or ``config``."""
    patch: tuple[dict[str, Any], ...]
    """JSON Patch from desired to live, secrets masked."""
    first_seen_at: str
    last_seen_at: str
    client_ip: str | None
    uri: str | None
    attributed_at: str | None
    live_version: str | None
    policy: str
    action: str | None
    """What was done: ``corrected``, ``reported``, ``flapping-stopped``, ``acknowledged``."""
    status: str
    """``open``, ``flapping`` or ``resolved``."""
    corrections: int
    corrected_at: tuple[str, ...]
    resolved_at: str | None
    acknowledged_by: str | None

    @property
    def suggested_ignore(self) -> str | None:
        """For flapping drift: the ``reconciler.yaml`` lines that would accept these changes
        (something outside Git owns the fields, an autoscaler say); None otherwise."""
        if self.status != "flapping":
            return None
        return drifting.suggested_ignore(self.app_id, [op["path"] for op in self.patch])


@dataclass(frozen=True)
class AuditEntry:
    audit_id: int
    at: str
    who: str
    action: str
    target: str | None
    result: str | None


# -- the store -----------------------------------------------------------------------------


class RecordStore:
    """Typed access to the records; safe to share between threads.

    Writes are serialized by a lock (SQLite allows one writer; on PostgreSQL it keeps
    read-then-write steps such as :meth:`claim_notification` atomic within the process).
    """

    def __init__(self, url: str, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self.url = sa.engine.make_url(url).render_as_string(hide_password=True)
        """The database URL with its password hidden, fit for logs."""
        try:
            if url.startswith("sqlite"):
                self._engine = sa.create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 30}
                )
                sa.event.listen(self._engine, "connect", _sqlite_pragmas)
            else:
                self._engine = sa.create_engine(url, pool_pre_ping=True)
            with self._lock:
                _metadata.create_all(self._engine)
                self._migrate()
        except sqlalchemy.exc.SQLAlchemyError as e:
            raise StoreUnavailable(f"cannot open the record store {self.url}: "
                                   f"{type(e.orig if hasattr(e, 'orig') else e).__name__}: "
                                   f"{_first_line(e)}") from e

    def _migrate(self) -> None:
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(_schema.c.version)).first()
            if row is None:
                conn.execute(_schema.insert().values(version=SCHEMA_VERSION))
                return
            version = int(row[0])
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"the record store {self.url} has schema version {version}, newer than "
                    f"this reconciler's {SCHEMA_VERSION}: upgrade reconciler")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[step](conn)
            if version != SCHEMA_VERSION:
                conn.execute(_schema.update().values(version=SCHEMA_VERSION))

    def schema_version(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(_schema.c.version)).scalar_one())

    def close(self) -> None:
        self._engine.dispose()

    def _tx(self) -> Any:
        return self._engine.begin()

    def _now(self) -> float:
        return float(self._clock())

    # -- revisions and runs ------------------------------------------------------------------

    def record_revision(
        self, *, revision: str, definitions: Mapping[str, Any], author: str | None = None,
        message: str | None = None, committed_at: When | None = None,
        source: str | None = None, ref: str | None = None,
    ) -> None:
        """Remember a revision and its desired definitions (per app id) the first time."""
        with self._lock, self._tx() as conn:
            if conn.execute(sa.select(_revisions.c.revision).where(
                    _revisions.c.revision == revision)).first() is not None:
                return
            conn.execute(_revisions.insert().values(
                revision=revision, first_seen_at=self._now(), author=author, message=message,
                committed_at=None if committed_at is None else _seconds(committed_at),
                definitions=json.dumps(dict(definitions), sort_keys=True),
                source=source, ref=ref))

    def resolve_revision(self, prefix: str) -> str | None:
        """The newest recorded revision starting with ``prefix`` (a short sha)."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(_revisions.c.revision)
                .where(_revisions.c.revision.startswith(prefix, autoescape=True))
                .order_by(_revisions.c.first_seen_at.desc())
            ).first()
        return None if row is None else str(row[0])

    def desired_definition(self, *, revision: str, app_id: str) -> dict[str, Any] | None:
        """The app's desired definition in ``revision``; None if the revision lacks the app."""
        with self._tx() as conn:
            row = conn.execute(sa.select(_revisions.c.definitions).where(
                _revisions.c.revision == revision)).first()
        if row is None:
            return None
        definition: dict[str, Any] | None = json.loads(row[0]).get(app_id)
        return definition

    def revisions(self) -> list[Revision]:
        """Revisions seen, newest first, with the outcome of their last run."""
        last_run = (
            sa.select(_runs.c.revision, sa.func.max(_runs.c.run_id).label("run_id"))
            .where(_runs.c.dry_run.is_(False)).group_by(_runs.c.revision).subquery()
        )
        query = (
            sa.select(_revisions, _runs.c.outcome.label("last_outcome"),
                      _runs.c.trigger.label("last_trigger"))
            .outerjoin(last_run, last_run.c.revision == _revisions.c.revision)
            .outerjoin(_runs, _runs.c.run_id == last_run.c.run_id)
            .order_by(_revisions.c.first_seen_at.desc(), _revisions.c.revision)
        )
        with self._tx() as conn:
            rows = conn.execute(query).mappings().all()
        return [Revision(
            revision=r["revision"], source=r["source"], ref=r["ref"], author=r["author"],
            message=r["message"], committed_at=iso(r["committed_at"]),
            first_seen_at=_iso(r["first_seen_at"]), apps=len(json.loads(r["definitions"])),
            last_outcome=r["last_outcome"], last_trigger=r["last_trigger"]) for r in rows]

    def start_run(
        self, *, revision: str, trigger: str, requested_by: str | None, dry_run: bool
    ) -> int:
        """Open a run record (outcome empty until :meth:`finish_run`); returns its id."""
        with self._lock, self._tx() as conn:
            result = conn.execute(_runs.insert().values(
                revision=revision, trigger=trigger, requested_by=requested_by, dry_run=dry_run,
                started_at=self._now()))
            return int(result.inserted_primary_key[0])

    def finish_run(
        self, run_id: int, *, outcome: str, error: str | None,
        summary: str | Mapping[str, Any] | None,
    ) -> None:
        if summary is not None and not isinstance(summary, str):
            summary = json.dumps(dict(summary), sort_keys=True)
        with self._lock, self._tx() as conn:
            conn.execute(_runs.update().where(_runs.c.run_id == run_id).values(
                outcome=outcome, error=error, summary=summary, finished_at=self._now()))

    def runs(self, *, limit: int | None = None) -> list[Run]:
        """Runs, newest first (all of them unless ``limit``)."""
        query = sa.select(_runs).order_by(_runs.c.run_id.desc())
        if limit:
            query = query.limit(limit)
        with self._tx() as conn:
            return [_run(r) for r in conn.execute(query).mappings()]

    def run(self, run_id: int) -> Run:
        with self._tx() as conn:
            row = conn.execute(sa.select(_runs).where(_runs.c.run_id == run_id)).mappings().first()
        if row is None:
            raise KeyError(f"no run {run_id}")
        return _run(row)

    # -- changes -----------------------------------------------------------------------------

    def record_deployment(
        self, *, run_id: int, app_id: str, action: str, revision: str,
        deployment_id: str | None, version: str | None, previous_version: str | None,
        purpose: str, patch: Sequence[Mapping[str, Any]], deadline_seconds: float | None,
    ) -> int:
        """Record a change; call it as soon as Marathon answered with a deployment id.

        The patch is masked here, whatever the caller passed.
        """
        masked = redact.mask_patch([dict(op) for op in patch])
        with self._lock, self._tx() as conn:
            result = conn.execute(_changes.insert().values(
                run_id=run_id, app_id=app_id, action=action, revision=revision, purpose=purpose,
                patch=json.dumps(list(masked)), deployment_id=deployment_id,
                version=version, previous_version=previous_version,
                deadline_seconds=deadline_seconds, started_at=self._now()))
            return int(result.inserted_primary_key[0])

    def finish_change(self, change_id: int, *, outcome: str, reason: str | None) -> None:
        with self._lock, self._tx() as conn:
            conn.execute(_changes.update().where(_changes.c.change_id == change_id).values(
                outcome=outcome, reason=reason, finished_at=self._now()))

    def changes(self, *, run_id: int | None = None, app_id: str | None = None) -> list[Change]:
        """Changes in the order they were started."""
        query = sa.select(_changes).order_by(_changes.c.change_id)
        if run_id is not None:
            query = query.where(_changes.c.run_id == run_id)
        if app_id is not None:
            query = query.where(_changes.c.app_id == app_id)
        with self._tx() as conn:
            return [_change(r) for r in conn.execute(query).mappings()]

    def pending_changes(self) -> list[PendingChange]:
        """Changes with a deployment and no outcome: a restarted controller waits on them."""
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

    def last_applied(self) -> dict[str, Applied]:
        """Per app: the revision and desired definition of its last successful change.

        This is the desired state drift is measured against. An app whose last successful
        change deleted it is absent.
        """
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(_changes.c.app_id, _changes.c.revision, _changes.c.finished_at,
                          _changes.c.started_at, _revisions.c.definitions)
                .join(_revisions, _revisions.c.revision == _changes.c.revision)
                .where(_changes.c.outcome == "succeeded", _changes.c.purpose == "change")
                .order_by(_changes.c.change_id)
            ).all()
        out: dict[str, Applied] = {}
        parsed: dict[str, dict[str, Any]] = {}
        for app_id, revision, finished_at, started_at, definitions in rows:
            if revision not in parsed:
                parsed[revision] = json.loads(definitions)
            definition = parsed[revision].get(app_id)
            if definition is None:
                out.pop(app_id, None)
                continue
            out[app_id] = Applied(app_id=app_id, revision=revision, definition=definition,
                                  digest=definition_digest(definition),
                                  applied_at=_iso(finished_at or started_at))
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
                outcome=outcome, requested_by=requested_by, at=self._now()))
            return int(result.inserted_primary_key[0])

    def rollbacks(self, *, app_id: str | None = None) -> list[Rollback]:
        """Rollbacks, newest first."""
        query = sa.select(_rollbacks).order_by(_rollbacks.c.at.desc(),
                                               _rollbacks.c.rollback_id.desc())
        if app_id:
            query = query.where(_rollbacks.c.app_id == app_id)
        with self._tx() as conn:
            return [Rollback(**{**r, "at": _iso(r["at"])})
                    for r in conn.execute(query).mappings()]

    def quarantine(self, *, app_id: str, revision: str, reason: str | None) -> None:
        """Keep ``revision`` away from the app until someone lifts it (idempotent)."""
        with self._lock, self._tx() as conn:
            if conn.execute(sa.select(_quarantines.c.quarantine_id).where(
                    _quarantines.c.app_id == app_id, _quarantines.c.revision == revision,
                    _quarantines.c.lifted_at.is_(None))).first() is not None:
                return
            conn.execute(_quarantines.insert().values(
                app_id=app_id, revision=revision, reason=reason, at=self._now()))

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
                lifted_at=self._now(), lifted_by=lifted_by))
            return int(result.rowcount)

    def active_quarantines(self) -> list[Quarantine]:
        """Quarantines not lifted, newest first."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(_quarantines).where(
                _quarantines.c.lifted_at.is_(None)).order_by(
                _quarantines.c.at.desc(), _quarantines.c.quarantine_id.desc())).mappings()
            return [_quarantine(r) for r in rows]

    # -- drift -------------------------------------------------------------------------------

    def observe_drift(
        self, *, app_id: str, kind: str, patch: Sequence[Mapping[str, Any]], fingerprint: str,
        policy: str, client_ip: str | None = None, uri: str | None = None,
        attributed_at: str | None = None, live_version: str | None = None,
    ) -> tuple[Drift, bool]:
        """Record drift seen now: the open record of the app is updated, or a new one opened.

        Returns the record and whether it is new (a transition worth a notification).
        """
        now = self._now()
        masked = json.dumps(list(redact.mask_patch([dict(op) for op in patch])))
        attribution = {k: v for k, v in (("client_ip", client_ip), ("uri", uri),
                                         ("attributed_at", attributed_at)) if v}
        with self._lock, self._tx() as conn:
            row = conn.execute(sa.select(_drifts).where(
                _drifts.c.app_id == app_id, _drifts.c.status.in_(_OPEN_DRIFT))
                .order_by(_drifts.c.drift_id.desc())).mappings().first()
            if row is not None:
                conn.execute(_drifts.update().where(_drifts.c.drift_id == row["drift_id"]).values(
                    last_seen_at=now, patch=masked, kind=kind, fingerprint=fingerprint,
                    live_version=live_version, **attribution))
                drift_id, created = int(row["drift_id"]), False
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
                _drifts.c.app_id == app_id, _drifts.c.status.in_(_OPEN_DRIFT)).values(
                client_ip=client_ip, uri=uri, attributed_at=at))

    def set_drift_action(
        self, drift_id: int, *, action: str, status: str | None = None,
        count_correction: bool = False,
    ) -> Drift:
        """Record what was done about a drift; ``count_correction`` when live was corrected."""
        now = self._now()
        values: dict[str, Any] = {"action": action}
        if status is not None:
            values["status"] = status
            if status == "resolved":
                values["resolved_at"] = now
        if count_correction:
            values["corrections"] = _drifts.c.corrections + 1
        with self._lock, self._tx() as conn:
            app_id = conn.execute(sa.select(_drifts.c.app_id).where(
                _drifts.c.drift_id == drift_id)).scalar_one()
            conn.execute(_drifts.update().where(_drifts.c.drift_id == drift_id).values(**values))
            if count_correction:
                conn.execute(_drift_corrections.insert().values(
                    drift_id=drift_id, app_id=app_id, at=now))
        return self.drift(drift_id)

    def resolve_drift(self, *, app_id: str, action: str) -> list[Drift]:
        """Close the app's open (or flapping) drift: live equals desired again."""
        with self._tx() as conn:
            ids = [r[0] for r in conn.execute(sa.select(_drifts.c.drift_id).where(
                _drifts.c.app_id == app_id, _drifts.c.status.in_(_OPEN_DRIFT)))]
        return [self.set_drift_action(i, action=action, status="resolved") for i in ids]

    def acknowledge_drift(self, drift_id: int, *, by: str) -> Drift:
        with self._lock, self._tx() as conn:
            conn.execute(_drifts.update().where(_drifts.c.drift_id == drift_id).values(
                acknowledged_by=by, action="acknowledged"))
        return self.drift(drift_id)

    def recent_corrections(self, *, app_id: str, since: When) -> int:
        """How many times the app's drift was corrected since ``since`` (flapping detection)."""
        with self._tx() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(_drift_corrections).where(
                    _drift_corrections.c.app_id == app_id,
                    _drift_corrections.c.at >= _seconds(since))).scalar_one())

    def drift(self, drift_id: int) -> Drift:
        with self._tx() as conn:
            row = conn.execute(sa.select(_drifts).where(
                _drifts.c.drift_id == drift_id)).mappings().one()
            times = conn.execute(sa.select(_drift_corrections.c.at).where(
                _drift_corrections.c.drift_id == drift_id).order_by(
                _drift_corrections.c.correction_id)).scalars().all()
        return _drift(row, times)

    def drifts(
        self, *, open_only: bool = False, since: When | None = None, prefix: str | None = None,
        app_id: str | None = None,
    ) -> list[Drift]:
        """Drift records, open (and flapping) first, then newest first.

        ``since`` keeps those seen since then; ``prefix`` those of a group (``/dirac``).
        """
        query = sa.select(_drifts)
        if open_only:
            query = query.where(_drifts.c.status.in_(_OPEN_DRIFT))
        if since is not None:
            query = query.where(_drifts.c.last_seen_at >= _seconds(since))
        if app_id is not None:
            query = query.where(_drifts.c.app_id == app_id)
        elif prefix and prefix.strip("/"):
            base = "/" + prefix.strip("/")
            query = query.where(sa.or_(_drifts.c.app_id == base,
                                       _drifts.c.app_id.startswith(base + "/", autoescape=True)))
        with self._tx() as conn:
            rows = conn.execute(query.order_by(_drifts.c.last_seen_at.desc(),
                                               _drifts.c.drift_id.desc())).mappings().all()
            times: dict[int, list[float]] = {}
            if rows:
                for drift_id, at in conn.execute(
                        sa.select(_drift_corrections.c.drift_id, _drift_corrections.c.at)
                        .where(_drift_corrections.c.drift_id.in_([r["drift_id"] for r in rows]))
                        .order_by(_drift_corrections.c.correction_id)):
                    times.setdefault(drift_id, []).append(at)
        drifts = [_drift(r, times.get(r["drift_id"], [])) for r in rows]
        return sorted(drifts, key=lambda d: d.status == "resolved")

    # -- audit and notifications -------------------------------------------------------------

    def audit(self, *, who: str, action: str, target: str | None, result: str | None) -> None:
        """Record an action someone asked for through the API or the CLI, and its result."""
        with self._lock, self._tx() as conn:
            conn.execute(_audit.insert().values(at=self._now(), who=who, action=action,
                                                target=target, result=result))

    def audit_log(self, *, limit: int | None = None, before: int | None = None
                  ) -> list[AuditEntry]:
        """Audit entries, newest first: at most ``limit``, older than audit id ``before``."""
        query = sa.select(_audit).order_by(_audit.c.audit_id.desc()).limit(limit)
        if before is not None:
            query = query.where(_audit.c.audit_id < before)
        with self._tx() as conn:
            rows = conn.execute(query).mappings()
            return [AuditEntry(**{**r, "at": _iso(r["at"])}) for r in rows]

    def claim_notification(self, key: str) -> bool:
        """True the first time ``key`` is claimed: notifications go out once per transition."""
        with self._lock:
            try:
                with self._tx() as conn:
                    conn.execute(_notifications.insert().values(key=key, at=self._now()))
            except sqlalchemy.exc.IntegrityError:
                return False  # claimed before, by this process or another one
            return True

    # -- history -----------------------------------------------------------------------------

    def history(
        self, *, app_id: str | None = None, since: When | None = None
    ) -> list[dict[str, Any]]:
        """Runs, changes, rollbacks and quarantines in time order (never truncated).

        Each entry is a plain dict with a ``kind`` (``run``, ``change``, ``rollback``,
        ``quarantine``), an ``at`` (ISO-8601) and the fields of its record. Runs are left
        out when ``app_id`` is given (a run is about every app).
        """
        after = None if since is None else _seconds(since)
        entries: list[tuple[float, int, dict[str, Any]]] = []
        with self._tx() as conn:
            sources: list[tuple[sa.Table, str, str]] = [
                (_changes, "change", "started_at"), (_rollbacks, "rollback", "at"),
                (_quarantines, "quarantine", "at")]
            if app_id is None:
                sources.insert(0, (_runs, "run", "started_at"))
            for order, (table, kind, at) in enumerate(sources):
                query = sa.select(table).order_by(*table.primary_key.columns)
                if app_id is not None:
                    query = query.where(table.c.app_id == app_id)
                if after is not None:
                    query = query.where(table.c[at] >= after)
                entries += [(r[at], order, _entry(kind, r, at))
                            for r in conn.execute(query).mappings()]
        # Stable sort: at equal times, runs come before their changes, rollbacks, quarantines.
        return [e for _, _, e in sorted(entries, key=lambda item: (item[0], item[1]))]


def open_store(
    state_dir: Path, *, url: str | None = None, clock: Clock = time.time
) -> RecordStore:
    """The store at ``url``, or SQLite in ``state_dir`` (created if missing)."""
    if url is None:
        state_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{state_dir / 'reconciler.db'}"
    return RecordStore(url, clock=clock)


# -- private helpers -----------------------------------------------------------------------


def _migrate_to_2(conn: sa.Connection) -> None:
    """Version 2: revisions know their source and ref; corrections are rows of their own.

    New tables come from ``create_all``; only columns added to existing tables need work.
    """
    present = {c["name"] for c in sa.inspect(conn).get_columns("revisions")}
    for name in ("source", "ref"):
        if name not in present:
            conn.execute(sa.text(f"ALTER TABLE revisions ADD COLUMN {name} TEXT"))


_MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {2: _migrate_to_2}


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _seconds(when: When) -> float:
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            raise ValueError(f"{when.isoformat()} has no time zone: pass an aware UTC datetime")
        return when.timestamp()
    return float(when)


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _entry(kind: str, row: Any, at: str) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind, **dict(row)}
    for key in ("at", "started_at", "finished_at", "lifted_at"):
        if key in out:
            out[key] = iso(out[key])
    if "patch" in out and isinstance(out["patch"], str):
        out["patch"] = json.loads(out["patch"])
    out.setdefault("at", out.get(at))
    return out


def _run(row: Any) -> Run:
    return Run(
        run_id=row["run_id"], revision=row["revision"], trigger=row["trigger"],
        requested_by=row["requested_by"], dry_run=bool(row["dry_run"]),
        started_at=_iso(row["started_at"]), finished_at=iso(row["finished_at"]),
        outcome=row["outcome"], error=row["error"], summary=row["summary"])


def _change(row: Any) -> Change:
    return Change(**{**row, "patch": tuple(json.loads(row["patch"])),
                     "started_at": _iso(row["started_at"]),
                     "finished_at": iso(row["finished_at"])})


def _quarantine(row: Any) -> Quarantine:
    return Quarantine(**{**row, "at": _iso(row["at"]), "lifted_at": iso(row["lifted_at"])})


def _drift(row: Any, corrected_at: Sequence[float]) -> Drift:
    return Drift(
        drift_id=row["drift_id"], app_id=row["app_id"], kind=row["kind"],
        patch=tuple(json.loads(row["patch"])), first_seen_at=_iso(row["first_seen_at"]),
        last_seen_at=_iso(row["last_seen_at"]), client_ip=row["client_ip"], uri=row["uri"],
        attributed_at=row["attributed_at"], live_version=row["live_version"],
        policy=row["policy"], action=row["action"], status=row["status"],
        corrections=row["corrections"], corrected_at=tuple(_iso(t) for t in corrected_at),
        resolved_at=iso(row["resolved_at"]), acknowledged_by=row["acknowledged_by"],
    )
