"""Releases: a revision applied across apps, each app's outcome, and the release's outcome.

A release is opened by the first run that has changes to make for a revision, with the image
references of the revision and those of the release before it (what moved, old -> new tag).
Each app's row is written when its change starts (no outcome yet) and when it ends; a run
with nothing to do writes nothing, so an outcome is only ever replaced by a later change of
that app for that revision (a retry, a manual rollback). The release's own outcome is not
stored: :func:`reconciler.core.releases.overall` computes it from the apps' on every read.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from reconciler.core import model
from reconciler.core import releases as releasing
from reconciler.shell.records import database, rows, schema

_releases, _apps, _revisions = schema.releases, schema.release_apps, schema.revisions
_waves = schema.release_waves


class ReleaseStore(database.Store):
    """Releases and their apps' outcomes."""

    def open_release(
        self, *, revision: str, trigger: str, requested_by: str | None, run_id: int | None,
        images: Mapping[str, str], apps: Iterable[tuple[str, str]],
    ) -> None:
        """Open the release of ``revision`` (once) and mark ``apps`` (id, action) under way."""
        now = self._db.now()
        with self._db.lock, self._db.begin() as conn:
            exists = conn.execute(sa.select(_releases.c.revision).where(
                _releases.c.revision == revision)).first() is not None
            if not exists:
                before = conn.execute(sa.select(_releases.c.images).order_by(
                    _releases.c.started_at.desc())).first()
                conn.execute(_releases.insert().values(
                    revision=revision, trigger=trigger, requested_by=requested_by,
                    run_id=run_id, started_at=now, images=json.dumps(dict(images)),
                    images_before=before[0] if before is not None else json.dumps({})))
            self._upsert_many(conn, revision=revision, values={
                app_id: {"action": action, "outcome": None, "reason": None, "run_id": run_id,
                         "at": now, "started_at": now} for app_id, action in apps})

    def wait_release_apps(self, *, revision: str, apps: Iterable[tuple[str, str, str]],
                          run_id: int | None) -> None:
        """Mark ``apps`` (id, action, why) of the open release of ``revision`` as waiting for
        their sync window: the release shows them, and is not over until they went out."""
        now = self._db.now()
        with self._db.lock, self._db.begin() as conn:
            if conn.execute(sa.select(_releases.c.revision).where(
                    _releases.c.revision == revision)).first() is None:
                return
            self._upsert_many(conn, revision=revision, values={
                app_id: {"action": action, "outcome": str(releasing.AppWait.WAITING_FOR_WINDOW),
                         "reason": why, "run_id": run_id, "at": now, "started_at": None}
                for app_id, action, why in apps})

    def record_release_wave(
        self, *, revision: str, name: str, position: int, state: str, apps: Iterable[str],
        soak: float, started_at: float | None, finished_at: float | None, reason: str | None,
    ) -> None:
        """Write a release wave's state as the applier enters it (a release must be open)."""
        values = {"position": position, "state": state, "apps": json.dumps(list(apps)),
                  "soak": soak, "started_at": started_at, "finished_at": finished_at,
                  "reason": reason}
        key = sa.and_(_waves.c.revision == revision, _waves.c.name == name)
        with self._db.lock, self._db.begin() as conn:
            if conn.execute(sa.select(_releases.c.revision).where(
                    _releases.c.revision == revision)).first() is None:
                return
            if conn.execute(sa.select(_waves.c.name).where(key)).first() is None:
                conn.execute(_waves.insert().values(revision=revision, name=name,
                                                    **values))
            else:
                conn.execute(_waves.update().where(key).values(**values))

    def finish_release_app(
        self, *, revision: str, app_id: str, action: str, outcome: str, reason: str | None,
        run_id: int | None, started_at: float | None = None, finished_at: float | None = None,
    ) -> None:
        """Record how the app's change of ``revision`` ended (a release must be open), when
        it started (None: never started, a later wave's app) and when it ended (None: now;
        a run's results are written together when the run ends, after each app's own end)."""
        with self._db.lock, self._db.begin() as conn:
            if conn.execute(sa.select(_releases.c.revision).where(
                    _releases.c.revision == revision)).first() is None:
                return  # not a release (a folder synced before releases were recorded, say)
            values: dict[str, Any] = {"action": action, "outcome": outcome, "reason": reason,
                                      "run_id": run_id,
                                      "at": self._db.now() if finished_at is None
                                      else finished_at}
            if started_at is not None or outcome == str(model.Outcome.SKIPPED):
                values["started_at"] = started_at  # a rollback keeps the change's start
            self._upsert(conn, revision=revision, app_id=app_id, values=values)

    def releases(self, *, limit: int | None = None, apps_shown: int | None = None,
                 revision: str | None = None) -> list[rows.Release]:
        """Releases, newest first (only that of ``revision``, when given).

        ``apps_shown``: each release holds at most that many of its apps, those needing
        attention first (failed, rolled back, under way, waiting), and every app counted
        per outcome (a page of releases of 10,000 apps each; the outcome is the same)."""
        query = (sa.select(_releases, _revisions.c.author, _revisions.c.message)
                 .outerjoin(_revisions, _revisions.c.revision == _releases.c.revision))
        if limit:
            query = query.limit(limit)
        if revision is not None:
            query = query.where(_releases.c.revision == revision)
        with self._db.begin() as conn:
            found = list(database.all_rows(conn, query, order_by=[
                _releases.c.started_at.desc(), _releases.c.revision]))
            newest = conn.execute(sa.select(sa.func.max(_releases.c.started_at))).scalar()
            revisions = [r["revision"] for r in found]
            counts = _counts_by_revision(conn, revisions)
            if apps_shown is None:
                apps = _apps_by_revision(conn, revisions)
            elif apps_shown == 0:
                apps = {}
            else:
                apps = _apps_needing_attention(conn, revisions=revisions, limit=apps_shown)
            waves = _waves_by_revision(conn, revisions)
        return [_release(r, apps=apps.get(r["revision"], ()), counts=counts.get(r["revision"], {}),
                         superseded=r["started_at"] != newest, waves=waves.get(r["revision"], ()))
                for r in found]

    def release(self, revision: str, *, apps_shown: int | None = None
                ) -> rows.Release | None:
        return next(iter(self.releases(revision=revision, apps_shown=apps_shown)), None)

    def release_apps(self, revision: str, *, after: str | None = None,
                     limit: int | None = None) -> list[rows.ReleaseApp]:
        """The release's apps by app id, those after the app id ``after``, at most ``limit``
        (a page of a release of 10,000 apps)."""
        query = sa.select(_apps).where(_apps.c.revision == revision).limit(limit)
        if after is not None:
            query = query.where(_apps.c.app_id > after)
        with self._db.begin() as conn:
            found = database.all_rows(conn, query, order_by=[_apps.c.app_id])
            return [_release_app(r) for r in found]

    @staticmethod
    def _upsert_many(conn: sa.Connection, *, revision: str,
                     values: Mapping[str, Mapping[str, Any]]) -> None:
        """Each app's row of ``revision`` written with its values: three statements at most
        for all of them (a release of 10,000 apps opened with 20,000, one app at a time)."""
        if not values:
            return
        existing = set(conn.execute(sa.select(_apps.c.app_id).where(
            _apps.c.revision == revision)).scalars())
        new = [{"revision": revision, "app_id": app_id, **v}
               for app_id, v in values.items() if app_id not in existing]
        if new:
            conn.execute(_apps.insert(), new)
        old = [{"key_revision": revision, "key_app_id": app_id, **v}
               for app_id, v in values.items() if app_id in existing]
        if old:
            columns = next(iter(values.values())).keys()
            conn.execute(_apps.update().where(
                _apps.c.revision == sa.bindparam("key_revision"),
                _apps.c.app_id == sa.bindparam("key_app_id")).values(
                {c: sa.bindparam(c) for c in columns}), old)

    @staticmethod
    def _upsert(conn: sa.Connection, *, revision: str, app_id: str,
                values: Mapping[str, Any]) -> None:
        key = sa.and_(_apps.c.revision == revision, _apps.c.app_id == app_id)
        if conn.execute(sa.select(_apps.c.app_id).where(key)).first() is None:
            conn.execute(_apps.insert().values(revision=revision, app_id=app_id, **values))
        else:
            conn.execute(_apps.update().where(key).values(**values))


def _release_app(r: Mapping[Any, Any]) -> rows.ReleaseApp:
    return rows.ReleaseApp(
        app_id=r["app_id"], action=r["action"], outcome=r["outcome"], reason=r["reason"],
        run_id=r["run_id"], at=rows.iso(r["at"]), started_at=rows.iso(r["started_at"]))


def _apps_by_revision(conn: sa.Connection, revisions: list[str]
                      ) -> dict[str, tuple[rows.ReleaseApp, ...]]:
    out: dict[str, list[rows.ReleaseApp]] = {}
    if not revisions:
        return {}
    for r in database.all_rows(conn, sa.select(_apps).where(_apps.c.revision.in_(revisions)),
                               order_by=[_apps.c.app_id]):
        out.setdefault(r["revision"], []).append(_release_app(r))
    return {k: tuple(v) for k, v in out.items()}


def _attention(outcome: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    """Which of a release's apps a person should see first: broken, undone, under way, held."""
    return sa.case(
        (outcome.in_([str(model.Outcome.FAILED), str(model.Outcome.TIMED_OUT)]), 0),
        (outcome == str(model.Outcome.ROLLED_BACK), 1),
        (outcome.is_(None), 2),
        (outcome == str(releasing.AppWait.WAITING_FOR_WINDOW), 3),
        else_=4)


def _apps_needing_attention(conn: sa.Connection, *, revisions: list[str], limit: int
                            ) -> dict[str, tuple[rows.ReleaseApp, ...]]:
    """Per revision, at most ``limit`` of its release's apps, those needing attention first.

    One statement for a page of releases (one per release made the Releases page wait its
    turn for the interpreter once per release, during a release), made of one part per
    release: each keeps its first ``limit`` apps as it goes, where numbering every app of
    every release in that order sorted them all (20,000 for two releases of 10,000 apps)."""
    if not revisions:
        return {}
    parts = [sa.select(_apps).where(_apps.c.revision == revision)
             .order_by(_attention(_apps.c.outcome), _apps.c.app_id).limit(limit)
             .subquery().select() for revision in revisions]
    found = sa.union_all(*parts).subquery()
    out: dict[str, list[rows.ReleaseApp]] = {}
    for r in database.all_rows(conn, sa.select(found), order_by=[
            found.c.revision, _attention(found.c.outcome), found.c.app_id]):
        out.setdefault(r["revision"], []).append(_release_app(r))
    return {k: tuple(v) for k, v in out.items()}


def _counts_by_revision(conn: sa.Connection, revisions: list[str] | None
                        ) -> dict[str, dict[str | None, int]]:
    """Per revision (of ``revisions``, or of every release), how many of its apps came to
    each recorded outcome (None: under way)."""
    out: dict[str, dict[str | None, int]] = {}
    if revisions == []:
        return {}
    query = sa.select(_apps.c.revision, _apps.c.outcome, sa.func.count().label("apps"))
    if revisions is not None:
        query = query.where(_apps.c.revision.in_(revisions))
    for r in database.all_rows(
            conn, query.group_by(_apps.c.revision, _apps.c.outcome),
            order_by=[_apps.c.revision, _apps.c.outcome]):
        out.setdefault(r["revision"], {})[r["outcome"]] = r["apps"]
    return out


def _waves_by_revision(conn: sa.Connection, revisions: list[str]
                       ) -> dict[str, tuple[rows.ReleaseWave, ...]]:
    out: dict[str, list[rows.ReleaseWave]] = {}
    if not revisions:
        return {}

    for r in database.all_rows(conn, sa.select(_waves).where(_waves.c.revision.in_(revisions)),
                               order_by=[_waves.c.position, _waves.c.name]):
        out.setdefault(r["revision"], []).append(rows.ReleaseWave(
            name=r["name"], state=r["state"], apps=tuple(json.loads(r["apps"])),
            soak=r["soak"], started_at=rows.iso(r["started_at"]),
            finished_at=rows.iso(r["finished_at"]), reason=r["reason"]))
    return {k: tuple(v) for k, v in out.items()}


def _release(row: Mapping[Any, Any], *, apps: tuple[rows.ReleaseApp, ...],
             counts: Mapping[str | None, int], superseded: bool,
             waves: tuple[rows.ReleaseWave, ...] = ()) -> rows.Release:
    outcome = releasing.overall(_by_outcome(counts), superseded=superseded)
    return rows.Release(
        revision=row["revision"], author=row["author"], message=row["message"],
        trigger=row["trigger"], requested_by=row["requested_by"], run_id=row["run_id"],
        started_at=rows.iso(row["started_at"]),
        images_changed=releasing.image_changes(json.loads(row["images_before"]),
                                               json.loads(row["images"])),
        apps=apps, outcome=outcome, waves=waves, app_counts=dict(counts))


def outcomes(conn: sa.Connection) -> dict[str, str]:
    """Per released revision, its release's outcome (for the Revisions view): the database
    counts each release's apps per outcome, a few rows per release whatever its size."""
    newest = conn.execute(sa.select(sa.func.max(_releases.c.started_at))).scalar()
    found = list(database.all_rows(conn, sa.select(_releases.c.revision, _releases.c.started_at),
                                   order_by=[_releases.c.started_at]))
    counts = _counts_by_revision(conn, None)  # every release's: no list of every revision
    return {r["revision"]: str(releasing.overall(_by_outcome(counts.get(r["revision"], {})),
                                                 superseded=r["started_at"] != newest))
            for r in found}


def _by_outcome(counts: Mapping[str | None, int]) -> collections.Counter[releasing.AppOutcome]:
    return collections.Counter({releasing.app_outcome(o): n for o, n in counts.items()})
