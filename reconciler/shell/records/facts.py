"""What the store knows about itself: the Marathon it belongs to, and whether it takes writes.

Records describe one Marathon: its deployment ids, versions and apps. The identity of that
Marathon is stored at first contact (:meth:`FactStore.claim_marathon`); a store that meets
another Marathon refuses it instead of resuming foreign deployments. :meth:`probe_write`
commits one tiny write, so that readiness can tell that the records cannot be written
(read-only file system, disk full, a database gone read-only or away) before a run needs to;
a follower, which must write nothing, asks :meth:`probe_read` instead.
"""

from __future__ import annotations

import sqlalchemy as sa

from reconciler.shell.records import database, schema

_facts = schema.facts
MARATHON = "marathon"
PROBE = "write probe"


class ForeignMarathon(database.StoreUnavailable):
    """The records belong to another Marathon: stop, a human must choose the state dir."""

    def __init__(self, *, recorded: str, met: str, url: str) -> None:
        super().__init__(
            f"the record store {url} belongs to Marathon {recorded}, not to {met}, which "
            f"answers now: refusing to act on another Marathon's records (use the state dir "
            f"or database of this Marathon, or a new one)")
        self.recorded = recorded
        self.met = met


class FactStore(database.Store):
    def fact(self, key: str) -> str | None:
        with self._db.begin() as conn:
            row = conn.execute(sa.select(_facts.c.value).where(_facts.c.key == key)).first()
        return None if row is None else str(row[0])

    def _put(self, conn: sa.Connection, key: str, value: str) -> None:
        updated = conn.execute(_facts.update().where(_facts.c.key == key).values(
            value=value, at=self._db.now()))
        if not updated.rowcount:
            conn.execute(_facts.insert().values(key=key, value=value, at=self._db.now()))

    def claim_marathon(self, identity: str) -> None:
        """Tie the records to ``identity`` the first time; raise :class:`ForeignMarathon` when
        they are tied to another one."""
        with self._db.lock, self._db.begin() as conn:
            row = conn.execute(sa.select(_facts.c.value).where(
                _facts.c.key == MARATHON)).first()
            if row is None:
                self._put(conn, MARATHON, identity)
                return
        if str(row[0]) != identity:
            raise ForeignMarathon(recorded=str(row[0]), met=identity, url=self._db.url)

    def probe_write(self) -> None:
        """Commit one small write; raises :class:`database.StoreUnavailable` if refused."""
        with self._db.lock, self._db.begin() as conn:
            self._put(conn, PROBE, "ok")

    def probe_read(self) -> None:
        """One cheap read; raises :class:`database.StoreUnavailable` if the records do not
        answer (a follower's readiness: it writes nothing to the shared records)."""
        with self._db.begin() as conn:
            conn.execute(sa.select(_facts.c.key).limit(1)).first()
