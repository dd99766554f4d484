"""Sync-window holds: which apps a window keeps from being applied, and until when.

A hold is opened when a run plans an app but its window is closed, and ended when the app is
applied (its window opened, or a manual sync overrode it) or a newer revision replaces the one
held. The status of each app (:mod:`reconciler.core.status`) reads the open ones.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from reconciler.shell.records import database, rows, schema

_holds = schema.window_holds
APPLIED = "applied"
SUPERSEDED = "superseded"
OVERRIDDEN = "overridden"


class HoldStore(database.Store):
    def hold_for_window(self, *, app_id: str, revision: str, scope: str, until: float | None,
                        reason: str) -> None:
        """Open (or keep, with the newest ``until``) the hold of ``app_id`` at ``revision``;
        a hold of another revision of the app is superseded."""
        with self._db.lock, self._db.begin() as conn:
            now = self._db.now()
            open_ = (_holds.c.app_id == app_id) & (_holds.c.scope == scope) & (
                _holds.c.ended_at.is_(None))
            conn.execute(_holds.update().where(open_ & (_holds.c.revision != revision))
                         .values(ended_at=now, ended=SUPERSEDED))
            kept = conn.execute(_holds.update().where(open_ & (_holds.c.revision == revision))
                                .values(until=until, reason=reason))
            if not kept.rowcount:
                conn.execute(_holds.insert().values(
                    app_id=app_id, revision=revision, scope=scope, until=until, reason=reason,
                    at=now))

    def end_holds(self, *, app_ids: Iterable[str], revision: str, scope: str,
                  how: str = APPLIED) -> int:
        """End the open holds of ``app_ids`` for ``scope``: ``how`` for those of
        ``revision``, superseded for older ones. Returns how many ended."""
        ids = sorted(set(app_ids))
        if not ids:
            return 0
        with self._db.lock, self._db.begin() as conn:
            now = self._db.now()
            open_ = (_holds.c.app_id.in_(ids)) & (_holds.c.scope == scope) & (
                _holds.c.ended_at.is_(None))
            same = conn.execute(_holds.update().where(open_ & (_holds.c.revision == revision))
                                .values(ended_at=now, ended=how))
            other = conn.execute(_holds.update().where(open_ & (_holds.c.revision != revision))
                                 .values(ended_at=now, ended=SUPERSEDED))
            return int(same.rowcount or 0) + int(other.rowcount or 0)

    def window_holds(self, *, open_only: bool = True) -> list[rows.WindowHold]:
        """Holds, oldest first (only those still holding an app, by default)."""
        query = sa.select(_holds)
        if open_only:
            query = query.where(_holds.c.ended_at.is_(None))
        with self._db.begin() as conn:
            return [rows.WindowHold(**{**r, "until": rows.iso(r["until"]), "at": rows.iso(r["at"]),
                                       "ended_at": rows.iso(r["ended_at"])})
                    for r in database.all_rows(conn, query, order_by=[_holds.c.hold_id])]
