"""Who asked for what, and which notifications already went out.

The audit keeps every action requested through the API or the CLI with its result. The
notification keys make each transition announced once, even with several processes or a
restart in between.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.exc

from reconciler.shell.records import database, rows, schema

_audit, _notifications = schema.audit, schema.notifications


class AuditStore(database.Store):
    """The audit log and the claimed notification keys."""

    def audit(self, *, who: str, action: str, target: str | None, result: str | None) -> None:
        """Record an action someone asked for through the API or the CLI, and its result."""
        with self._db.lock, self._db.begin() as conn:
            conn.execute(_audit.insert().values(at=self._db.now(), who=who, action=action,
                                                target=target, result=result))

    def audit_log(self, *, limit: int | None = None, before: int | None = None
                  ) -> list[rows.AuditEntry]:
        """Audit entries, newest first: at most ``limit``, older than audit id ``before``."""
        query = sa.select(_audit).limit(limit)
        if before is not None:
            query = query.where(_audit.c.audit_id < before)
        with self._db.begin() as conn:
            found = database.all_rows(conn, query, order_by=[_audit.c.audit_id.desc()])
            return [rows.AuditEntry(**{**r, "at": rows.iso(r["at"])}) for r in found]

    def first_claimed_at(self, key: str) -> float:
        """When ``key`` was first claimed, claiming it now if it never was (UNIX seconds)."""
        self.claim_notification(key)
        with self._db.begin() as conn:
            at = conn.execute(sa.select(_notifications.c.at)
                              .where(_notifications.c.key == key)).scalar_one()
            return float(at)

    def claim_notification(self, key: str) -> bool:
        """True the first time ``key`` is claimed: notifications go out once per transition."""
        with self._db.lock:
            try:
                with self._db.begin() as conn:
                    conn.execute(_notifications.insert().values(key=key, at=self._db.now()))
            except sqlalchemy.exc.IntegrityError:
                return False  # claimed before, by this process or another one
            return True
