"""Drift: live apps that differ from the desired state last applied, and what was done.

One record per episode of an app (``open``, ``flapping``, then ``resolved``); each correction
of live is a row of its own with its time, so that flapping is counted in a window. Patches
are masked before they are stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from reconciler.core import redact
from reconciler.shell.records import database, rows, schema

_drifts, _corrections = schema.drifts, schema.drift_corrections

_OPEN = ("open", "flapping")
_IS_RESOLVED = _drifts.c.status == "resolved"
_RESOLVED = sa.case((_IS_RESOLVED, 1), else_=0)
"""1 for a resolved drift: the lists show every other one first."""
_LISTED = (_RESOLVED, _drifts.c.last_seen_at.desc(), _drifts.c.drift_id.desc())
"""The lists' order: open (and flapping) first, then newest seen first."""
_IDS_ASKED = 10_000
"""Drift ids in one ``IN`` list at most: SQLite takes 32,766 parameters a statement, and a
list of every drift record (``reconciler drift``) can hold more after months of drift."""


class DriftStore(database.Store):
    """Drift records and their corrections."""

    def observe_drift(
        self, *, app_id: str, kind: str, patch: Sequence[Mapping[str, Any]], fingerprint: str,
        policy: str, client_ip: str | None = None, uri: str | None = None,
        attributed_at: str | None = None, live_version: str | None = None,
    ) -> tuple[rows.Drift, bool]:
        """Record drift seen now: the open record of the app is updated, or a new one opened.

        Returns the record and whether it is new (a transition worth a notification).
        """
        now = self._db.now()
        masked = json.dumps(list(redact.mask_patch([dict(op) for op in patch])))
        attribution = {k: v for k, v in (("client_ip", client_ip), ("uri", uri),
                                         ("attributed_at", attributed_at)) if v}
        with self._db.lock, self._db.begin() as conn:
            row = conn.execute(sa.select(_drifts).where(
                _drifts.c.app_id == app_id, _drifts.c.status.in_(_OPEN))
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
                drift_id, created = database.inserted_id(result), True
        return self.drift(drift_id), created

    def attribute_drift(self, *, app_id: str, client_ip: str, uri: str, at: str) -> None:
        """Remember who last changed the app through Marathon's API (from ``api_post_event``)."""
        with self._db.lock, self._db.begin() as conn:
            conn.execute(_drifts.update().where(
                _drifts.c.app_id == app_id, _drifts.c.status.in_(_OPEN)).values(
                client_ip=client_ip, uri=uri, attributed_at=at))

    def set_drift_action(
        self, drift_id: int, *, action: str, status: str | None = None,
        count_correction: bool = False, run_id: int | None = None, revision: str | None = None,
        reason: str | None = None,
    ) -> rows.Drift:
        """Record what was done about a drift; ``count_correction`` when live was corrected.

        ``run_id``: the run that corrected it; ``revision``: the revision whose sync
        overwrote it; ``reason``: why it is reported or blocked (kept when not given).
        """
        now = self._db.now()
        values: dict[str, Any] = {"action": action}
        values.update({k: v for k, v in (("run_id", run_id), ("revision", revision),
                                         ("reason", reason)) if v is not None})
        if status is not None:
            values["status"] = status
            if status == "resolved":
                values["resolved_at"] = now
        if count_correction:
            values["corrections"] = _drifts.c.corrections + 1
        with self._db.lock, self._db.begin() as conn:
            app_id = conn.execute(sa.select(_drifts.c.app_id).where(
                _drifts.c.drift_id == drift_id)).scalar_one()
            conn.execute(_drifts.update().where(_drifts.c.drift_id == drift_id).values(**values))
            if count_correction:
                conn.execute(_corrections.insert().values(
                    drift_id=drift_id, app_id=app_id, at=now))
        return self.drift(drift_id)

    def resolve_drift(self, *, app_id: str, action: str, run_id: int | None = None,
                      revision: str | None = None) -> list[rows.Drift]:
        """Close the app's open (or flapping) drift: live equals desired again (by the run
        ``run_id``, or by the sync of ``revision``, when that is what put it back)."""
        # Under the write lock from read to write: the poll (overwritten by a sync) and the
        # drift check (gone) may both close the same drift; the first one's account stands.
        with self._db.lock:
            with self._db.begin() as conn:
                ids = [r[0] for r in conn.execute(sa.select(_drifts.c.drift_id).where(
                    _drifts.c.app_id == app_id, _drifts.c.status.in_(_OPEN)))]
            return [self.set_drift_action(i, action=action, status="resolved", run_id=run_id,
                                          revision=revision) for i in ids]

    def acknowledge_drift(self, drift_id: int, *, by: str) -> rows.Drift:
        with self._db.lock, self._db.begin() as conn:
            conn.execute(_drifts.update().where(_drifts.c.drift_id == drift_id).values(
                acknowledged_by=by, action="acknowledged"))
        return self.drift(drift_id)

    def recent_corrections(self, *, app_id: str, since: database.When) -> int:
        """How many times the app's drift was corrected since ``since`` (flapping detection)."""
        with self._db.begin() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(_corrections).where(
                    _corrections.c.app_id == app_id,
                    _corrections.c.at >= database.seconds(since))).scalar_one())

    def drift(self, drift_id: int) -> rows.Drift:
        """The drift record of ``drift_id``; :class:`LookupError` when there is none."""
        with self._db.begin() as conn:
            row = conn.execute(sa.select(_drifts).where(
                _drifts.c.drift_id == drift_id)).mappings().first()
            if row is None:
                raise LookupError(f"no drift {drift_id}")
            times = conn.execute(sa.select(_corrections.c.at).where(
                _corrections.c.drift_id == drift_id).order_by(
                _corrections.c.correction_id)).scalars().all()
        return _drift(row, times)

    def drifts(
        self, *, open_only: bool = False, since: database.When | None = None,
        prefix: str | None = None, app_id: str | None = None, limit: int | None = None,
    ) -> list[rows.Drift]:
        """Drift records, open (and flapping) first, then newest seen first.

        ``since`` keeps those seen since then; ``prefix`` those of a group (``/dirac``);
        ``limit`` the first so many.
        """
        query = _matching(sa.select(_drifts), open_only=open_only, since=since, prefix=prefix,
                          app_id=app_id).limit(limit)
        return self._read(query, order_by=_LISTED)

    def drift_page(
        self, *, limit: int, before: int | None = None, open_only: bool = False,
        since: database.When | None = None, prefix: str | None = None,
    ) -> tuple[list[rows.Drift], int | None]:
        """At most ``limit`` drift records, the newest recorded first (those recorded before
        drift id ``before``), and the id to pass as ``before`` for the next page (None on the
        last one). By id, which never changes: each drift check moves an open drift's time
        seen, and a page by that time would skip or repeat records."""
        query = _matching(sa.select(_drifts), open_only=open_only, since=since, prefix=prefix,
                          app_id=None).limit(limit + 1)
        if before is not None:
            query = query.where(_drifts.c.drift_id < before)
        found = self._read(query, order_by=[_drifts.c.drift_id.desc()])
        page = found[:limit]
        return page, (page[-1].drift_id if len(found) > limit else None)

    def _read(self, query: sa.Select[Any], *, order_by: Sequence[sa.ColumnElement[Any]]
              ) -> list[rows.Drift]:
        """The drift records ``query`` selects, each with the times it was corrected."""
        with self._db.begin() as conn:
            return self._corrected(conn, list(database.all_rows(conn, query,
                                                                order_by=order_by)))

    @staticmethod
    def _corrected(conn: sa.Connection, found: Sequence[Mapping[str, Any]]
                   ) -> list[rows.Drift]:
        """These rows of the drifts table as records, with the times each was corrected
        (one more query for every ``_IDS_ASKED`` of them)."""
        times: dict[int, list[float]] = {}
        ids = [r["drift_id"] for r in found]
        for start in range(0, len(ids), _IDS_ASKED):
            for c in database.all_rows(
                    conn, sa.select(_corrections.c.drift_id, _corrections.c.at)
                    .where(_corrections.c.drift_id.in_(ids[start:start + _IDS_ASKED])),
                    order_by=[_corrections.c.correction_id]):
                times.setdefault(c["drift_id"], []).append(c["at"])
        return [_drift(r, times.get(r["drift_id"], [])) for r in found]

    def open_drift_apps(self) -> set[str]:
        """The apps with a drift open (or flapping): what each drift check asks first, so
        one plain query of one column, not the records."""
        with self._db.begin() as conn:
            return set(conn.execute(sa.select(_drifts.c.app_id).distinct().where(
                _drifts.c.status.in_(_OPEN))).scalars())

    def counted_drifts(self, *, limit: int, open_only: bool = False,
                       since: database.When | None = None, prefix: str | None = None,
                       ) -> tuple[list[rows.Drift], tuple[int, int]]:
        """The first ``limit`` drift records as :meth:`drifts` lists them, and how many
        match, open and resolved, counted by the database in the same statement: at one
        moment, so mid-incident the counts are those of the list (read apart, a drift
        recorded in between made them differ)."""
        def count(which: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
            query = _matching(sa.select(sa.func.count()).select_from(_drifts).where(which),
                              open_only=open_only, since=since, prefix=prefix, app_id=None)
            return query.scalar_subquery().correlate(None)

        if limit < 1:
            raise ValueError(f"a limit of {limit}: the counts come with the records listed")
        query = _matching(sa.select(_drifts,
                                    count(sa.not_(_IS_RESOLVED)).label("open_matching"),
                                    count(_IS_RESOLVED).label("resolved_matching")),
                          open_only=open_only, since=since, prefix=prefix,
                          app_id=None).limit(limit)
        with self._db.begin() as conn:
            found = list(database.all_rows(conn, query, order_by=_LISTED))
            listed = self._corrected(conn, found)
        if not found:
            return [], (0, 0)
        return listed, (int(found[0]["open_matching"]), int(found[0]["resolved_matching"]))


def _matching(query: sa.Select[Any], *, open_only: bool, since: database.When | None,
              prefix: str | None, app_id: str | None) -> sa.Select[Any]:
    if open_only:
        query = query.where(_drifts.c.status.in_(_OPEN))
    if since is not None:
        query = query.where(_drifts.c.last_seen_at >= database.seconds(since))
    if app_id is not None:
        return query.where(_drifts.c.app_id == app_id)
    if prefix and prefix.strip("/"):
        base = "/" + prefix.strip("/")
        query = query.where(sa.or_(_drifts.c.app_id == base,
                                   _drifts.c.app_id.startswith(base + "/", autoescape=True)))
    return query


def _drift(row: Mapping[Any, Any], corrected_at: Sequence[float]) -> rows.Drift:
    return rows.Drift(
        drift_id=row["drift_id"], app_id=row["app_id"], kind=row["kind"],
        patch=tuple(json.loads(row["patch"])), first_seen_at=rows.iso(row["first_seen_at"]),
        last_seen_at=rows.iso(row["last_seen_at"]), client_ip=row["client_ip"], uri=row["uri"],
        attributed_at=row["attributed_at"], live_version=row["live_version"],
        policy=row["policy"], action=row["action"], status=row["status"],
        corrections=row["corrections"], corrected_at=tuple(rows.iso(t) for t in corrected_at),
        resolved_at=rows.iso(row["resolved_at"]), acknowledged_by=row["acknowledged_by"],
        run_id=row["run_id"], revision=row["revision"], reason=row["reason"],
    )
