"""Drift: how live differs from the desired definition last applied from Git. Pure.

Drift is measured against what reconciler last applied (not against a newer commit not yet
applied, which is a plain out-of-sync). Both sides go through the core normalizer, so fields
Marathon fills in are never drift; a port left to Marathon (``0``) is no drift either.

``find_drift(app_id, desired=..., live=..., ignore=...)`` returns a :class:`Finding` or None;
:func:`respond` is the drift policy (correct, report, or stop once correcting has become a
fight: someone or something keeps changing live back), and :func:`suggested_ignore` says what
to add to ``reconciler.yaml`` if the change is meant to stay (an autoscaler owning
``/instances``, say).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core import diff as diffing
from reconciler.core import model, redact
from reconciler.core import normalize as normalizing


class DriftKind(enum.StrEnum):
    SCALE = "scale"
    """Only ``instances`` differs: someone scaled the app."""
    CONFIG = "config"


@dataclass(frozen=True)
class Finding:
    app_id: model.AppId
    kind: DriftKind
    patch: tuple[model.JSON, ...]
    """RFC 6902 operations turning normalized desired into normalized live, masked."""
    fingerprint: str
    """Same drift, same fingerprint: ``sha256:`` of the masked patch."""

    @property
    def pointers(self) -> tuple[str, ...]:
        """The JSON pointers that differ, sorted."""
        return tuple(sorted({str(op["path"]) for op in self.patch}))


def find_drift(
    app_id: model.AppId, *, desired: model.JSON, live: model.JSON, ignore: Sequence[str] = ()
) -> Finding | None:
    """The drift of ``live`` from ``desired`` (last applied definition), None when equal."""
    ignored = tuple(ignore)
    return find_normalized_drift(app_id, desired=normalizing.normalize_app(desired, ignore=ignored),
                                 live=normalizing.normalize_app(live, ignore=ignored))


def find_normalized_drift(app_id: model.AppId, *, desired: model.JSON, live: model.JSON
                          ) -> Finding | None:
    """:func:`find_drift` of sides already normalized (the drift check memoizes them)."""
    compared = diffing.compare(desired, live)
    if compared.equal:
        return None
    patch = redact.mask_patch(diffing.make_patch(compared.desired, compared.live))
    return Finding(app_id=app_id, kind=DriftKind.SCALE if compared.scale_only else DriftKind.CONFIG,
                   patch=patch, fingerprint=fingerprint(patch))


def fingerprint(patch: Sequence[Mapping[str, Any]]) -> str:
    canonical = json.dumps(sorted((dict(op) for op in patch), key=lambda op: json.dumps(
        op, sort_keys=True)), sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def is_flapping(corrections_in_window: int, *, threshold: int) -> bool:
    """True once live was corrected ``threshold`` times within the window: stop correcting."""
    return corrections_in_window >= threshold


class Response(enum.StrEnum):
    """What to do about a drift that is still there."""

    CORRECT = "correct"
    REPORT = "report"
    REPORT_QUARANTINED = "report: app quarantined"
    """A quarantined app was rolled back on purpose: re-applying would undo that."""
    STOP_FLAPPING = "stop: flapping"
    """Corrected too often within the window: stop, alert, suggest an ignore rule."""
    LEAVE = "leave"
    """Already flapping: correction stays stopped until a human decides."""


def respond(*, policy: model.DriftPolicy, status: model.DriftStatus, quarantined: bool,
            corrections_in_window: int, flap_threshold: int) -> Response:
    """The drift policy: correct, report, or stop a fight with whoever changes live back."""
    if status is model.DriftStatus.FLAPPING:
        return Response.LEAVE
    if quarantined:
        return Response.REPORT_QUARANTINED
    if policy is model.DriftPolicy.REPORT:
        return Response.REPORT
    if is_flapping(corrections_in_window, threshold=flap_threshold):
        return Response.STOP_FLAPPING
    return Response.CORRECT


def suggested_ignore(app_id: model.AppId, pointers: Sequence[str]) -> str:
    """The ``reconciler.yaml`` lines that would stop diffing these fields of the app."""
    tops = sorted({_top(p) for p in pointers})
    lines = ["ignore:", f"  {app_id}:"] + [f"    - {p}" for p in tops]
    return "\n".join(lines)


def _top(pointer: str) -> str:
    """``/container/portMappings/0/hostPort`` is suggested whole only down to a list index."""
    tokens = pointer.split("/")[1:]
    kept: list[str] = []
    for token in tokens:
        if token.isdigit():
            break
        kept.append(token)
    return "/" + "/".join(kept) if kept else pointer
