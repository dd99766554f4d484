"""Write-ahead intents: each Marathon write, recorded before its request leaves.

The journal records an intent (app, action, digest of the desired definition, run) and only
then sends the request; once Marathon answers, the intent is resolved with the change record
that carries the deployment id. An intent still open when a run starts belongs to a
predecessor that died with a request in flight: the engine asks Marathon what became of it
and resolves it (``adopted`` with the deployment found, ``applied`` when the change reached
Marathon and ended, ``never sent``). Runs left without an outcome get ``interrupted``.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa

from reconciler.shell.records import database, rows, schema

_intents, _runs = schema.intents, schema.runs


class Resolution(enum.StrEnum):
    """How an intent ended: the closed vocabulary of ``intents.resolution``."""

    SENT = "sent"
    """Marathon answered; the change record holds the deployment."""
    NOTHING_DEPLOYED = "nothing deployed"
    """Marathon answered with an error, or there was nothing to send."""
    ADOPTED = "adopted"
    """Found running after a crash, and waited on by the successor."""
    APPLIED = "applied"
    """Found applied and finished after a crash."""
    NEVER_SENT = "never sent"
    """Marathon shows no trace of it after a crash."""


class IntentStore(database.Store):
    """Intents, and the runs a crash left without an outcome."""

    def record_intent(
        self, *, run_id: int, app_id: str, action: str, purpose: str, revision: str,
        digest: str | None, previous_version: str | None, deadline_seconds: float | None,
    ) -> int:
        """Record a write about to be sent; returns the intent's id. Call it first."""
        with self._db.lock, self._db.begin() as conn:
            result = conn.execute(_intents.insert().values(
                run_id=run_id, app_id=app_id, action=action, purpose=purpose,
                revision=revision, digest=digest, previous_version=previous_version,
                deadline_seconds=deadline_seconds, at=self._db.now()))
            return database.inserted_id(result)

    def resolve_intent(
        self, intent_id: int, *, resolution: Resolution, change_id: int | None = None
    ) -> None:
        with self._db.lock, self._db.begin() as conn:
            conn.execute(_intents.update().where(_intents.c.intent_id == intent_id).values(
                resolution=str(resolution), change_id=change_id, resolved_at=self._db.now()))

    def open_intents(self, *, before_run: int) -> list[rows.Intent]:
        """Intents of runs before ``before_run`` that were never resolved, oldest first."""
        with self._db.begin() as conn:
            found = conn.execute(
                sa.select(_intents).where(_intents.c.resolution.is_(None),
                                          _intents.c.run_id < before_run)
                .order_by(_intents.c.intent_id)).mappings().all()
        return [rows.Intent(**{k: v for k, v in r.items()
                               if k not in ("resolved_at", "resolution", "change_id")})
                for r in found]

    def intents(self, *, run_id: int | None = None) -> list[tuple[rows.Intent, str | None]]:
        """Intents with their resolution (None while open), oldest first."""
        query = sa.select(_intents)
        if run_id is not None:
            query = query.where(_intents.c.run_id == run_id)
        with self._db.begin() as conn:
            found = database.all_rows(conn, query, order_by=[_intents.c.intent_id])
        return [(rows.Intent(**{k: v for k, v in r.items()
                                if k not in ("resolved_at", "resolution", "change_id")}),
                 r["resolution"]) for r in found]

    def interrupt_runs(self, *, before_run: int, outcome: str) -> list[int]:
        """Give runs before ``before_run`` that never finished the outcome ``outcome``."""
        with self._db.lock, self._db.begin() as conn:
            ids = [int(r[0]) for r in conn.execute(
                sa.select(_runs.c.run_id).where(_runs.c.outcome.is_(None),
                                                _runs.c.run_id < before_run))]
            if ids:
                conn.execute(_runs.update().where(_runs.c.run_id.in_(ids)).values(
                    outcome=outcome, finished_at=self._db.now(),
                    error="the process running it died; its successor took over"))
        return ids
