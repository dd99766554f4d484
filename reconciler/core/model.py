"""The shared vocabulary of a reconcile: ids, desired state, diffs, plans and status words.

Everything here is immutable data. Apps themselves stay plain JSON dicts (exactly what
Marathon speaks); these types only carry them with the facts the pipeline needs.
Always ``desired`` (from Git) and ``live`` (from Marathon), never config/target/actual.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
AppId = str
"""An absolute Marathon app id such as ``/dirac/datamanagement/filecatalog``."""


@dataclass(frozen=True)
class SourceFile:
    """One file of the config repo, as text, with its path relative to the repo folder."""

    path: str
    text: str


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the desired state, located as precisely as we can."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


class InvalidDesiredState(Exception):
    """The desired state has errors: nothing from this revision may be applied.

    Stalling error: it needs a human (a new commit), retrying the same revision is useless.
    """

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class ImageRef:
    """An image named once in ``images.yaml``: ``name`` is what app files refer to."""

    name: str
    repository: str
    tag: str
    digest: str | None = None
    """``sha256:...`` when the tag is pinned to one manifest (``pinDigest``)."""
    update: UpdatePolicy | None = None
    """How the registry watcher moves ``tag`` forward; None: only by hand."""

    @property
    def reference(self) -> str:
        pinned = f"@{self.digest}" if self.digest else ""
        return f"{self.repository}:{self.tag}{pinned}"


class TagOrder(enum.StrEnum):
    """How the tags of a registry repository are ordered (``core/tags.py``)."""

    LHCBDIRAC = "lhcbdirac"
    """``vXrYpZ`` with optional ``-preN``."""
    SEMVER = "semver"
    REGEX = "regex"
    """Tags matching ``pattern``, by its ``key`` group, else by name."""


class PushMode(enum.StrEnum):
    """Where the bump commit goes."""

    DIRECT = "direct"
    """To the branch the controller follows."""
    BRANCH = "branch"
    """To a new branch ``reconciler/bump-<image>-<tag>``, for someone to merge."""


@dataclass(frozen=True)
class UpdatePolicy:
    """The ``update:`` block of an ``images.yaml`` entry."""

    registry: str
    """``host[:port]`` (HTTPS) or a URL (``http://127.0.0.1:5000``)."""
    repository: str
    """The repository in that registry (``lhcb/lhcbdirac``)."""
    order: TagOrder
    pattern: str | None = None
    prereleases: bool = False
    pin_digest: bool = False
    push: PushMode = PushMode.DIRECT


class DriftPolicy(enum.StrEnum):
    CORRECT = "correct"
    """Re-apply desired when live drifts (the default)."""
    REPORT = "report"
    """Record and alert, leave live alone."""


@dataclass(frozen=True)
class IgnoreRule:
    """Fields (JSON pointers) never diffed for the apps under ``app_prefix``."""

    app_prefix: AppId
    pointers: tuple[str, ...]


class WindowKind(enum.StrEnum):
    """A sync window either allows applying while it is open, or denies it."""

    ALLOW = "allow"
    """Outside every allow window that covers an app, the app is not applied."""
    DENY = "deny"
    """While a deny window covers an app, the app is not applied (deny wins over allow)."""


class WindowScope(enum.StrEnum):
    """What a sync window governs."""

    REVISIONS = "revisions"
    """Applying a new revision (polls, webhooks, manual syncs)."""
    DRIFT = "drift"
    """Putting back a hand edit (drift correction)."""


@dataclass(frozen=True)
class SyncWindow:
    """One entry of ``windows:`` in ``reconciler.yaml`` (decided on by ``core/windows.py``)."""

    kind: WindowKind
    schedule: str
    """A cron expression: when the window opens, in ``time_zone``."""
    duration: float
    """Seconds the window stays open after each opening."""
    time_zone: str = "UTC"
    groups: tuple[AppId, ...] = ("/",)
    """App ids or group prefixes it covers."""
    scopes: frozenset[WindowScope] = frozenset(WindowScope)


@dataclass(frozen=True)
class ReleaseWave:
    """A stage of every release (``waves:`` in ``reconciler.yaml``): the apps it selects
    deploy together, and the next wave starts once they stayed healthy for ``soak`` seconds.
    Selection is :func:`reconciler.core.waves.wave_of`'s."""

    name: str
    selectors: tuple[str, ...]
    """App ids, groups (every app under it) or globs on the id (``/dirac/*/portal``)."""
    soak: float = 0.0


@dataclass(frozen=True)
class RepoSettings:
    """The config repo's own settings file (``reconciler.yaml``); all optional."""

    managed_prefixes: tuple[AppId, ...] = ("/",)
    prune: bool = False
    drift_policies: Mapping[AppId, DriftPolicy] = field(default_factory=dict)
    """Policy per app id or group prefix; the longest matching prefix wins."""
    ignore: tuple[IgnoreRule, ...] = ()
    deadlines: Mapping[AppId, float] = field(default_factory=dict)
    """Deployment deadline overrides in seconds, per app id or group prefix."""
    waves: tuple[ReleaseWave, ...] = ()
    """Release waves in order; none: a release is one stage (dependency order only)."""
    windows: tuple[SyncWindow, ...] = ()
    """Sync windows: when apps may be applied (none: always)."""

    def drift_policy_for(self, app_id: AppId) -> DriftPolicy:
        best: tuple[int, DriftPolicy] = (-1, DriftPolicy.CORRECT)
        for prefix, policy in self.drift_policies.items():
            if is_under(app_id, prefix) and len(prefix) > best[0]:
                best = (len(prefix), policy)
        return best[1]

    def ignored_pointers_for(self, app_id: AppId) -> tuple[str, ...]:
        pointers: list[str] = []
        for rule in self.ignore:
            if is_under(app_id, rule.app_prefix):
                pointers.extend(rule.pointers)
        return tuple(pointers)

    def manages(self, app_id: AppId) -> bool:
        return any(is_under(app_id, prefix) for prefix in self.managed_prefixes)


def is_under(app_id: AppId, prefix: AppId) -> bool:
    """True when ``app_id`` is ``prefix`` itself or lies in the group ``prefix``."""
    prefix = prefix.rstrip("/")
    return prefix == "" or app_id == prefix or app_id.startswith(prefix + "/")


@dataclass(frozen=True, slots=True)
class DesiredApp:
    """One app definition from Git, image resolved, ready to send to Marathon."""

    app_id: AppId
    definition: JSON
    """Plain Marathon app JSON, ``id`` absolute, image references resolved. Never mutate
    it: apps of one revision share their equal parts (``core/sharing.py``)."""
    source_path: str
    image_name: str | None = None


@dataclass(frozen=True)
class DesiredState:
    """Everything one revision of the config repo asks for."""

    revision: str
    """Git commit sha, or ``dir:<content digest>`` for a plain directory."""
    apps: Mapping[AppId, DesiredApp]
    images: Mapping[str, ImageRef]
    settings: RepoSettings


class Action(enum.StrEnum):
    """What a diff asks Marathon to do for one app."""

    CREATE = "create"
    UPDATE = "update"
    SCALE = "scale"
    """Only ``instances`` differs: no restart of running tasks."""
    NOOP = "no-op"
    DELETE = "delete"


@dataclass(frozen=True)
class FieldChange:
    """One readable change: a JSON pointer with its old (live) and new (desired) value.

    Values are already masked where they are secret.
    """

    path: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class AppDiff:
    """The difference for one app, as data."""

    app_id: AppId
    action: Action
    patch: tuple[JSON, ...]
    """RFC 6902 operations turning normalized live into normalized desired (masked)."""
    changes: tuple[FieldChange, ...]
    desired: JSON | None
    """What to send to Marathon (unmasked, never printed), None for a delete."""
    live: JSON | None
    """The live app as Marathon returned it, or the part of it the differ was told to keep
    (the engine keeps :func:`reconciler.core.plan.live_view`); None for a create, and for a
    no-op when the differ was told what to keep."""


class AppState(enum.StrEnum):
    """Status words for one app: a closed set, used by status, dashboard and metrics.

    The closed vocabularies of the controller live in this module (app states, actions,
    outcomes, triggers, purposes, drift policies, statuses and actions); health words are
    :class:`reconciler.core.health.HealthStatus`, ordered for :func:`~health.worst`."""

    IN_SYNC = "in sync"
    OUT_OF_SYNC = "out of sync"
    DRIFTED = "drifted"
    PROGRESSING = "progressing"
    UNKNOWN = "unknown"
    """Marathon cannot be read: nothing is known of live."""
    BLOCKED = "blocked"
    """Out of sync and held back: a dependency's revision is quarantined."""
    DEGRADED = "degraded"
    QUARANTINED = "quarantined"


class Outcome(enum.StrEnum):
    """How one applied change (or a whole sync run) ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled back"
    SKIPPED = "skipped"
    """Not attempted: quarantined, dependency failed, or a dry run."""
    TIMED_OUT = "timed out"
    INTERRUPTED = "interrupted"
    """The process running it died (``kill -9``, a lost node); set by the run after it."""


class Trigger(enum.StrEnum):
    """What started a run: recorded with it, a label of the reconcile metrics."""

    POLL = "poll"
    WEBHOOK = "webhook"
    MANUAL = "manual"
    """Sync asked for from the dashboard or the API."""
    DRIFT_CORRECTION = "drift-correction"
    ROLLBACK = "rollback"
    """A manual rollback of one app."""
    CLI = "cli"
    """``reconciler sync`` on a terminal or in a script."""


class Purpose(enum.StrEnum):
    """Why a change was sent to Marathon."""

    CHANGE = "change"
    """To make live equal to Git."""
    ROLLBACK = "rollback"
    """To undo a change that failed (or a manual rollback)."""


class DriftStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    FLAPPING = "flapping"
    """Corrected too often within the window: correction stopped, a human decides."""


class DriftAction(enum.StrEnum):
    """What was done about a drift, as recorded and counted."""

    REPORTED = "reported"
    REPORTED_QUARANTINED = "reported (app quarantined)"
    CORRECTED = "corrected"
    """Put back by a run of reconciler (its id recorded with the drift)."""
    BLOCKED = "blocked"
    """Not corrected: the correction needs something held back (a quarantined dependency),
    or it failed; the reason is recorded with the drift."""
    OVERWRITTEN = "overwritten"
    """The sync of a new revision replaced the hand edit (the revision is recorded)."""
    FLAPPING_STOPPED = "flapping-stopped"
    GONE = "gone"
    """Live matches again without reconciler doing anything."""
    ACKNOWLEDGED = "acknowledged"
