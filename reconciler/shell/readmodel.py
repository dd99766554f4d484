"""The read side: what the dashboard, ``/api/v1/`` and the CLI show, as plain data.

Reads the record store and the live apps it is handed, and hands them to the core (app status
in :mod:`reconciler.core.status`, diffs in :mod:`reconciler.core.diff`), so that every view
shows the same thing; decides how a drift's patch reads old -> new. Never writes anything.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import jsonpointer

from reconciler.core import diff as diffing
from reconciler.core import model, redact, status
from reconciler.core import normalize as normalizing
from reconciler.shell import records as recording

JSON = model.JSON

_MAX_VALUE = 200
ABSENT = "(absent)"
UNKNOWN = "(not recorded)"
RELEASES_SHOWN = 20
"""Releases on the Releases page and in a page of ``GET /api/v1/releases`` by default,
newest first (``reconciler releases`` lists them all)."""
RELEASE_APPS_SHOWN = 100
"""Apps listed per release in those views, those needing attention first; every app is
counted (one release's every app: ``GET /api/v1/releases/{revision}/apps``)."""


@dataclass(frozen=True)
class PatchLine:
    """One field of a diff as people read it, always live (Marathon) -> desired (Git), masked:
    for drift as for a pending change, ``desired`` is what a sync would put back."""

    op: str
    """The patch operation as recorded (drift: desired -> live; a change: live -> desired)."""
    path: str
    live: str
    desired: str


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
    row: status.AppStatus
    diff: model.AppDiff | None
    diff_lines: tuple[PatchLine, ...]
    history: list[HistoryRow]
    drifts: list[DriftView]
    rollbacks: list[recording.Rollback]
    quarantines: list[recording.Quarantine] = field(default_factory=list)
    live_definition: str | None = None
    """The live app as Marathon returns it (tasks left out), masked, as indented JSON."""
    desired_definition: str | None = None
    """The newest revision's definition, masked, as indented JSON."""
    entries: list[recording.HistoryEntry] = field(default_factory=list)
    """The history as recorded, newest first (what ``history`` shows, for the API)."""


def value_text(value: Any) -> str:
    if value is None:
        return ABSENT
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def drift_lines(drift: recording.Drift, desired: JSON | None) -> tuple[PatchLine, ...]:
    """The drift's patch with the desired value of each path, masked, as live -> desired.

    ``desired`` is the definition last applied from Git; without it those values are unknown.
    """
    lines = []
    canonical = _canonical(desired) if desired is not None else {}
    for op in drift.patch:
        path = str(op.get("path", ""))
        kind = str(op.get("op", ""))
        if desired is None:
            wanted = UNKNOWN
        else:
            # Drift is measured on normalized apps: Marathon's defaults count as desired.
            found = jsonpointer.resolve_pointer(canonical, path, _MISSING)
            wanted = ABSENT if found is _MISSING else value_text(redact.mask(found, pointer=path))
        live = ABSENT if kind == "remove" else value_text(
            redact.mask(op.get("value"), pointer=path))
        lines.append(PatchLine(op=kind, path=path, live=live, desired=wanted))
    return tuple(lines)


def diff_lines(app_diff: model.AppDiff) -> tuple[PatchLine, ...]:
    """A current diff as lines: live, then what Git asks."""
    ops = {str(op.get("path")): str(op.get("op")) for op in app_diff.patch}
    return tuple(PatchLine(op=ops.get(c.path, str(app_diff.action)), path=c.path,
                           live=value_text(c.old), desired=value_text(c.new))
                 for c in app_diff.changes)


_MISSING = object()


def _canonical(definition: JSON) -> JSON:
    try:
        return normalizing.normalize_app(definition)
    except Exception:  # noqa: BLE001 - an odd recorded definition still shows as written
        return definition


def drift_views(store: recording.RecordStore, drifts: Sequence[recording.Drift]
                ) -> list[DriftView]:
    """Each drift with its lines, from the definition last applied to its app."""
    applied = store.last_applied(only={d.app_id for d in drifts})
    return [DriftView(drift=d, lines=drift_lines(
                d, applied[d.app_id].definition if d.app_id in applied else None))
            for d in drifts]


def latest_desired(store: recording.RecordStore,
                   revisions: Sequence[recording.SeenRevision] | None = None,
                   ) -> tuple[str | None, dict[str, JSON]]:
    """The newest revision seen and its desired definitions (empty before the first one)."""
    revision = None
    # Manual rollbacks record pseudo revisions; the desired state is the newest real one.
    for entry in store.seen_revisions() if revisions is None else revisions:
        if not entry.revision.startswith("marathon:"):
            revision = entry.revision
            break
    if revision is None:
        return None, {}
    return revision, store.desired_definitions(revision)


@dataclass(frozen=True)
class Snapshot:
    """Every app's status at one moment, with what it was computed from: the pages, the API
    and ``/metrics`` read one (:mod:`reconciler.shell.statusboard` keeps it current)."""

    revision: str | None
    desired: Mapping[str, JSON]
    rows: Sequence[status.AppStatus]
    """By app id."""
    live: Mapping[str, JSON] | None
    """None: Marathon could not be read (``live_error`` says why); empty when not kept."""
    live_error: str | None = None
    computed: status.Computed | None = field(default=None, repr=False, compare=False)
    """The rows with what each was made of: the next snapshot keeps a row whose inputs
    did not change (:func:`status.compute`)."""

    by_id: Mapping[str, status.AppStatus] = field(init=False, repr=False)
    app_ids: tuple[str, ...] = field(init=False, repr=False)
    """The rows' app ids, in the rows' order."""
    by_urgency: tuple[status.AppStatus, ...] = field(init=False, repr=False)
    """The rows, most urgent state first (``status.by_urgency``)."""
    state_counts: collections.Counter[model.AppState] = field(init=False, repr=False)
    """Apps per state (0 for a state no app is in)."""

    def __post_init__(self) -> None:
        # Made once, by whoever makes the snapshot (the status board's thread), not by each
        # page: at 10,000 apps the dashboard sorted and counted every row per request, and
        # during a release a page waits its turn for the interpreter's lock again and again
        # over its own work (it answered in up to 500 ms, docs/benchmarks.md, fifth pass).
        object.__setattr__(self, "by_id", {r.app_id: r for r in self.rows})
        object.__setattr__(self, "app_ids", tuple(r.app_id for r in self.rows))
        object.__setattr__(self, "by_urgency", tuple(status.by_urgency(self.rows)))
        object.__setattr__(self, "state_counts", collections.Counter(r.state for r in self.rows))


def snapshot(store: recording.RecordStore, live_apps: Sequence[JSON] | Mapping[str, JSON] | None,
             live_error: str | None = None, *, keep_live: bool = True,
             live_marks: Mapping[str, Hashable] | None = None,
             previous: Snapshot | None = None) -> Snapshot:
    """Every app Git or reconciler knows of, with its status (``live_apps`` None: Marathon
    could not be read). Reads each record once, whatever the number of apps.

    ``keep_live`` False: the snapshot does not hold the live apps (a reader that keeps it
    for long, such as the status board, reads one whole app when a page asks for it).
    ``live_marks`` and ``previous``: as :func:`status.compute` takes them; the rows of apps
    that did not move are ``previous``'s own objects."""
    seen = store.seen_revisions()
    revision, desired = latest_desired(store, seen)
    applied = {app_id: status.Applied(revision=a.revision, definition=a.definition,
                                      at=a.applied_at)
               for app_id, a in store.last_applied().items()}
    quarantines: dict[str, list[status.Quarantine]] = {}
    for q in store.active_quarantines():
        quarantines.setdefault(q.app_id, []).append(
            status.Quarantine(revision=q.revision, since=q.at, reason=q.reason))
    drifts: dict[str, list[status.Drift]] = {}
    for d in store.drifts(open_only=True):
        drifts.setdefault(d.app_id, []).append(status.Drift(
            since=d.first_seen_at, fields=tuple(sorted({str(op.get("path")) for op in d.patch})),
            who=" ".join(x for x in (d.client_ip, d.uri) if x) or None, policy=d.policy,
            action=d.action))
    revisions = {r.revision: status.Revision(revision=r.revision, author=r.author,
                                             message=r.message, seen_at=r.first_seen_at)
                 for r in seen}
    waiting = {h.app_id: status.Waiting(revision=h.revision, since=h.at, until=h.until,
                                        message=h.reason)
               for h in store.window_holds() if h.scope == str(model.WindowScope.REVISIONS)}
    computed = status.compute(
        desired_revision=revision, desired=desired, applied=applied, live_apps=live_apps,
        quarantines=quarantines, drifts=drifts, revisions=revisions, waiting=waiting,
        live_marks=live_marks, previous=None if previous is None else previous.computed)
    live: dict[str, JSON] | None = None
    if live_apps is not None:
        live = dict(status.by_id(live_apps)) if keep_live else {}
    return Snapshot(revision=revision, desired=desired, rows=computed.rows, live=live,
                    live_error=live_error, computed=computed)


def app_rows(store: recording.RecordStore, live_apps: Sequence[JSON] | None
             ) -> list[status.AppStatus]:
    """Every app Git or reconciler knows of, with its status (``live_apps`` None: Marathon
    could not be read)."""
    return list(snapshot(store, live_apps).rows)


def app_detail(store: recording.RecordStore, now: Snapshot, app_id: str, *,
               live_app: Callable[[str], JSON | None] | None = None) -> AppDetail | None:
    """One app's page: its row from the snapshot, its diff (this app only), its records.

    ``live_app`` reads the whole live app (the snapshot may hold only what statuses read)."""
    row = now.by_id.get(app_id)
    if row is None:
        return None
    revision, desired = now.revision, now.desired
    live = (now.live or {}).get(app_id)
    if live_app is not None and now.live is not None:
        live = live_app(app_id)
    app_diff = None
    if app_id in desired and revision is not None and now.live is not None:
        wanted = model.DesiredApp(app_id=app_id, definition=desired[app_id], source_path="")
        app_diff = diffing.diff_app(wanted, live) if live is not None else diffing.diff_apps(
            model.DesiredState(revision=revision, apps={app_id: wanted}, images={},
                               settings=model.RepoSettings(managed_prefixes=(app_id,))),
            [])[0]
    entries = list(reversed(store.history(app_id=app_id)))
    return AppDetail(
        row=row, diff=app_diff, diff_lines=diff_lines(app_diff) if app_diff else (),
        history=[history_row(e) for e in entries], entries=entries,
        drifts=drift_views(store, store.drifts(app_id=app_id)),
        rollbacks=store.rollbacks(app_id=app_id),
        quarantines=store.active_quarantines(app_id=app_id),
        live_definition=_shown({k: v for k, v in live.items() if k != "tasks"})
        if live is not None else None,
        desired_definition=_shown(desired[app_id]) if app_id in desired else None)


def _shown(definition: JSON) -> str:
    return json.dumps(redact.mask(definition), indent=2, sort_keys=True, default=str)
