"""The record store callers use: every concern's store over one database, opened migrated.

:class:`RecordStore` is the one object the engine, the controller, the web server and the
CLI hold; its methods come from the store of each concern (:mod:`.runs`, :mod:`.releases`,
:mod:`.intents`, :mod:`.drift`, :mod:`.audit`, :mod:`.facts`, :mod:`.promotions`,
:mod:`.holds`), which share its :class:`database.Database`.
"""

from __future__ import annotations

import time
from pathlib import Path

from reconciler.shell.records import (
    audit,
    database,
    drift,
    facts,
    holds,
    intents,
    migrate,
    promotions,
    releases,
    runs,
)


class RecordStore(runs.RunStore, releases.ReleaseStore, intents.IntentStore, drift.DriftStore,
                  audit.AuditStore, facts.FactStore, promotions.PromotionStore,
                  holds.HoldStore):
    """Typed access to the records; safe to share between threads.

    Opening it brings the database to the newest schema (:func:`migrate.upgrade`), and
    raises :class:`database.StoreUnavailable` when it cannot.
    """

    def __init__(self, url: str, *, clock: database.Clock = time.time) -> None:
        db = database.Database(url, clock=clock)
        try:
            migrate.upgrade(db)
        except BaseException:
            db.close()
            raise
        super().__init__(db)
        self.url = db.url
        """The database URL with its password hidden, fit for logs."""

    def schema_version(self) -> str | None:
        """The Alembic revision the database is at (:func:`migrate.head` once opened)."""
        with self._db.opening(), self._db.engine.connect() as conn:
            return migrate.current(conn)

    def set_term(self, term: int | None) -> None:
        """Stamp rows written from now on with this leadership term (a replica just won)."""
        self._db.term = term

    def close(self) -> None:
        self._db.close()


DATABASE_FILE = "reconciler.db"


class NoRecords(Exception):
    """A command that only reads found no record store where it was told to look (a typo in
    ``--state-dir``): stop and say where; never create one there."""


def open_store(
    state_dir: Path, *, url: str | None = None, clock: database.Clock = time.time,
    existing: bool = False,
) -> RecordStore:
    """The store at ``url``, or SQLite in ``state_dir`` (created if missing, unless
    ``existing``: then :class:`NoRecords` when ``state_dir`` holds no database)."""
    if url is None:
        path = state_dir / DATABASE_FILE
        if existing and not path.is_file():
            raise NoRecords(f"no records at {state_dir} (no {DATABASE_FILE} there: is the "
                            "state directory right?)")
        state_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    return RecordStore(url, clock=clock)
