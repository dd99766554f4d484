"""What the record store hands out: typed, frozen rows, and how their values read.

Times are ISO-8601 strings (UTC, whole seconds), except :attr:`PendingChange.started_at`,
which the engine computes deadlines from. Patches are tuples of RFC 6902 operations with
secrets masked. Nothing here touches the database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, overload

from reconciler.core import drift as drifting
from reconciler.core import releases as releasing


@overload
def iso(seconds: float) -> str: ...
@overload
def iso(seconds: None) -> None: ...
@overload
def iso(seconds: float | None) -> str | None: ...


def iso(seconds: float | None) -> str | None:
    """UNIX seconds as an ISO-8601 UTC time (``2026-11-25T06:11:46+00:00``)."""
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


def definition_digest(definition: Mapping[str, Any]) -> str:
    """A stable digest of a desired definition (key order does not matter)."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class SeenRevision:
    """A revision as first seen: what it is and who made it (not how its runs went)."""

    revision: str
    """Git commit sha, or ``dir:<content digest>``."""
    source: str | None
    ref: str | None
    author: str | None
    message: str | None
    committed_at: str | None
    first_seen_at: str


@dataclass(frozen=True)
class Revision(SeenRevision):
    """A revision seen, with how many apps it holds and how its runs and release went."""

    apps: int
    """How many apps this revision's desired state holds."""
    last_outcome: str | None
    """Outcome of the last (not dry) run of this revision, None when it never ran."""
    last_trigger: str | None


@dataclass(frozen=True)
class Run:
    run_id: int
    revision: str
    trigger: str
    requested_by: str | None
    dry_run: bool
    started_at: str
    finished_at: str | None
    outcome: str | None
    """None while the run is in progress (or when the controller died during it)."""
    error: str | None
    summary: str | None
    term: int | None = None
    """The leadership term of the replica that wrote it (None: a single replica)."""


@dataclass(frozen=True)
class Change:
    change_id: int
    run_id: int
    app_id: str
    action: str
    revision: str
    purpose: str
    patch: tuple[dict[str, Any], ...]
    """RFC 6902 operations, secrets masked."""
    deployment_id: str | None
    version: str | None
    previous_version: str | None
    """The live Marathon version before this change (what a rollback returns to)."""
    deadline_seconds: float | None
    started_at: str
    finished_at: str | None
    outcome: str | None
    reason: str | None
    term: int | None = None
    """The leadership term of the replica that wrote it (None: a single replica)."""


@dataclass(frozen=True)
class PendingChange:
    """A change whose Marathon deployment was started but whose outcome was never recorded."""

    change_id: int
    run_id: int
    app_id: str
    action: str
    revision: str
    deployment_id: str
    version: str
    previous_version: str | None
    purpose: str
    started_at: float
    """UNIX seconds (the engine computes deadlines from it)."""
    deadline_seconds: float | None


@dataclass(frozen=True)
class Intent:
    """A Marathon write recorded before its request left; open until its fate is known."""

    intent_id: int
    run_id: int
    app_id: str
    action: str
    purpose: str
    revision: str
    digest: str | None
    """:func:`definition_digest` of the definition sent (None for a delete)."""
    previous_version: str | None
    deadline_seconds: float | None
    at: float
    """UNIX seconds (deadlines of adopted deployments are counted from it)."""
    term: int | None = None
    """The leadership term of the replica that wrote it (None: a single replica)."""


@dataclass(frozen=True)
class Rollback:
    rollback_id: int
    run_id: int | None
    app_id: str
    from_version: str | None
    to_version: str | None
    reason: str | None
    """Why: deadline missed, deployment failed, manual."""
    failure: str | None
    """Marathon's ``lastTaskFailure`` message, when there was one."""
    stuck_step: str | None
    method: str | None
    outcome: str | None
    requested_by: str | None
    at: str
    term: int | None = None
    """The leadership term of the replica that wrote it (None: a single replica)."""


@dataclass(frozen=True)
class Quarantine:
    quarantine_id: int
    app_id: str
    revision: str
    reason: str | None
    at: str
    lifted_at: str | None
    lifted_by: str | None
    term: int | None = None
    """The leadership term of the replica that wrote it (None: a single replica)."""


@dataclass(frozen=True, slots=True)
class Applied:
    """The last desired state applied successfully to one app: what drift is measured against."""

    app_id: str
    revision: str
    definition: dict[str, Any]
    applied_at: str

    @property
    def digest(self) -> str:
        """Computed when asked: the records of 10,000 apps are read often, digests seldom."""
        return definition_digest(self.definition)


@dataclass(frozen=True)
class Drift:
    drift_id: int
    app_id: str
    kind: str
    """``scale`` (only instances differ) or ``config``."""
    patch: tuple[dict[str, Any], ...]
    """JSON Patch from desired to live, secrets masked."""
    first_seen_at: str
    last_seen_at: str
    client_ip: str | None
    uri: str | None
    attributed_at: str | None
    live_version: str | None
    policy: str
    action: str | None
    """What was done: ``corrected``, ``reported``, ``blocked``, ``overwritten``,
    ``flapping-stopped``, ``acknowledged`` (:class:`model.DriftAction`)."""
    status: str
    """``open``, ``flapping`` or ``resolved``."""
    corrections: int
    corrected_at: tuple[str, ...]
    resolved_at: str | None
    acknowledged_by: str | None
    run_id: int | None = None
    """The run that corrected it (action ``corrected``), or that overwrote it."""
    revision: str | None = None
    """The revision whose sync overwrote it (action ``overwritten``)."""
    reason: str | None = None
    """Why it was left alone: reported, or blocked (and by what)."""

    @property
    def suggested_ignore(self) -> str | None:
        """For flapping drift: the ``reconciler.yaml`` lines that would accept these changes
        (something outside Git owns the fields, an autoscaler say); None otherwise."""
        if self.status != "flapping":
            return None
        return drifting.suggested_ignore(self.app_id, [op["path"] for op in self.patch])


@dataclass(frozen=True)
class ReleaseApp:
    """One app's change in a release, and how it ended (None: not ended yet)."""

    app_id: str
    action: str
    outcome: str | None
    reason: str | None
    run_id: int | None
    at: str
    """When the row was last written (the outcome's time once it has one)."""
    started_at: str | None = None
    """When the app's change started (None in releases recorded before waves)."""

    def as_json(self) -> dict[str, Any]:
        return {"app": self.app_id, "action": self.action, "outcome": self.outcome,
                "reason": self.reason, "runId": self.run_id, "at": self.at,
                "startedAt": self.started_at}


@dataclass(frozen=True)
class ReleaseWave:
    """One release wave of a release: its state, its apps, its soak and its times."""

    name: str
    state: str
    apps: tuple[str, ...]
    soak: float
    started_at: str | None
    finished_at: str | None
    reason: str | None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "apps": list(self.apps),
                "soakSeconds": self.soak, "startedAt": self.started_at,
                "finishedAt": self.finished_at, "reason": self.reason}


@dataclass(frozen=True)
class Release:
    """A revision applied across apps: who, why, which images moved, and how each app ended."""

    revision: str
    author: str | None
    message: str | None
    trigger: str
    requested_by: str | None
    run_id: int | None
    """The run that started it."""
    started_at: str
    images_changed: tuple[releasing.ImageChange, ...]
    apps: tuple[ReleaseApp, ...]
    outcome: releasing.ReleaseOutcome
    waves: tuple[ReleaseWave, ...] = ()
    """The release waves in order (none when ``reconciler.yaml`` has no ``waves:``)."""
    app_counts: Mapping[str | None, int] = dataclasses.field(default_factory=dict)
    """How many of its apps came to each outcome (None: under way); ``apps`` may hold
    only some of them (``releases(apps_shown=...)``)."""

    @property
    def app_total(self) -> int:
        return sum(self.app_counts.values())

    @property
    def outcome_counts(self) -> list[tuple[str, int]]:
        """(outcome, apps) the most first, then by name; ``in progress`` for None."""
        named = [(o or "in progress", n) for o, n in self.app_counts.items()]
        return sorted(named, key=lambda x: (-x[1], x[0]))

    @property
    def cause(self) -> str:
        """Who or what started it: a tag seen in the registry, or the commit's author."""
        return releasing.cause(trigger=self.trigger, author=self.author,
                               message=self.message, requested_by=self.requested_by)

    def as_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision, "author": self.author, "message": self.message,
            "trigger": self.trigger, "requestedBy": self.requested_by, "runId": self.run_id,
            "startedAt": self.started_at, "outcome": str(self.outcome),
            "cause": self.cause,
            "imagesChanged": [{"name": c.name, "repository": c.repository, "old": c.old,
                               "new": c.new} for c in self.images_changed],
            "appTotal": self.app_total,
            "appCounts": dict(self.outcome_counts),
            "apps": [a.as_json() for a in self.apps],
            "waves": [w.as_json() for w in self.waves],
        }


@dataclass(frozen=True)
class AuditEntry:
    audit_id: int
    at: str
    who: str
    action: str
    target: str | None
    result: str | None
    term: int | None = None
    """The leadership term of the replica that wrote it (None: a single replica)."""


@dataclass(frozen=True)
class WindowHold:
    """An app planned but not applied because a sync window held it."""

    hold_id: int
    app_id: str
    revision: str
    scope: str
    """``revisions`` or ``drift`` (:class:`model.WindowScope`)."""
    until: str | None
    """When its window lets it through (ISO), None when none opens within a year."""
    reason: str
    at: str
    ended_at: str | None
    ended: str | None
    """``applied``, ``superseded`` (a newer revision came), ``overridden`` (a manual sync)."""
    term: int | None = None
    """The leadership term of the replica that wrote it (None: a single replica)."""


HistoryKind = Literal["run", "change", "rollback", "quarantine"]
HistoryRecord = Run | Change | Rollback | Quarantine


class HistoryKey(NamedTuple):
    """Where an entry sits in the history's order: its time (UNIX seconds), then its kind's
    rank (a run before its changes, rollbacks and quarantines at the same time), then its id."""

    at: float
    rank: int
    id: int


@dataclass(frozen=True)
class HistoryEntry:
    """One entry of the time-ordered history: a run, change, rollback or quarantine."""

    record: HistoryRecord
    key: HistoryKey = dataclasses.field(default=HistoryKey(0.0, 0, 0), compare=False)

    @property
    def kind(self) -> HistoryKind:
        match self.record:
            case Run():
                return "run"
            case Change():
                return "change"
            case Rollback():
                return "rollback"
            case Quarantine():
                return "quarantine"

    @property
    def at(self) -> str:
        """When it happened: a run's or change's start, a rollback's or quarantine's time."""
        if isinstance(self.record, Run | Change):
            return self.record.started_at
        return self.record.at

    @property
    def app_id(self) -> str | None:
        """The app it is about; None for a run, which is about every app."""
        return None if isinstance(self.record, Run) else self.record.app_id

    def as_json(self) -> dict[str, Any]:
        """The published shape (``reconciler history --output json``, ``/api/v1``): the
        ``kind``, every field of the record, and ``at`` (last, unless the record has one)."""
        fields = dataclasses.asdict(self.record)
        if "patch" in fields:
            fields["patch"] = list(fields["patch"])
        out: dict[str, Any] = {"kind": self.kind, **fields}
        out.setdefault("at", self.at)
        return out


@dataclass(frozen=True)
class Promotion:
    """An image's tag taken from the source environment's release to the target's: the two
    releases it links (the target's once its commit has rolled out) and the soak's evidence."""

    promotion_id: int
    image: str
    tag: str
    previous_tag: str | None
    source: str
    target: str
    source_revision: str | None
    """The source environment's release (its revision) that rolled the tag out there."""
    commit: str
    """The commit that set the target's tag."""
    target_revision: str | None
    """The target environment's release of the commit (None until it has rolled out)."""
    requested_by: str | None
    automatic: bool
    evidence: tuple[dict[str, Any], ...]
    """Each source app with its live image and since when it was healthy."""
    at: str
    linked_at: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.promotion_id, "image": self.image, "tag": self.tag,
            "previousTag": self.previous_tag, "from": self.source, "to": self.target,
            "sourceRelease": self.source_revision, "commit": self.commit,
            "targetRelease": self.target_revision, "requestedBy": self.requested_by,
            "automatic": self.automatic, "evidence": list(self.evidence), "at": self.at,
            "linkedAt": self.linked_at,
        }
