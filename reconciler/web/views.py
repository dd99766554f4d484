"""What the on-call pages and the JSON API show, as plain data built from records and live.

One place decides an app's state word, its image tag and health figures, how a drift's patch
reads old -> new and which time window a filter means, so that the dashboard, the drift report
and ``/api/v1`` never disagree. Reads the record store and the live apps it is handed; never
writes anything.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import jsonpointer

from reconciler.core import diff as diffing
from reconciler.core import health, model, redact
from reconciler.core import normalize as normalizing
from reconciler.shell import records as recording

JSON = model.JSON
LiveApps = Callable[[], Sequence[JSON]]
"""Live Marathon apps with ``apps.tasks``, ``apps.deployments`` and ``apps.lastTaskFailure``."""

_MAX_VALUE = 200
ABSENT = "(absent)"
UNKNOWN = "(not recorded)"


@dataclass(frozen=True)
class PatchLine:
    """One field of a diff as people read it: desired (Git) value -> live value, masked."""

    op: str
    path: str
    old: str
    new: str


@dataclass(frozen=True)
class DriftView:
    drift: recording.Drift
    lines: tuple[PatchLine, ...]

    @property
    def is_open(self) -> bool:
        return self.drift.status != "resolved"

    def as_json(self) -> JSON:
        return {**asdict(self.drift), "changes": [asdict(line) for line in self.lines],
                "suggested_ignore": self.drift.suggested_ignore}


@dataclass(frozen=True)
class AppRow:
    app_id: str
    state: model.AppState
    revision: str | None
    """The config repo revision last applied to this app."""
    image: str | None
    image_tag: str | None
    health: str
    healthy: int
    instances: int
    open_drifts: int
    quarantine: str | None
    """Why the app is quarantined, when it is."""
    failure: str | None = None

    def as_json(self) -> JSON:
        out = asdict(self)
        out["state"] = str(self.state)
        return out


@dataclass(frozen=True)
class HistoryRow:
    """One line of an app's deployment history, whatever kind of record it came from."""

    at: str
    what: str
    outcome: str | None
    revision: str
    details: str
    deployment_id: str | None
    patch: tuple[JSON, ...]


def history_row(entry: recording.HistoryEntry) -> HistoryRow:
    record = entry.record
    revision: str = getattr(record, "revision", "")
    deployment_id: str | None = None
    patch: tuple[JSON, ...] = ()
    match record:
        case recording.Change():
            what = record.action + (
                f" ({record.purpose})" if record.purpose and record.purpose != "change" else "")
            details, outcome = record.reason or "", record.outcome
            deployment_id, patch = record.deployment_id, record.patch
        case recording.Rollback():
            what = f"rollback ({record.method or 'automatic'})"
            details = "; ".join(str(v) for v in (
                record.reason, record.failure,
                f"stuck at {record.stuck_step}" if record.stuck_step else None,
                f"by {record.requested_by}" if record.requested_by else None,
                f"version {record.from_version or '?'} -> {record.to_version or '?'}",
            ) if v)
            outcome = record.outcome
        case recording.Quarantine():
            what = "quarantine"
            details = (record.reason or "") + (
                f"; lifted by {record.lifted_by} at {record.lifted_at}"
                if record.lifted_by else "")
            outcome = "lifted" if record.lifted_at else str(model.AppState.QUARANTINED)
        case recording.Run():
            what, details, outcome = entry.kind, record.error or "", record.outcome
    return HistoryRow(at=entry.at, what=what, outcome=outcome, revision=revision,
                      details=details, deployment_id=deployment_id, patch=patch)


@dataclass(frozen=True)
class AppDetail:
    row: AppRow
    diff: model.AppDiff | None
    diff_lines: tuple[PatchLine, ...]
    history: list[HistoryRow]
    drifts: list[DriftView]
    rollbacks: list[recording.Rollback]
    quarantines: list[recording.Quarantine] = field(default_factory=list)


def value_text(value: Any) -> str:
    if value is None:
        return ABSENT
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def drift_lines(drift: recording.Drift, desired: JSON | None) -> tuple[PatchLine, ...]:
    """The drift's patch (desired -> live) with the desired value of each path, masked.

    ``desired`` is the definition last applied from Git; without it the old values are unknown.
    """
    lines = []
    canonical = _canonical(desired) if desired is not None else {}
    for op in drift.patch:
        path = str(op.get("path", ""))
        kind = str(op.get("op", ""))
        if desired is None:
            old = UNKNOWN
        else:
            # Drift is measured on normalized apps: Marathon's defaults count as desired.
            found = jsonpointer.resolve_pointer(canonical, path, _MISSING)
            old = ABSENT if found is _MISSING else value_text(redact.mask(found, pointer=path))
        new = ABSENT if kind == "remove" else value_text(
            redact.mask(op.get("value"), pointer=path))
        lines.append(PatchLine(op=kind, path=path, old=old, new=new))
    return tuple(lines)


def diff_lines(app_diff: model.AppDiff) -> tuple[PatchLine, ...]:
    """A current diff (live -> desired) as lines: old is live, new is what Git asks."""
    ops = {str(op.get("path")): str(op.get("op")) for op in app_diff.patch}
    return tuple(PatchLine(op=ops.get(c.path, str(app_diff.action)), path=c.path,
                           old=value_text(c.old), new=value_text(c.new))
                 for c in app_diff.changes)


_MISSING = object()


def _canonical(definition: JSON) -> JSON:
    try:
        return normalizing.normalize_app(definition)
    except Exception:  # noqa: BLE001 - an odd recorded definition still shows as written
        return definition


def drift_views(store: recording.RecordStore, drifts: Sequence[recording.Drift]
                ) -> list[DriftView]:
    applied = store.last_applied()
    return [DriftView(drift=d, lines=drift_lines(
                d, applied[d.app_id].definition if d.app_id in applied else None))
            for d in drifts]


def image_tag(image: str | None) -> str | None:
    if not image:
        return None
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _image(app: Mapping[str, Any] | None) -> str | None:
    if app is None:
        return None
    docker = (app.get("container") or {}).get("docker") or {}
    image = docker.get("image")
    return str(image) if image else None


URGENCY = (model.AppState.QUARANTINED, model.AppState.DEGRADED, model.AppState.PROGRESSING,
           model.AppState.DRIFTED, model.AppState.OUT_OF_SYNC, model.AppState.IN_SYNC)
"""State words from the one that most needs a human to the calmest (the dashboard's order)."""


def by_urgency(rows: Sequence[AppRow]) -> list[AppRow]:
    return sorted(rows, key=lambda r: (URGENCY.index(r.state), r.app_id))


def app_state(*, assessed: health.AppHealth, quarantined: bool, drifted: bool,
              in_sync_with_git: bool) -> model.AppState:
    """The one status word, most urgent first: a human must act on the first ones."""
    if quarantined:
        return model.AppState.QUARANTINED
    if assessed.status in (health.HealthStatus.DEGRADED, health.HealthStatus.MISSING):
        return model.AppState.DEGRADED
    if assessed.status is health.HealthStatus.PROGRESSING:
        return model.AppState.PROGRESSING
    if drifted:
        return model.AppState.DRIFTED
    if not in_sync_with_git:
        return model.AppState.OUT_OF_SYNC
    return model.AppState.IN_SYNC


def latest_desired(store: recording.RecordStore, live_ids: Iterable[str] = ()
                   ) -> tuple[str | None, dict[str, JSON]]:
    """The newest revision seen and its desired definitions (empty before the first one).

    The store hands definitions out per app, so the candidates are every app reconciler ever
    changed or that is live now.
    """
    revision = None
    # Manual rollbacks record pseudo revisions; the desired state is the newest real one.
    for entry in store.revisions():
        if not entry.revision.startswith("marathon:"):
            revision = entry.revision
            break
    if revision is None:
        return None, {}
    candidates = set(store.last_applied()) | set(live_ids) | {
        c.app_id for c in store.changes()}
    definitions: dict[str, JSON] = {}
    for app_id in sorted(candidates):
        definition = store.desired_definition(revision=revision, app_id=app_id)
        if definition is not None:
            definitions[app_id] = definition
    return revision, definitions


def app_rows(store: recording.RecordStore, live_apps: Sequence[JSON]) -> list[AppRow]:
    """Every app Git or reconciler knows of, with state, revision, image tag and health."""
    live_by_id = {str(a.get("id")): a for a in live_apps}
    _, desired = latest_desired(store, live_by_id)
    applied = store.last_applied()
    quarantines = {q.app_id: q.reason or "quarantined"
                   for q in reversed(store.active_quarantines())}
    open_drifts: dict[str, int] = {}
    for d in store.drifts(open_only=True):
        open_drifts[d.app_id] = open_drifts.get(d.app_id, 0) + 1
    rows = []
    for app_id in sorted(desired.keys() | applied.keys()):
        live = live_by_id.get(app_id)
        assessed = health.assess(app_id, live)
        last = applied.get(app_id)
        revision, applied_definition = (last.revision, last.definition) if last else (None, None)
        in_sync = app_id in desired and applied_definition == desired[app_id]
        image = _image(live) or _image(desired.get(app_id))
        rows.append(AppRow(
            app_id=app_id,
            state=app_state(assessed=assessed, quarantined=app_id in quarantines,
                            drifted=app_id in open_drifts, in_sync_with_git=in_sync),
            revision=revision, image=image, image_tag=image_tag(image),
            health=str(assessed.status), healthy=assessed.healthy, instances=assessed.target,
            open_drifts=open_drifts.get(app_id, 0), quarantine=quarantines.get(app_id),
            failure=assessed.failure))
    return rows


def app_detail(store: recording.RecordStore, live_apps: Sequence[JSON], app_id: str
               ) -> AppDetail | None:
    rows = {r.app_id: r for r in app_rows(store, live_apps)}
    row = rows.get(app_id)
    if row is None:
        return None
    revision, desired = latest_desired(store, [app_id])
    live = {str(a.get("id")): a for a in live_apps}.get(app_id)
    app_diff = None
    if app_id in desired and revision is not None:
        wanted = model.DesiredApp(app_id=app_id, definition=desired[app_id], source_path="")
        app_diff = diffing.diff_app(wanted, live) if live is not None else diffing.diff_apps(
            model.DesiredState(revision=revision, apps={app_id: wanted}, images={},
                               settings=model.RepoSettings(managed_prefixes=(app_id,))),
            [])[0]
    return AppDetail(
        row=row, diff=app_diff, diff_lines=diff_lines(app_diff) if app_diff else (),
        history=[history_row(e) for e in reversed(store.history(app_id=app_id))],
        drifts=drift_views(store, store.drifts(app_id=app_id)),
        rollbacks=store.rollbacks(app_id=app_id),
        quarantines=[q for q in store.active_quarantines() if q.app_id == app_id])


_DURATION = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")


def parse_since(text: str | None, *, now: float) -> float | None:
    """A filter's start as UNIX seconds: ``30m``, ``24h``, ``7d`` or an ISO-8601 time.

    Raises ValueError with what is accepted.
    """
    if text is None or not text.strip():
        return None
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now - amount * {"m": 60, "h": 3600, "d": 86400}[unit]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"since={text!r}: give 30m, 24h, 7d or an ISO time "
                         "such as 2026-11-25T03:00:00+00:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


RequestSync = Callable[[str | None, str], str]
"""``(app_id or None for all, who) -> what happens next``; queues a sync, must not block long."""
Rollback = Callable[[str, str], str]
"""``(app_id, who) -> what happened``; puts the app back to its previous Marathon version."""


@dataclass(frozen=True)
class Deps:
    """What the on-call pages and the API need from the controller; the controller builds it.

    ``token`` is the API token for actions (``None``: every action is refused). ``live_apps``
    reads Marathon (the controller may hand out its last poll instead of a fresh request).
    """

    records: recording.RecordStore
    live_apps: LiveApps
    request_sync: RequestSync
    rollback: Rollback
    token: str | None
    clock: Callable[[], float] = time.time
