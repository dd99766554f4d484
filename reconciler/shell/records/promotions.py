"""Promotions: each one recorded in the target environment's records when its commit is
pushed, and linked to the target's release of that commit once it has rolled out."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from reconciler.shell.records import database, rows, schema

_promotions = schema.promotions


class PromotionStore(database.Store):
    """Promotions into this store's environment."""

    def record_promotion(
        self, *, image: str, tag: str, previous_tag: str | None, source: str, target: str,
        source_revision: str | None, commit: str, requested_by: str | None, automatic: bool,
        evidence: Sequence[Mapping[str, Any]],
    ) -> int:
        with self._db.lock, self._db.begin() as conn:
            result = conn.execute(_promotions.insert().values(
                image=image, tag=tag, previous_tag=previous_tag, source=source, target=target,
                source_revision=source_revision, commit=commit, requested_by=requested_by,
                automatic=automatic, evidence=json.dumps(list(evidence), default=str),
                at=self._db.now()))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def link_promotion(self, promotion_id: int, *, target_revision: str) -> None:
        """The target's release of the promotion's commit has appeared."""
        with self._db.lock, self._db.begin() as conn:
            conn.execute(_promotions.update().where(
                _promotions.c.promotion_id == promotion_id).values(
                    target_revision=target_revision, linked_at=self._db.now()))

    def promotions(self, *, limit: int | None = None, unlinked_only: bool = False
                   ) -> list[rows.Promotion]:
        """Promotions, newest first."""
        query = sa.select(_promotions).limit(limit)
        if unlinked_only:
            query = query.where(_promotions.c.target_revision.is_(None))
        with self._db.begin() as conn:
            return [_promotion(r) for r in database.all_rows(
                conn, query, order_by=[_promotions.c.promotion_id.desc()])]


def _promotion(row: Mapping[Any, Any]) -> rows.Promotion:
    return rows.Promotion(
        promotion_id=row["promotion_id"], image=row["image"], tag=row["tag"],
        previous_tag=row["previous_tag"], source=row["source"], target=row["target"],
        source_revision=row["source_revision"], commit=row["commit"],
        target_revision=row["target_revision"], requested_by=row["requested_by"],
        automatic=bool(row["automatic"]), evidence=tuple(json.loads(row["evidence"])),
        at=rows.iso(row["at"]), linked_at=rows.iso(row["linked_at"]))
