"""App status: the one place that classifies apps for people. Pure.

Each app has two axes, as Argo CD users read them, and conditions:

- **sync**: ``Synced`` when the last applied definition is the newest revision's and live has
  not drifted from it, ``OutOfSync`` otherwise, ``Unknown`` before any revision or while
  Marathon cannot be read;
- **health**: :class:`reconciler.core.health.HealthStatus` of the live app (``Unknown`` while
  Marathon cannot be read);
- **conditions**, each with ``since``, ``reason`` and ``message``: *Quarantined* (this
  revision was rolled back for the app; cleared the moment the desired revision changes or
  the app is in sync), *Drifted* (fields, who, policy, action), *Blocked* (by a quarantined
  dependency: which), *WaitingForWindow* (a sync window holds the newest revision: until
  when).

:func:`compute` makes them from plain facts (records and live state, read by the
shell) and sums each app up in one state word (:class:`model.AppState`), most urgent first.
The dashboard, ``/api/v1/``, ``reconciler status``, metrics and notifications all read this;
nothing else classifies apps.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from reconciler.core import health, model
from reconciler.core import images as imaging
from reconciler.core import plan as planning
from reconciler.core import since as since_filter

JSON = model.JSON

URGENCY = (model.AppState.QUARANTINED, model.AppState.DEGRADED, model.AppState.BLOCKED,
           model.AppState.UNKNOWN, model.AppState.PROGRESSING, model.AppState.DRIFTED,
           model.AppState.OUT_OF_SYNC, model.AppState.IN_SYNC)
"""State words from the one that most needs a human to the calmest (the dashboard's order)."""
_URGENCY_RANK = {state: rank for rank, state in enumerate(URGENCY)}


class SyncStatus(enum.StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"


class ConditionType(enum.StrEnum):
    QUARANTINED = "Quarantined"
    DRIFTED = "Drifted"
    BLOCKED = "Blocked"
    WAITING = "WaitingForWindow"


@dataclass(frozen=True, slots=True)
class Condition:
    type: ConditionType
    since: str | None
    """ISO time the condition started, when known."""
    reason: str
    """A machine-readable word: ``RolledBack``, ``ManualChange``, ``DependencyQuarantined``."""
    message: str
    """What a person reads."""


@dataclass(frozen=True, slots=True)
class Applied:
    """What reconciler last applied to an app: the revision and its desired definition."""

    revision: str
    definition: JSON
    at: str | None = None


@dataclass(frozen=True)
class Quarantine:
    """An active quarantine: ``revision`` was rolled back for the app."""

    revision: str
    since: str | None
    reason: str | None


@dataclass(frozen=True)
class Drift:
    """An open drift record of the app."""

    since: str | None
    fields: tuple[str, ...]
    who: str | None
    """The Marathon client that wrote it, when known (``10.1.2.3 PUT /v2/apps/x``)."""
    policy: str
    action: str | None


@dataclass(frozen=True)
class Waiting:
    """A sync window holds the app's change to ``revision`` (planned, not applied)."""

    revision: str
    since: str | None
    until: str | None
    message: str
    """``waiting for window until <time> (<which window>)``."""


@dataclass(frozen=True)
class Revision:
    """What people want to know about a revision: who made it and why."""

    revision: str
    author: str | None = None
    message: str | None = None
    seen_at: str | None = None


@dataclass(frozen=True, slots=True)
class AppStatus:
    app_id: str
    state: model.AppState
    """The one word that sums the app up, for sorting and at-a-glance reading."""
    sync: SyncStatus
    health: str
    """A :class:`health.HealthStatus` value."""
    conditions: tuple[Condition, ...]
    since: str | None
    """When the app entered ``state``, when known."""
    revision: str | None
    """The config repo revision last applied to this app."""
    cause: Revision | None
    """The revision behind the state (a quarantined one, one not applied yet, the applied one)."""
    image: str | None
    image_tag: str | None
    healthy: int
    instances: int
    open_drifts: int
    quarantine: str | None
    """Why the app is quarantined, when it is."""
    failure: str | None = None
    tasks: tuple[JSON, ...] = field(default=())
    """Live tasks: id, host, state and health, for the on-call views."""

    def condition(self, kind: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type is kind), None)

    def as_json(self) -> JSON:
        out: dict[str, Any] = asdict(self)
        out["state"] = str(self.state)
        out["sync"] = str(self.sync)
        out["conditions"] = [{**asdict(c), "type": str(c.type)} for c in self.conditions]
        return out


class _Facts(NamedTuple):
    """Everything an app's row is made of besides its live app: the row is :func:`_row` of
    these and the live app, and nothing else."""

    app_id: str
    live_mark: Hashable
    """The mark of the live app's status view (:func:`compute`): equal facts, equal rows."""
    live_read: bool
    """False: Marathon could not be read."""
    sync: SyncStatus
    conditions: tuple[Condition, ...]
    revision: str | None
    """The revision last applied."""
    applied_at: str | None
    desired_image: str | None
    desired_seen: Revision | None
    """The revision Git asks for now, as first seen."""
    cause: Revision | None
    quarantine: str | None
    open_drifts: int


@dataclass(frozen=True)
class Computed:
    """Rows, and what each was made from: the next :func:`compute` keeps the row of an app
    whose facts and live status view did not change, without reading its live app."""

    rows: Sequence[AppStatus]
    """Sorted by app id."""
    inputs: Mapping[str, _Facts] = field(default_factory=dict, repr=False)
    """What each row was made of, by app id (with ``live_marks`` only)."""

    def rows_by_id(self) -> dict[str, AppStatus]:
        return {r.app_id: r for r in self.rows}


def app_statuses(
    *, desired_revision: str | None, desired: Mapping[str, JSON],
    applied: Mapping[str, Applied], live_apps: Sequence[JSON] | Mapping[str, JSON] | None,
    quarantines: Mapping[str, Sequence[Quarantine]], drifts: Mapping[str, Sequence[Drift]],
    revisions: Mapping[str, Revision] | None = None,
    waiting: Mapping[str, Waiting] | None = None,
) -> list[AppStatus]:
    """Every app Git or reconciler knows of, sorted by id: :func:`compute`'s rows, for a
    reader that keeps nothing between two computations."""
    computed = compute(desired_revision=desired_revision, desired=desired, applied=applied,
                       live_apps=live_apps, quarantines=quarantines, drifts=drifts,
                       revisions=revisions, waiting=waiting)
    return list(computed.rows)


def compute(
    *, desired_revision: str | None, desired: Mapping[str, JSON],
    applied: Mapping[str, Applied], live_apps: Sequence[JSON] | Mapping[str, JSON] | None,
    quarantines: Mapping[str, Sequence[Quarantine]], drifts: Mapping[str, Sequence[Drift]],
    revisions: Mapping[str, Revision] | None = None,
    waiting: Mapping[str, Waiting] | None = None,
    live_marks: Mapping[str, Hashable] | None = None,
    previous: Computed | None = None,
) -> Computed:
    """Every app Git or reconciler knows of, sorted by id, with what each row was made from.

    ``live_apps`` None means Marathon could not be read: health and sync are ``Unknown``.
    By id (a mapping) each live app is looked up once, as its row is made: a mapping that
    builds each app when asked never holds them all at once.

    ``live_marks``: a mark of each live app's status view, by id, equal only for equal
    views. With it, an app whose mark and facts are those its ``previous`` row was made of
    keeps that row, and its live app is not looked up: the status board recomputes every
    second or so during a release, and unpacking and assessing 10,000 apps each time kept
    the interpreter from the pages.
    ``previous``: a row equal to its previous one is that very object too. Compared as
    each row is made, so a recomputation holds one new row at a time for the apps that
    did not move, not 10,000 to throw away.
    """
    before = previous.rows_by_id() if previous is not None else {}
    inputs_before = previous.inputs if previous is not None else {}
    known = revisions or {}
    live_by_id = by_id(live_apps or ())
    ids = sorted(desired.keys() | applied.keys())
    synced = {app_id: _synced(app_id, desired=desired, applied=applied, drifts=drifts)
              and (live_apps is None or app_id in live_by_id) for app_id in ids}
    # Only a quarantine of the revision Git asks for now holds the app: a fix-forward (a new
    # revision) or an app back in sync clears it, whatever the records still say.
    quarantined = {app_id: q for app_id, held in quarantines.items() for q in held
                   if q.revision == desired_revision and not synced.get(app_id, False)}
    blocked = _blocked(desired=desired, synced=synced, quarantined=quarantined)
    statuses = []
    inputs: dict[str, _Facts] = {}
    marks = live_marks if live_apps is not None else None
    for app_id in ids:
        sync = (SyncStatus.UNKNOWN if desired_revision is None or live_apps is None
                else SyncStatus.SYNCED if synced[app_id] else SyncStatus.OUT_OF_SYNC)
        quarantine = quarantined.get(app_id)
        conditions = _conditions(app_id, quarantine=quarantine, drifts=drifts.get(app_id, ()),
                                 blocked=blocked, quarantined=quarantined,
                                 synced=synced[app_id])
        held = (waiting or {}).get(app_id)
        if held is not None and held.revision == desired_revision and not synced[app_id]:
            # Only a hold of the revision Git asks for now is true: a newer one replaces it.
            conditions += (Condition(type=ConditionType.WAITING, since=held.since,
                                     reason="SyncWindow", message=held.message),)
        last = applied.get(app_id)
        facts = _Facts(
            app_id=app_id, live_mark=marks.get(app_id) if marks is not None else None,
            live_read=live_apps is not None, sync=sync, conditions=conditions,
            revision=last.revision if last else None, applied_at=last.at if last else None,
            desired_image=_image(desired.get(app_id)),
            desired_seen=known.get(desired_revision or ""),
            cause=_cause(quarantine=quarantine, last=last, synced=synced[app_id],
                         desired_revision=desired_revision, known=known),
            quarantine=(quarantine.reason or "quarantined") if quarantine else None,
            open_drifts=len(drifts.get(app_id, ())))
        kept = before.get(app_id)
        if marks is not None:
            made_of = inputs_before.get(app_id)
            if kept is not None and made_of == facts:
                statuses.append(kept)
                inputs[app_id] = made_of
                continue
            inputs[app_id] = facts
        row = _row(facts, live_by_id.get(app_id))
        statuses.append(kept if kept == row else row)
    return Computed(rows=statuses, inputs=inputs)


def _row(facts: _Facts, live: JSON | None) -> AppStatus:
    """An app's row, of its facts and its live app alone: so :func:`compute` may keep a row
    while its facts, the live app's mark among them, stay equal."""
    assessed = health.assess(facts.app_id, live) if facts.live_read else None
    state = _state(sync=facts.sync, assessed=assessed, conditions=facts.conditions)
    image = _image(live) or facts.desired_image
    return AppStatus(
        app_id=facts.app_id, state=state, sync=facts.sync,
        health=str(assessed.status if assessed else health.HealthStatus.UNKNOWN),
        conditions=facts.conditions,
        since=_since(state, conditions=facts.conditions, live=live,
                     applied_at=facts.applied_at, desired_seen=facts.desired_seen),
        revision=facts.revision, cause=facts.cause, image=image, image_tag=image_tag(image),
        healthy=assessed.healthy if assessed else 0,
        instances=assessed.target if assessed else 0,
        open_drifts=facts.open_drifts, quarantine=facts.quarantine,
        failure=assessed.failure if assessed else None,
        tasks=tuple(_task(t) for t in (live or {}).get("tasks") or ()))


def by_id(live_apps: Sequence[JSON] | Mapping[str, JSON]) -> Mapping[str, JSON]:
    """Live apps by id: a mapping as it is, a list indexed by each app's ``id``."""
    if isinstance(live_apps, Mapping):
        return live_apps
    return {str(a.get("id")): a for a in live_apps}


def app_state(*, assessed: health.AppHealth, quarantined: bool, drifted: bool,
              in_sync_with_git: bool, blocked: bool = False) -> model.AppState:
    """The one status word, most urgent first: a human must act on the first ones."""
    if quarantined:
        return model.AppState.QUARANTINED
    if assessed.status in (health.HealthStatus.DEGRADED, health.HealthStatus.MISSING):
        return model.AppState.DEGRADED
    if blocked:
        return model.AppState.BLOCKED
    if assessed.status is health.HealthStatus.PROGRESSING:
        return model.AppState.PROGRESSING
    if drifted:
        return model.AppState.DRIFTED
    if not in_sync_with_git:
        return model.AppState.OUT_OF_SYNC
    return model.AppState.IN_SYNC


def by_urgency(statuses: Sequence[AppStatus]) -> list[AppStatus]:
    return sorted(statuses, key=lambda s: (_URGENCY_RANK[s.state], s.app_id))


def image_tag(image: str | None) -> str | None:
    if not image:
        return None
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _synced(app_id: str, *, desired: Mapping[str, JSON], applied: Mapping[str, Applied],
            drifts: Mapping[str, Sequence[Drift]]) -> bool:
    last = applied.get(app_id)
    return (last is not None and app_id in desired and last.definition == desired[app_id]
            and not drifts.get(app_id))


def _conditions(
    app_id: str, *, quarantine: Quarantine | None, drifts: Sequence[Drift],
    blocked: Mapping[str, tuple[str, str]], quarantined: Mapping[str, Quarantine], synced: bool,
) -> tuple[Condition, ...]:
    out = []
    if quarantine is not None:
        out.append(Condition(
            type=ConditionType.QUARANTINED, since=quarantine.since, reason="RolledBack",
            message=f"revision {quarantine.revision[:12]} was rolled back and will not be "
                    f"applied again until Git changes"
                    + (f": {quarantine.reason}" if quarantine.reason else "")))
    for drift in drifts[:1]:
        fields = ", ".join(drift.fields) or "the whole app"
        out.append(Condition(
            type=ConditionType.DRIFTED, since=drift.since, reason="ManualChange",
            message=f"{fields} changed outside Git"
                    + (f" by {drift.who}" if drift.who else "")
                    + f"; policy {drift.policy}, action {drift.action or 'none yet'}"))
    if not synced and app_id in blocked:
        blocker, root = blocked[app_id]
        held = ("whose revision is quarantined" if blocker == root
                else f"held back behind {root}, whose revision is quarantined")
        out.append(Condition(
            type=ConditionType.BLOCKED, since=quarantined[root].since,
            reason="DependencyQuarantined", message=f"waits for {blocker}, {held}"))
    return tuple(out)


def _blocked(*, desired: Mapping[str, JSON], synced: Mapping[str, bool],
             quarantined: Mapping[str, Quarantine]) -> dict[str, tuple[str, str]]:
    """Apps out of sync held back by a quarantined dependency, directly or through other held
    apps: app -> (the dependency it waits for, the quarantined app at the root)."""
    blocked: dict[str, tuple[str, str]] = {}
    changed = True
    while changed:  # to a fixed point: each pass reaches one more level of dependents
        changed = False
        for app_id, definition in desired.items():
            if app_id in blocked or app_id in quarantined or synced.get(app_id, False):
                continue
            for dependency in planning.dependencies_of(app_id, definition):
                if dependency in quarantined:
                    blocked[app_id] = (dependency, dependency)
                elif dependency in blocked:
                    blocked[app_id] = (dependency, blocked[dependency][1])
                else:
                    continue
                changed = True
                break
    return blocked


def _state(*, sync: SyncStatus, assessed: health.AppHealth | None,
           conditions: Sequence[Condition]) -> model.AppState:
    kinds = {c.type for c in conditions}
    if assessed is None:
        return (model.AppState.QUARANTINED if ConditionType.QUARANTINED in kinds
                else model.AppState.UNKNOWN)
    return app_state(assessed=assessed, quarantined=ConditionType.QUARANTINED in kinds,
                     drifted=ConditionType.DRIFTED in kinds,
                     in_sync_with_git=sync is SyncStatus.SYNCED,
                     blocked=ConditionType.BLOCKED in kinds)


def _since(state: model.AppState, *, conditions: Sequence[Condition], live: JSON | None,
           applied_at: str | None, desired_seen: Revision | None) -> str | None:
    by_type = {c.type: c.since for c in conditions}
    info = (live or {}).get("versionInfo") or {}
    failure = (live or {}).get("lastTaskFailure") or {}
    return {
        model.AppState.QUARANTINED: by_type.get(ConditionType.QUARANTINED),
        model.AppState.BLOCKED: by_type.get(ConditionType.BLOCKED),
        model.AppState.DRIFTED: by_type.get(ConditionType.DRIFTED),
        model.AppState.DEGRADED: failure.get("timestamp") or info.get("lastConfigChangeAt"),
        model.AppState.PROGRESSING: info.get("lastConfigChangeAt") or (live or {}).get("version"),
        model.AppState.OUT_OF_SYNC: desired_seen.seen_at if desired_seen else None,
        # Since the later of: applied, and live's last change (a rollback, a corrected drift).
        model.AppState.IN_SYNC: since_filter.latest(
            applied_at, info.get("lastConfigChangeAt"),
            info.get("lastScalingAt")),
    }.get(state)


def _cause(*, quarantine: Quarantine | None, last: Applied | None, synced: bool,
           desired_revision: str | None, known: Mapping[str, Revision]) -> Revision | None:
    """The revision behind the app's state: the quarantined one; else the newest one Git asks
    for (which an app in sync matches, whichever run applied the same definition); else, with
    no revision seen, the last applied one."""
    if quarantine is not None:
        revision: str | None = quarantine.revision
    elif desired_revision is not None and (synced or last is None
                                           or last.revision != desired_revision):
        revision = desired_revision
    else:
        revision = last.revision if last else desired_revision
    if revision is None:
        return None
    return known.get(revision, Revision(revision=revision))


def _task(task: Mapping[str, Any]) -> JSON:
    results = task.get("healthCheckResults") or ()
    alive = None if not results else all(r.get("alive") is True for r in results)
    return {"id": task.get("id"), "host": task.get("host"), "state": task.get("state"),
            "version": task.get("version"), "healthy": alive}


def _image(app: Mapping[str, Any] | None) -> str | None:
    return None if app is None else imaging.image_of(app)
