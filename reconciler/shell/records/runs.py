"""What reconciler did to Marathon: revisions seen, sync runs, changes, rollbacks, quarantines.

Each change is recorded with its Marathon deployment id *before* the engine waits on it, so
that a run starting after a crash waits on it instead of starting a duplicate. The desired
definitions of a revision are kept as they are (a rollback to that revision sends them to
Marathon again); patches are masked before they are stored. History is never truncated.
"""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from reconciler.core import redact
from reconciler.shell.records import database, releases, rows, schema

_revisions, _runs, _changes = schema.revisions, schema.runs, schema.changes
_rollbacks, _quarantines = schema.rollbacks, schema.quarantines
_NEWEST_REVISION_FIRST = (_revisions.c.first_seen_at.desc(), _revisions.c.revision)
_RECENT_REVISIONS = 2
_FEW_APPS = 500
"""Apps asked for at most whose last changes are looked up by id (more: every app's last
change is read, and those asked for kept)."""


class RunStore(database.Store):
    """Revisions, runs and changes, rollbacks and quarantines, and their history."""

    def __init__(self, db: database.Database) -> None:
        super().__init__(db)
        self._app_count_memo: dict[str, int] = {}
        self._recent_definitions: collections.OrderedDict[str, dict[str, dict[str, Any]]] = (
            collections.OrderedDict())
        """The definitions of the last revisions read or recorded (a revision never
        changes; the read side and the drift baselines ask for the newest ones all the
        time). Never mutate them."""
        self._recent_lock = threading.Lock()
        self._wanted: dict[str, str] = {}
        """The revision last recorded (the controller's desired state) and the one last
        asked for whole (the read side's newest): their definitions stay in memory."""

    # -- revisions and runs ------------------------------------------------------------------

    def record_revision(
        self, *, revision: str, definitions: Mapping[str, Any], author: str | None = None,
        message: str | None = None, committed_at: database.When | None = None,
        source: str | None = None, ref: str | None = None,
    ) -> None:
        """Remember a revision and its desired definitions (per app id) the first time.

        The definitions are kept in memory too (:meth:`desired_definitions`, the last
        applied): the controller's own objects, not a second parsed copy of 10,000 apps.
        """
        with self._recent_lock:
            self._wanted["recorded"] = revision
        with self._db.lock, self._db.begin() as conn:
            if conn.execute(sa.select(_revisions.c.revision).where(
                    _revisions.c.revision == revision)).first() is not None:
                return  # the first recording stands, in memory as in the table
            # Values as parameters, not in the statement: SQLAlchemy's statement cache keeps
            # the first statement of each shape, with what ``.values()`` put in it (8 MB of
            # definitions at 10,000 apps, for the life of the process).
            conn.execute(_revisions.insert(), {
                "revision": revision, "first_seen_at": self._db.now(), "author": author,
                "message": message,
                "committed_at": None if committed_at is None else database.seconds(committed_at),
                # orjson: a tenth of the time json.dumps holds the interpreter lock on
                # 10,000 definitions (0.4 s: every page would wait).
                "definitions": orjson.dumps(dict(definitions),
                                            option=orjson.OPT_SORT_KEYS).decode(),
                "source": source, "ref": ref})
        self._keep_definitions(revision, dict(definitions))

    def resolve_revision(self, prefix: str) -> str | None:
        """The newest recorded revision starting with ``prefix`` (a short sha)."""
        with self._db.begin() as conn:
            row = conn.execute(
                sa.select(_revisions.c.revision)
                .where(_revisions.c.revision.startswith(prefix, autoescape=True))
                .order_by(_revisions.c.first_seen_at.desc())
            ).first()
        return None if row is None else str(row[0])

    def desired_definition(self, *, revision: str, app_id: str) -> dict[str, Any] | None:
        """The app's desired definition in ``revision``; None if the revision lacks the app."""
        return self.desired_definitions(revision).get(app_id)

    def desired_definitions(self, revision: str) -> dict[str, dict[str, Any]]:
        """Every desired definition of ``revision`` by app id (empty: unknown revision).

        A revision's definitions never change once recorded: the last one read is kept
        (the read side asks for the newest revision on every page). Do not mutate.
        """
        with self._recent_lock:
            self._wanted["asked"] = revision
        with self._db.begin() as conn:
            return self._definitions(conn, {revision}).get(revision, {})

    def _definitions(self, conn: sa.Connection, revisions: set[str]
                     ) -> dict[str, dict[str, dict[str, Any]]]:
        """Each revision's definitions, the last few revisions from memory."""
        with self._recent_lock:
            out = {r: self._recent_definitions[r] for r in revisions
                   if r in self._recent_definitions}
        missing = sorted(revisions - out.keys())
        if missing:
            found = conn.execute(sa.select(_revisions.c.revision, _revisions.c.definitions)
                                 .where(_revisions.c.revision.in_(missing))).all()
            for revision, definitions in found:
                out[revision] = orjson.loads(definitions)
                self._keep_definitions(revision, out[revision])
        return out

    def _keep_definitions(self, revision: str, definitions: dict[str, dict[str, Any]]
                          ) -> None:
        with self._recent_lock:
            self._recent_definitions[revision] = definitions
            self._recent_definitions.move_to_end(revision)
            while len(self._recent_definitions) > _RECENT_REVISIONS:
                self._recent_definitions.popitem(last=False)

    def _keep_definitions_of(self, revisions: set[str]) -> None:
        """Forget the definitions kept of other revisions than these and the wanted ones."""
        with self._recent_lock:
            keep = revisions | set(self._wanted.values())
            for revision in [r for r in self._recent_definitions if r not in keep]:
                del self._recent_definitions[revision]

    def seen_revisions(self) -> list[rows.SeenRevision]:
        """Revisions seen, newest first, as first seen (what the status board and the
        notices name; :meth:`revisions` also reads how each went, every release's apps)."""
        columns = [c for c in _revisions.c if c.name != "definitions"]
        with self._db.begin() as conn:
            found = database.all_rows(conn, sa.select(*columns), order_by=_NEWEST_REVISION_FIRST)
        return [rows.SeenRevision(
            revision=r["revision"], source=r["source"], ref=r["ref"], author=r["author"],
            message=r["message"], committed_at=rows.iso(r["committed_at"]),
            first_seen_at=rows.iso(r["first_seen_at"])) for r in found]

    def revisions(self) -> list[rows.Revision]:
        """Revisions seen, newest first, with their outcome: the release's when the revision
        was released (a rolled-back release stays rolled back), else that of the last run
        that did something (no-op runs never count)."""
        last_run = (
            sa.select(_runs.c.revision, sa.func.max(_runs.c.run_id).label("run_id"))
            .where(_runs.c.dry_run.is_(False), did_something())
            .group_by(_runs.c.revision).subquery()
        )
        columns = [c for c in _revisions.c if c.name != "definitions"]
        query = (
            sa.select(*columns, _runs.c.outcome.label("last_outcome"),
                      _runs.c.trigger.label("last_trigger"))
            .outerjoin(last_run, last_run.c.revision == _revisions.c.revision)
            .outerjoin(_runs, _runs.c.run_id == last_run.c.run_id)
        )
        with self._db.begin() as conn:
            found = list(database.all_rows(conn, query, order_by=_NEWEST_REVISION_FIRST))
            released = releases.outcomes(conn)
            counts = self._app_counts(conn, [r["revision"] for r in found])
        return [rows.Revision(
            revision=r["revision"], source=r["source"], ref=r["ref"], author=r["author"],
            message=r["message"], committed_at=rows.iso(r["committed_at"]),
            first_seen_at=rows.iso(r["first_seen_at"]), apps=counts.get(r["revision"], 0),
            last_outcome=released.get(r["revision"], r["last_outcome"]),
            last_trigger=r["last_trigger"]) for r in found]

    def _app_counts(self, conn: sa.Connection, revisions: list[str]) -> dict[str, int]:
        """Apps per revision, each revision's definitions parsed once in the store's life
        (they never change; listing revisions must not parse 10,000 apps per revision)."""
        missing = [r for r in revisions if r not in self._app_count_memo]
        if missing:
            for revision, definitions in self._definitions(conn, set(missing)).items():
                self._app_count_memo[revision] = len(definitions)
        return {r: self._app_count_memo[r] for r in revisions if r in self._app_count_memo}

    def start_run(
        self, *, revision: str, trigger: str, requested_by: str | None, dry_run: bool
    ) -> int:
        """Open a run record (outcome empty until :meth:`finish_run`); returns its id."""
        with self._db.lock, self._db.begin() as conn:
            result = conn.execute(_runs.insert().values(
                revision=revision, trigger=trigger, requested_by=requested_by, dry_run=dry_run,
                started_at=self._db.now()))
            return database.inserted_id(result)

    def finish_run(
        self, run_id: int, *, outcome: str, error: str | None,
        summary: str | Mapping[str, Any] | None,
    ) -> None:
        if summary is not None and not isinstance(summary, str):
            summary = json.dumps(dict(summary), sort_keys=True)
        with self._db.lock, self._db.begin() as conn:
            conn.execute(_runs.update().where(_runs.c.run_id == run_id).values(
                outcome=outcome, error=error, summary=summary, finished_at=self._db.now()))

    def discard_run(self, run_id: int) -> bool:
        """Forget a run that changed nothing and failed in nothing (a check, not a run);
        a run with a change recorded is kept. True when it was discarded."""
        with self._db.lock, self._db.begin() as conn:
            if conn.execute(sa.select(_changes.c.change_id).where(
                    _changes.c.run_id == run_id)).first() is not None:
                return False
            conn.execute(_runs.delete().where(_runs.c.run_id == run_id))
            return True

    def runs(self, *, limit: int | None = None) -> list[rows.Run]:
        """Runs that did something (or failed, or are under way), newest first (all of them
        unless ``limit``)."""
        query = sa.select(_runs).where(did_something())
        if limit:
            query = query.limit(limit)
        with self._db.begin() as conn:
            found = database.all_rows(conn, query, order_by=[_runs.c.run_id.desc()])
            return [_run(r) for r in found]

    def last_run(self, *, applied_git: bool = False) -> rows.Run | None:
        """The newest finished run (no dry run); with ``applied_git`` the newest that applied
        a Git revision without error (no drift correction, no rollback). What a replica that
        runs nothing (a follower) reports: a check that changed nothing is never recorded."""
        query = sa.select(_runs).where(_runs.c.dry_run.is_(False), _runs.c.outcome.is_not(None))
        if applied_git:
            query = query.where(_runs.c.error.is_(None),
                                _runs.c.trigger.not_in(("drift-correction", "rollback")))
        with self._db.begin() as conn:
            row = conn.execute(query.order_by(_runs.c.run_id.desc()).limit(1)).mappings().first()
        return None if row is None else _run(row)

    def newest_revision(self) -> str | None:
        """The revision recorded last (the newest the leader read from Git)."""
        with self._db.begin() as conn:
            row = conn.execute(sa.select(_revisions.c.revision)
                               .order_by(_revisions.c.first_seen_at.desc()).limit(1)).first()
        return None if row is None else str(row[0])

    def run(self, run_id: int) -> rows.Run:
        with self._db.begin() as conn:
            row = conn.execute(sa.select(_runs).where(_runs.c.run_id == run_id)).mappings().first()
        if row is None:
            raise KeyError(f"no run {run_id}")
        return _run(row)

    # -- changes -----------------------------------------------------------------------------

    def record_deployment(
        self, *, run_id: int, app_id: str, action: str, revision: str,
        deployment_id: str | None, version: str | None, previous_version: str | None,
        purpose: str, patch: Sequence[Mapping[str, Any]], deadline_seconds: float | None,
        started_at: float | None = None,
    ) -> int:
        """Record a change; call it as soon as Marathon answered with a deployment id.

        The patch is masked here, whatever the caller passed. ``started_at`` (UNIX seconds,
        default now) is for a deployment adopted after a crash: its intent's time.
        """
        masked = redact.mask_patch([dict(op) for op in patch])
        with self._db.lock, self._db.begin() as conn:
            result = conn.execute(_changes.insert().values(
                run_id=run_id, app_id=app_id, action=action, revision=revision, purpose=purpose,
                patch=json.dumps(list(masked)), deployment_id=deployment_id,
                version=version, previous_version=previous_version,
                deadline_seconds=deadline_seconds,
                started_at=self._db.now() if started_at is None else started_at))
            return database.inserted_id(result)

    def finish_change(self, change_id: int, *, outcome: str, reason: str | None) -> None:
        with self._db.lock, self._db.begin() as conn:
            conn.execute(_changes.update().where(_changes.c.change_id == change_id).values(
                outcome=outcome, reason=reason, finished_at=self._db.now()))

    def changes(
        self, *, run_id: int | None = None, app_id: str | None = None
    ) -> list[rows.Change]:
        """Changes in the order they were started."""
        query = sa.select(_changes)
        if run_id is not None:
            query = query.where(_changes.c.run_id == run_id)
        if app_id is not None:
            query = query.where(_changes.c.app_id == app_id)
        with self._db.begin() as conn:
            found = database.all_rows(conn, query, order_by=[_changes.c.change_id])
            return [_change(r) for r in found]

    def pending_changes(self) -> list[rows.PendingChange]:
        """Changes with a deployment and no outcome: a restarted controller waits on them."""
        with self._db.begin() as conn:
            found = conn.execute(
                sa.select(_changes).where(_changes.c.outcome.is_(None),
                                          _changes.c.deployment_id.is_not(None))
                .order_by(_changes.c.change_id)
            ).mappings().all()
        return [rows.PendingChange(
            change_id=r["change_id"], run_id=r["run_id"], app_id=r["app_id"], action=r["action"],
            revision=r["revision"], deployment_id=r["deployment_id"], version=r["version"] or "",
            previous_version=r["previous_version"], purpose=r["purpose"],
            started_at=r["started_at"], deadline_seconds=r["deadline_seconds"]) for r in found]

    def latest_revision_for(self, *, app_id: str) -> str | None:
        """The revision of the app's last successful change from Git."""
        with self._db.begin() as conn:
            row = conn.execute(
                sa.select(_changes.c.revision)
                .where(_changes.c.app_id == app_id, _changes.c.purpose == "change",
                       _changes.c.outcome == "succeeded")
                .order_by(_changes.c.change_id.desc())
            ).first()
        return None if row is None else str(row[0])

    def last_applied(self, only: Collection[str] | None = None) -> dict[str, rows.Applied]:
        """Per app (of ``only``, or every one): the revision and desired definition of its
        last successful change.

        This is the desired state drift is measured against. An app whose last successful
        change deleted it is absent.
        """
        # The database picks each app's last successful change: every change ever made
        # would otherwise come back, and the status board asks every few seconds (ten
        # releases of 10,000 apps: 100,000 rows each time, for 10,000 kept).
        latest = (sa.select(sa.func.max(_changes.c.change_id))
                  .where(_changes.c.outcome == "succeeded", _changes.c.purpose == "change")
                  .group_by(_changes.c.app_id))
        if only is not None and len(only) <= _FEW_APPS:
            latest = latest.where(_changes.c.app_id.in_(sorted(only)))
        query = (sa.select(_changes.c.app_id, _changes.c.revision, _changes.c.finished_at,
                           _changes.c.started_at)
                 .where(_changes.c.change_id.in_(latest)))
        with self._db.begin() as conn:
            last: dict[str, tuple[str, float]] = {}
            for r in database.all_rows(conn, query, order_by=[_changes.c.change_id]):
                if only is None or r["app_id"] in only:
                    last[r["app_id"]] = (r["revision"], r["finished_at"] or r["started_at"])
            by_revision: dict[str, list[str]] = {}
            for app_id, (revision, _) in last.items():
                by_revision.setdefault(revision, []).append(app_id)
            # One revision's definitions at a time, each read once (not once per change:
            # 10,000 changes of one release would read its whole desired state 10,000 times,
            # and ten revisions read together would hold ten desired states at once).
            definitions: dict[str, dict[str, Any]] = {}
            for revision, app_ids in by_revision.items():
                parsed = self._definitions(conn, {revision}).get(revision, {})
                definitions.update((a, parsed[a]) for a in app_ids if a in parsed)
        if only is None:
            # A revision no app was last applied from, nor wanted, is not kept: once a
            # release of every app is over, the one before it is 10,000 definitions nobody
            # reads.
            self._keep_definitions_of(set(by_revision))
        # One string per revision and per second, not one per app: the read side keeps them.
        revisions = {r: r for r in by_revision}
        times: dict[int, str] = {}
        out: dict[str, rows.Applied] = {}
        for app_id, (revision, at) in last.items():
            definition = definitions.get(app_id)
            if definition is None:
                continue
            second = int(at)  # shown to the second
            if second not in times:
                times[second] = rows.iso(float(second))
            out[app_id] = rows.Applied(app_id=app_id, revision=revisions[revision],
                                       definition=definition, applied_at=times[second])
        return out

    # -- rollbacks and quarantines -----------------------------------------------------------

    def record_rollback(
        self, *, run_id: int | None, app_id: str, from_version: str | None,
        to_version: str | None, reason: str | None, failure: str | None,
        stuck_step: str | None, method: str | None, outcome: str | None,
        requested_by: str | None,
    ) -> int:
        with self._db.lock, self._db.begin() as conn:
            result = conn.execute(_rollbacks.insert().values(
                run_id=run_id, app_id=app_id, from_version=from_version, to_version=to_version,
                reason=reason, failure=failure, stuck_step=stuck_step, method=method,
                outcome=outcome, requested_by=requested_by, at=self._db.now()))
            return database.inserted_id(result)

    def rollbacks(self, *, app_id: str | None = None) -> list[rows.Rollback]:
        """Rollbacks, newest first."""
        query = sa.select(_rollbacks)
        if app_id:
            query = query.where(_rollbacks.c.app_id == app_id)
        with self._db.begin() as conn:
            return [_rollback(r) for r in database.all_rows(
                conn, query, order_by=[_rollbacks.c.at.desc(), _rollbacks.c.rollback_id.desc()])]

    def quarantine(self, *, app_id: str, revision: str, reason: str | None) -> None:
        """Keep ``revision`` away from the app until someone lifts it (idempotent)."""
        with self._db.lock, self._db.begin() as conn:
            if conn.execute(sa.select(_quarantines.c.quarantine_id).where(
                    _quarantines.c.app_id == app_id, _quarantines.c.revision == revision,
                    _quarantines.c.lifted_at.is_(None))).first() is not None:
                return
            conn.execute(_quarantines.insert().values(
                app_id=app_id, revision=revision, reason=reason, at=self._db.now()))

    def quarantined_apps(self, *, revision: str) -> set[str]:
        """The apps held by a quarantine of ``revision`` (one query, whatever their number:
        a release of 10,000 apps asked about each in turn)."""
        with self._db.begin() as conn:
            return set(conn.execute(sa.select(_quarantines.c.app_id).where(
                _quarantines.c.revision == revision,
                _quarantines.c.lifted_at.is_(None))).scalars())

    def is_quarantined(self, *, app_id: str, revision: str) -> bool:
        with self._db.begin() as conn:
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
        with self._db.lock, self._db.begin() as conn:
            result = conn.execute(_quarantines.update().where(condition).values(
                lifted_at=self._db.now(), lifted_by=lifted_by))
            return int(result.rowcount)

    def active_quarantines(self, *, app_id: str | None = None) -> list[rows.Quarantine]:
        """Quarantines not lifted (of ``app_id``, or of every app), newest first."""
        query = sa.select(_quarantines).where(_quarantines.c.lifted_at.is_(None))
        if app_id is not None:
            query = query.where(_quarantines.c.app_id == app_id)
        with self._db.begin() as conn:
            found = database.all_rows(conn, query, order_by=[
                _quarantines.c.at.desc(), _quarantines.c.quarantine_id.desc()])
            return [_quarantine(r) for r in found]

    # -- history -----------------------------------------------------------------------------

    def history(
        self, *, app_id: str | None = None, since: database.When | None = None,
        limit: int | None = None, before: rows.HistoryKey | None = None,
    ) -> list[rows.HistoryEntry]:
        """Runs, changes, rollbacks and quarantines in time order: every one, or the newest
        ``limit`` of them (a page; ``before``: only those before that entry's key).

        Runs are left out when ``app_id`` is given (a run is about every app), and so are
        runs that did nothing (recorded before checks stopped being runs).
        """
        after = None if since is None else database.seconds(since)
        entries: list[rows.HistoryEntry] = []
        with self._db.begin() as conn:
            for rank, (table, at, record) in enumerate(_history_sources()):
                if table is _runs and app_id is not None:
                    continue
                (key,) = table.primary_key.columns
                query = sa.select(table).limit(limit)
                if table is _runs:
                    query = query.where(did_something())
                if app_id is not None:
                    query = query.where(table.c.app_id == app_id)
                if after is not None:
                    query = query.where(table.c[at] >= after)
                if before is not None:
                    query = query.where(_before(table.c[at], key, rank, before))
                found = database.all_rows(conn, query, order_by=[table.c[at].desc(), key.desc()])
                entries += [rows.HistoryEntry(record=record(r), key=rows.HistoryKey(
                    r[at], rank, r[key.name])) for r in found]
        entries.sort(key=lambda e: e.key)
        return entries if limit is None else entries[-limit:]


_ToRecord = Callable[[Mapping[Any, Any]], rows.HistoryRecord]


def _history_sources() -> tuple[tuple[sa.Table, str, _ToRecord], ...]:
    """Each kind of history entry, in rank order: its table, its time and its record."""
    return ((_runs, "started_at", _run), (_changes, "started_at", _change),
            (_rollbacks, "at", _rollback), (_quarantines, "at", _quarantine))


def _before(at: sa.Column[Any], key: sa.Column[Any], rank: int, before: rows.HistoryKey
            ) -> sa.ColumnElement[bool]:
    """Rows of one kind (of ``rank``) that come before ``before`` in the history's order."""
    if rank < before.rank:
        return at <= before.at
    if rank > before.rank:
        return at < before.at
    return sa.or_(at < before.at, sa.and_(at == before.at, key < before.id))


def did_something() -> sa.ColumnElement[bool]:
    """A run that changed something, failed, or is under way: not a check that found nothing
    to do (the dry runs, which show a plan, count too)."""
    return sa.or_(
        _runs.c.outcome.is_(None), _runs.c.error.is_not(None), _runs.c.dry_run.is_(True),
        _runs.c.outcome.in_(("failed", "rolled back", "timed out")),
        sa.exists().where(_changes.c.run_id == _runs.c.run_id))


def _run(row: Mapping[Any, Any]) -> rows.Run:
    return rows.Run(
        run_id=row["run_id"], revision=row["revision"], trigger=row["trigger"],
        requested_by=row["requested_by"], dry_run=bool(row["dry_run"]),
        started_at=rows.iso(row["started_at"]), finished_at=rows.iso(row["finished_at"]),
        outcome=row["outcome"], error=row["error"], summary=row["summary"], term=row["term"])


def _change(row: Mapping[Any, Any]) -> rows.Change:
    return rows.Change(**{**row, "patch": tuple(json.loads(row["patch"])),
                          "started_at": rows.iso(row["started_at"]),
                          "finished_at": rows.iso(row["finished_at"])})


def _rollback(row: Mapping[Any, Any]) -> rows.Rollback:
    return rows.Rollback(**{**row, "at": rows.iso(row["at"])})


def _quarantine(row: Mapping[Any, Any]) -> rows.Quarantine:
    return rows.Quarantine(**{**row, "at": rows.iso(row["at"]),
                              "lifted_at": rows.iso(row["lifted_at"])})
