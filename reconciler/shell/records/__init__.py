"""The record store: the only package that touches the database (SQLAlchemy, Alembic).

Everything reconciler did, durably: revisions seen (with the desired definitions of each),
sync runs, per-app changes (recorded with their Marathon deployment id *before* waiting on
it, so a run that starts after a crash can wait on them instead of starting duplicates),
the intent of each Marathon write (recorded before its request leaves), rollbacks,
quarantines, drift (with each correction, for flapping detection), the audit of
requested actions and the notifications already sent. History is never truncated.

SQLAlchemy Core over SQLite under the state directory by default; the same code runs on
PostgreSQL (``postgresql+psycopg://...``). Times are stored as UNIX seconds (UTC, from the
injected clock) and handed out as ISO-8601 strings. Queries return frozen dataclasses.

Where things are: :mod:`.schema` (the tables), :mod:`.migrate` with ``migrations/`` (Alembic
revisions, run when a store opens on an older schema) and :mod:`.legacy` (adopting databases
from before Alembic), :mod:`.revision` (the newest revision, checked without Alembic),
:mod:`.rows` (what queries return), :mod:`.database` (engine, lock, clock, errors),
one store per concern (:mod:`.runs`, :mod:`.releases`, :mod:`.intents`, :mod:`.drift`,
:mod:`.audit`, :mod:`.facts`, :mod:`.promotions`, :mod:`.holds` for sync-window holds) and
:mod:`.store`, the :class:`RecordStore` that has them all. Callers use the names below.

Vocabulary of the free-text columns: run triggers are ``poll``, ``webhook``, ``manual``,
``drift-correction``, ``cli`` and ``rollback``; outcomes are :class:`model.Outcome` values
(a run whose process died is ``interrupted``); intent resolutions are :class:`Resolution`
values; change purposes are ``change`` (from Git) and ``rollback``; drift status is
``open``, ``flapping`` or ``resolved``.
"""

# The public surface, so that callers keep ``from reconciler.shell import records`` and
# ``records.X`` whatever module X lives in.
from reconciler.shell.records.database import Clock, StoreUnavailable, When
from reconciler.shell.records.facts import ForeignMarathon
from reconciler.shell.records.intents import Resolution
from reconciler.shell.records.rows import (
    Applied,
    AuditEntry,
    Change,
    Drift,
    HistoryEntry,
    HistoryKey,
    HistoryKind,
    HistoryRecord,
    Intent,
    PendingChange,
    Promotion,
    Quarantine,
    Release,
    ReleaseApp,
    Revision,
    Rollback,
    Run,
    SeenRevision,
    WindowHold,
    definition_digest,
    iso,
)
from reconciler.shell.records.store import NoRecords, RecordStore, open_store

__all__ = [
    "Applied", "AuditEntry", "Change", "Clock", "Drift", "ForeignMarathon",
    "HistoryEntry", "HistoryKey", "HistoryKind", "HistoryRecord", "Intent", "NoRecords",
    "PendingChange", "Promotion", "Quarantine", "RecordStore", "Release", "ReleaseApp",
    "Resolution", "Revision", "Rollback", "Run", "SeenRevision", "StoreUnavailable", "When",
    "WindowHold", "definition_digest", "iso", "open_store",
]
