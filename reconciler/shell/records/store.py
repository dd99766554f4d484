"""The record store callers use: every concern's store over one database, opened migrated.

:class:`RecordStore` is the one object the engine, the controller, the web server and the
CLI hold; its methods come from the store of each concern (:mod:`.runs`, :mod:`.releases`,
:mod:`.intents`, :mod:`.drift`, :mod:`.audit`, :mod:`.facts`, :mod:`.promotions`,
:mod:`.holds`), which share its :class:`database.Database`.

Opening a database already at the newest revision imports no Alembic (:mod:`.revision`); one
that needs migrating is migrated by :mod:`.migrate`, in this process or in a child process
(``reconciler run``, which must not carry Alembic's memory for its whole life).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from reconciler.shell.records import (
    audit,
    database,
    drift,
    facts,
    holds,
    intents,
    promotions,
    releases,
    revision,
    runs,
)


class RecordStore(runs.RunStore, releases.ReleaseStore, intents.IntentStore, drift.DriftStore,
                  audit.AuditStore, facts.FactStore, promotions.PromotionStore,
                  holds.HoldStore):
    """Typed access to the records; safe to share between threads.

    Opening it brings the database to the newest schema (:func:`migrate.upgrade`), in a
    child process when ``migrate_in_child``, and raises :class:`database.StoreUnavailable`
    when it cannot.
    """

    def __init__(self, url: str, *, clock: database.Clock = time.time,
                 migrate_in_child: bool = False) -> None:
        db = database.Database(url, clock=clock)
        try:
            _bring_to_head(db, url=url, in_child=migrate_in_child)
        except BaseException:
            db.close()
            raise
        super().__init__(db)
        self.url = db.url
        """The database URL with its password hidden, fit for logs."""

    def schema_version(self) -> str | None:
        """The Alembic revision the database is at (:data:`revision.HEAD` once opened)."""
        with self._db.opening(), self._db.engine.connect() as conn:
            return revision.current(conn)

    def set_term(self, term: int | None) -> None:
        """Stamp rows written from now on with this leadership term (a replica just won)."""
        self._db.term = term

    def close(self) -> None:
        self._db.close()


MIGRATE_MODULE = "reconciler.shell.records.migrate"
"""Run as a child process to migrate without importing Alembic here (:func:`migrate.main`)."""
MIGRATE_TIMEOUT = 900.0
"""Seconds the migrating child may take: a schema change of big tables takes minutes, a
child that waits forever (a lock never released) must not hold the start for good."""
MIGRATE_REFUSED = 2
"""The child's exit status when the store cannot be migrated (unreachable, or a newer
reconciler's): the last line of its stderr says why. Any other failure is a crash."""


def _bring_to_head(db: database.Database, *, url: str, in_child: bool) -> None:
    """Migrate unless the database is at :data:`revision.HEAD`; any other revision, older
    or unknown, goes to :mod:`.migrate`, which upgrades the one and refuses the other."""
    with db.opening(), db.engine.connect() as conn:
        if revision.current(conn) == revision.HEAD:
            return
    # A database in memory is this process's own: a child would migrate its own copy.
    in_memory = db.engine.url.get_backend_name() == "sqlite" and db.engine.url.database in (
        None, "", ":memory:")
    if in_child and not in_memory:
        _migrate_in_child(db, url=url)
        with db.opening(), db.engine.connect() as conn:
            found = revision.current(conn)
        if found != revision.HEAD:
            raise database.StoreUnavailable(
                f"the record store {db.url} is at revision {found!r} after migrating, not "
                f"{revision.HEAD!r}")
        return
    from reconciler.shell.records import migrate  # imports Alembic: only when needed

    migrate.upgrade(db)


def _migrate_in_child(db: database.Database, *, url: str) -> None:
    """:func:`migrate.upgrade` in a new process; the URL goes on its stdin, since its
    arguments are shown by ``ps`` to everyone on the host."""
    try:
        child = subprocess.run([sys.executable, "-m", MIGRATE_MODULE], input=f"{url}\n",
                               capture_output=True, text=True, check=False,
                               timeout=MIGRATE_TIMEOUT)
    except subprocess.TimeoutExpired as e:  # the child is killed by then
        raise database.StoreUnavailable(
            f"cannot migrate the record store {db.url}: its migrating process was still at it "
            f"after {MIGRATE_TIMEOUT:g} s (another process holding the lock?)") from e
    if child.returncode == 0:
        return
    lines = child.stderr.strip().splitlines()
    last = lines[-1] if lines else f"exit status {child.returncode}"
    raise database.StoreUnavailable(db.mask(
        last if child.returncode == MIGRATE_REFUSED else
        f"cannot migrate the record store {db.url}: its migrating process failed: {last}"))


DATABASE_FILE = "reconciler.db"


class NoRecords(Exception):
    """A command that only reads found no record store where it was told to look (a typo in
    ``--state-dir``): stop and say where; never create one there."""


def open_store(
    state_dir: Path, *, url: str | None = None, clock: database.Clock = time.time,
    existing: bool = False, migrate_in_child: bool = False,
) -> RecordStore:
    """The store at ``url``, or SQLite in ``state_dir`` (created if missing, unless
    ``existing``: then :class:`NoRecords` when ``state_dir`` holds no database), migrated as
    :class:`RecordStore` says."""
    if url is None:
        path = state_dir / DATABASE_FILE
        if existing and not path.is_file():
            raise NoRecords(f"no records at {state_dir} (no {DATABASE_FILE} there: is the "
                            "state directory right?)")
        state_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    return RecordStore(url, clock=clock, migrate_in_child=migrate_in_child)
