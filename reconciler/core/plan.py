"""The plan: which diffs to apply, in which order, and how long each may take.

Pure: from the diffs of one reconcile, the repo settings, the apps whose revision is
quarantined and the run's options, :func:`make_plan` returns a :class:`Plan` that the applier
runs as it is. Nothing here talks to Marathon or reads the clock.

- **Order.** Apps are grouped in waves: an app comes in a later wave than every app of the
  plan that it names in ``dependencies`` (Marathon's own start order), so independent apps
  share a wave and deploy in parallel, up to ``parallel`` at once. Deletes come last, in
  reverse dependency order (an app before the apps it depends on).
- **Release waves** (``waves:`` in ``reconciler.yaml``, :mod:`core.waves`) are an outer
  order: ``Plan.stages`` holds one :class:`Stage` per release wave with changes, each with
  the dependency layers of its own apps; the applier finishes (and soaks) one stage before
  the next. Deletes join the last stage. No release waves: no stages, ``waves`` is the plan.
- **What is left out** (each with its reason in ``Plan.skipped``): no-ops; deletes unless the
  repo's settings enable ``prune``; apps not asked for with ``--app``; apps whose desired
  revision is quarantined after a failed rollout, unless a retry is asked for.
- **Deadlines.** Each step gets the time its rollout may take before the applier rolls it
  back, derived from the definition (see :func:`derive_deadline`); the repo settings'
  ``deadlines`` (longest app-id prefix wins) override it per app, and a run-wide timeout
  (``--timeout``) overrides both.
"""

from __future__ import annotations

import enum
import graphlib
import math
import posixpath
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core import model
from reconciler.core import waves as release_waves

# Marathon's defaults (raml/v2/types/healthCheck.raml and app.raml).
_HC_GRACE = 300.0
_HC_INTERVAL = 60.0
_HC_TIMEOUT = 20.0
_HC_MAX_FAILURES = 3
_BACKOFF_SECONDS = 1.0

LAUNCH_ALLOWANCE = 30.0
"""Seconds allowed per batch for Marathon to get an offer, pull the image and start a task."""
MARGIN = 15.0
"""Seconds added once per deployment, for Marathon's own bookkeeping and our polling."""


class SkipReason(enum.StrEnum):
    QUARANTINED = "quarantined"
    """This app's desired revision failed and was rolled back; not retried until it changes."""
    DEPENDENCY_QUARANTINED = "dependency quarantined"
    """An app it depends on is quarantined: deploying it would run it against a dependency
    that is not at this revision (the release that broke the dependency may break it too)."""
    PRUNE_DISABLED = "prune disabled"
    """Live but absent from Git; deleted only when the repo's settings say ``prune: true``."""
    NOT_SELECTED = "not selected"
    """The run was limited to other apps (``--app``)."""
    OUTSIDE_WINDOW = "waiting for window"
    """A sync window of ``reconciler.yaml`` is closed for the app (``core/windows.py``)."""


class DeadlineSource(enum.StrEnum):
    DERIVED = "derived"
    SETTINGS = "settings"
    RUN = "run"


@dataclass(frozen=True, slots=True)
class Deadline:
    seconds: float
    source: DeadlineSource
    batches: int
    """How many rounds of new tasks the rolling upgrade needs under its ``upgradeStrategy``."""


@dataclass(frozen=True, slots=True)
class Step:
    """One app's change, as the applier carries it out."""

    app_id: model.AppId
    action: model.Action
    diff: model.AppDiff
    deadline: Deadline
    depends_on: tuple[model.AppId, ...]
    """Apps of this plan that must succeed first (for deletes: that must be deleted first)."""


@dataclass(frozen=True, slots=True)
class Skipped:
    app_id: model.AppId
    action: model.Action
    reason: SkipReason
    held_by: model.AppId | None = None
    """The app whose window (or quarantine) holds this one back, when it is another app."""
    detail: str = ""
    """Why, as people read it (which app, which window, which wave), when the reason alone
    does not say it."""

    @property
    def text(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else str(self.reason)


@dataclass(frozen=True)
class Stage:
    """One release wave of a plan: its dependency layers, then ``soak`` seconds healthy."""

    name: str
    soak: float
    waves: tuple[tuple[Step, ...], ...]

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(step for wave in self.waves for step in wave)


@dataclass(frozen=True)
class Plan:
    revision: str
    waves: tuple[tuple[Step, ...], ...]
    """Dependency layers, in order (across every stage)."""
    skipped: tuple[Skipped, ...]
    in_sync: tuple[model.AppId, ...]
    parallel: int
    stages: tuple[Stage, ...] = ()
    """The release waves with changes, in order; empty when ``reconciler.yaml`` has none."""

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(step for wave in self.waves for step in wave)

    @property
    def is_empty(self) -> bool:
        return not self.waves


@dataclass(frozen=True)
class PlanOptions:
    """What one run asks for, on top of the repo's own settings."""

    parallel: int = 8
    timeout: float | None = None
    """Run-wide deadline in seconds for every app (``--timeout``); wins over everything."""
    only_apps: Collection[model.AppId] | None = None
    """Limit the run to these apps (``--app``); None means all."""
    retry_quarantined: bool = False


def make_plan(
    diffs: Iterable[model.AppDiff],
    *,
    revision: str,
    settings: model.RepoSettings,
    quarantined: Collection[model.AppId] = (),
    options: PlanOptions = PlanOptions(),
    outside_window: Collection[model.AppId] | Mapping[model.AppId, str] = (),
) -> Plan:
    """Order and filter ``diffs`` into a :class:`Plan`.

    ``outside_window``: the apps a closed sync window holds (with, as a mapping, why). A held
    app holds back the apps that depend on it, and with release waves every later wave too.

    Raises :class:`model.InvalidDesiredState` when the apps to deploy depend on each other in
    a cycle (Marathon refuses such a group too).
    """
    if options.parallel < 1:
        raise ValueError(f"parallel must be at least 1, got {options.parallel}")
    diffs = sorted(diffs, key=lambda d: d.app_id)
    selected = set(options.only_apps) if options.only_apps is not None else None
    skipped: list[Skipped] = []
    in_sync: list[model.AppId] = []
    deploys: dict[model.AppId, model.AppDiff] = {}
    deletes: dict[model.AppId, model.AppDiff] = {}
    why_window = dict(outside_window) if isinstance(outside_window, Mapping) else {}
    for diff in diffs:
        if diff.action is model.Action.NOOP:
            in_sync.append(diff.app_id)
        elif selected is not None and diff.app_id not in selected:
            skipped.append(Skipped(diff.app_id, diff.action, SkipReason.NOT_SELECTED))
        elif diff.action is model.Action.DELETE and not settings.prune:
            skipped.append(Skipped(diff.app_id, diff.action, SkipReason.PRUNE_DISABLED))
        elif diff.app_id in quarantined and not options.retry_quarantined:
            skipped.append(Skipped(diff.app_id, diff.action, SkipReason.QUARANTINED))
        elif diff.app_id in outside_window:
            skipped.append(Skipped(diff.app_id, diff.action, SkipReason.OUTSIDE_WINDOW,
                                   detail=why_window.get(diff.app_id, "")))
        elif diff.action is model.Action.DELETE:
            deletes[diff.app_id] = diff
        else:
            deploys[diff.app_id] = diff

    # Quarantined and window-held apps hold their dependents back even when the run did not
    # select them (a drift correction of one app must not deploy a release that broke its
    # dependency, nor one whose dependency still waits for its window).
    blocked: dict[model.AppId, _Block] = {
        d.app_id: _Block(d.app_id, SkipReason.OUTSIDE_WINDOW,
                         why_window.get(d.app_id, "its sync window is closed"))
        for d in diffs if d.app_id in outside_window and d.action is not model.Action.NOOP}
    if not options.retry_quarantined:
        blocked.update({d.app_id: _Block(d.app_id, SkipReason.QUARANTINED, "quarantined")
                        for d in diffs
                        if d.app_id in quarantined and d.action is not model.Action.NOOP})
    _hold_back_dependents(deploys, skipped, blocked=blocked)
    if settings.waves:
        _hold_back_later_waves(deploys, deletes, skipped, blocked=blocked,
                               waves=settings.waves)
    deploy_deps = {
        app_id: tuple(d for d in dependencies_of(app_id, diff.desired) if d in deploys)
        for app_id, diff in deploys.items()
    }
    # A delete waits for the deletes of the apps that depend on it: reverse the edges.
    delete_deps: dict[model.AppId, list[model.AppId]] = {app_id: [] for app_id in deletes}
    for app_id, diff in deletes.items():
        for dependency in dependencies_of(app_id, diff.live):
            if dependency in deletes:
                delete_deps[dependency].append(app_id)

    def step(diff: model.AppDiff, depends_on: tuple[model.AppId, ...]) -> Step:
        return Step(app_id=diff.app_id, action=diff.action, diff=diff,
                    deadline=deadline_for(diff, settings=settings, timeout=options.timeout),
                    depends_on=depends_on)

    delete_layers = [
        tuple(step(deletes[a], tuple(sorted(delete_deps[a]))) for a in wave)
        for wave in _layers({a: tuple(d) for a, d in delete_deps.items()})
    ]
    if not settings.waves:
        waves = [tuple(step(deploys[a], deploy_deps[a]) for a in wave)
                 for wave in _layers(deploy_deps)] + delete_layers
        return Plan(revision=revision, waves=tuple(w for w in waves if w),
                    skipped=tuple(skipped), in_sync=tuple(in_sync), parallel=options.parallel)
    stages = _stages(deploys, deploy_deps, settings=settings, step=step)
    if delete_layers:
        last = stages.pop() if stages else Stage(name=release_waves.REST, soak=0.0, waves=())
        stages.append(Stage(name=last.name, soak=last.soak,
                            waves=last.waves + tuple(delete_layers)))
    return Plan(revision=revision, waves=tuple(w for s in stages for w in s.waves),
                skipped=tuple(skipped), in_sync=tuple(in_sync), parallel=options.parallel,
                stages=tuple(stages))


def _stages(deploys: Mapping[model.AppId, model.AppDiff],
            deploy_deps: Mapping[model.AppId, tuple[model.AppId, ...]], *,
            settings: model.RepoSettings,
            step: Callable[[model.AppDiff, tuple[model.AppId, ...]], Step]) -> list[Stage]:
    """The release waves with something to deploy, each in dependency layers of its own.

    Raises :class:`model.InvalidDesiredState` when an app depends on one of a later wave
    (validation says so with file and line; a plan of a partial run checks it again).
    """
    stages = []
    position: dict[model.AppId, int] = {}
    for index, (wave, members) in enumerate(release_waves.ordered(settings.waves, deploys)):
        position.update(dict.fromkeys(members, index))
        inside = {a: tuple(d for d in deploy_deps[a] if d in members) for a in members}
        layers = tuple(tuple(step(deploys[a], deploy_deps[a]) for a in layer)
                       for layer in _layers(inside))
        if layers:
            stages.append(Stage(name=wave.name, soak=wave.soak, waves=layers))
    for app_id, dependencies in sorted(deploy_deps.items()):
        later = [d for d in dependencies if position[d] > position[app_id]]
        if later:
            raise model.InvalidDesiredState([model.Problem(
                path=app_id, line=None, message=f"{app_id} depends on {later[0]} of a later "
                                                "release wave")])
    return stages


@dataclass(frozen=True)
class _Block:
    """An app that is not applied, and so holds back what needs it: the app at the root of
    the chain, what holds it (window or quarantine) and why."""

    root: model.AppId
    reason: SkipReason
    why: str


def _hold_back_dependents(
    deploys: dict[model.AppId, model.AppDiff], skipped: list[Skipped], *,
    blocked: Mapping[model.AppId, _Block],
) -> None:
    """Move out of ``deploys`` every app that depends, directly or not, on a blocked one.

    A scale is never held back: it starts more (or fewer) tasks of what already runs, and so
    needs nothing of a dependency's new release (a scale-back of a hand edit, say).
    """
    held = dict(blocked)
    changed = bool(held)
    while changed:
        changed = False
        for app_id, diff in sorted(deploys.items()):
            holder = next((held[d] for d in dependencies_of(app_id, diff.desired)
                           if d in held), None)
            if app_id in held or holder is None:
                continue
            held[app_id] = holder  # what depends on it stays held back, scaled or not
            changed = True
            if diff.action is model.Action.SCALE:
                continue
            del deploys[app_id]
            if holder.reason is SkipReason.OUTSIDE_WINDOW:
                skipped.append(Skipped(app_id, diff.action, SkipReason.OUTSIDE_WINDOW,
                                       held_by=holder.root,
                                       detail=f"depends on {holder.root}, {holder.why}"))
            else:
                skipped.append(Skipped(app_id, diff.action, SkipReason.DEPENDENCY_QUARANTINED,
                                       held_by=holder.root))


def _hold_back_later_waves(
    deploys: dict[model.AppId, model.AppDiff], deletes: dict[model.AppId, model.AppDiff],
    skipped: list[Skipped], *, blocked: Mapping[model.AppId, _Block],
    waves: tuple[model.ReleaseWave, ...],
) -> None:
    """A release wave with an app a window holds is not finished: every later wave waits
    (and the deletes, which come last), or they would go out before it, without its soak."""
    position = {w.name: i for i, w in enumerate(waves)}
    position[release_waves.REST] = len(waves)
    windowed = [(position[release_waves.wave_of(a, waves)], a) for a, b in blocked.items()
                if b.reason is SkipReason.OUTSIDE_WINDOW]
    if not windowed:
        return
    first, root = min(windowed)
    name = release_waves.wave_of(root, waves)
    why = f"release wave {name!r} is not finished: {root} {blocked[root].why}"
    for app_id, diff in sorted(deploys.items()):
        if position[release_waves.wave_of(app_id, waves)] > first:
            del deploys[app_id]
            skipped.append(Skipped(app_id, diff.action, SkipReason.OUTSIDE_WINDOW,
                                   held_by=root, detail=why))
    for app_id, diff in sorted(deletes.items()):
        del deletes[app_id]
        skipped.append(Skipped(app_id, diff.action, SkipReason.OUTSIDE_WINDOW,
                               held_by=root, detail=why))


LIVE_FIELDS = ("id", "version", "dependencies", "instances", "upgradeStrategy", "healthChecks",
               "backoffSeconds", "taskKillGracePeriodSeconds")
"""All that planning and undoing a change read of a live app: its version (what a rollback
returns to), its dependencies (the order of deletes) and what its deadline is derived from."""


def live_view(live: Mapping[str, Any]) -> model.JSON:
    """The part of a live app a plan needs (:data:`LIVE_FIELDS`): what an engine keeps of each
    live app once it is diffed, instead of the app with its tasks."""
    return {key: live[key] for key in LIVE_FIELDS if key in live}


def dependencies_of(app_id: model.AppId, definition: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Absolute ids of the apps ``definition`` depends on (relative ids resolved like Marathon)."""
    if not definition:
        return ()
    group = posixpath.dirname(app_id.rstrip("/")) or "/"
    resolved = []
    for dependency in definition.get("dependencies") or ():
        text = str(dependency)
        absolute = text if text.startswith("/") else posixpath.join(group, text)
        resolved.append(posixpath.normpath(absolute))
    return tuple(resolved)


def deadline_for(
    diff: model.AppDiff, *, settings: model.RepoSettings, timeout: float | None
) -> Deadline:
    derived = derive_deadline(diff)
    if timeout is not None:
        return Deadline(seconds=float(timeout), source=DeadlineSource.RUN, batches=derived.batches)
    override = _longest_prefix(diff.app_id, settings.deadlines)
    if override is not None:
        return Deadline(seconds=float(override), source=DeadlineSource.SETTINGS,
                        batches=derived.batches)
    return derived


def derive_deadline(diff: model.AppDiff) -> Deadline:
    """How long a healthy rollout of ``diff`` can take at most.

    Per batch of new tasks: :data:`LAUNCH_ALLOWANCE`, one relaunch ``backoffSeconds``, the kill
    grace period of the old tasks, and the longest a task that will become healthy can take:
    ``gracePeriodSeconds + intervalSeconds * maxConsecutiveFailures + timeoutSeconds`` of its
    slowest health check (after that Marathon kills it as unhealthy). Plus :data:`MARGIN` once.
    """
    definition = diff.desired if diff.desired is not None else (diff.live or {})
    kill_grace = float(definition.get("taskKillGracePeriodSeconds") or 0)
    if diff.action is model.Action.DELETE:
        return Deadline(seconds=MARGIN + LAUNCH_ALLOWANCE + kill_grace,
                        source=DeadlineSource.DERIVED, batches=1)
    batches = 1
    if diff.action is model.Action.UPDATE and diff.live is not None:
        batches = upgrade_batches(definition)
    per_batch = (LAUNCH_ALLOWANCE + float(definition.get("backoffSeconds", _BACKOFF_SECONDS))
                 + kill_grace + _time_to_healthy(definition))
    return Deadline(seconds=MARGIN + batches * per_batch, source=DeadlineSource.DERIVED,
                    batches=batches)


def upgrade_batches(definition: Mapping[str, Any]) -> int:
    """Rounds of new tasks a rolling upgrade needs (Marathon's TaskReplaceActor arithmetic).

    Marathon keeps ``ceil(instances * minimumHealthCapacity)`` tasks up and never runs more
    than ``floor(instances * (1 + maximumOverCapacity))``: the difference is how many new
    tasks are in flight at once (at least one, since Marathon then kills one old task).
    """
    instances = int(definition.get("instances", 1))
    if instances <= 0:
        return 1
    strategy = definition.get("upgradeStrategy") or {}
    minimum = float(strategy.get("minimumHealthCapacity", 1.0))
    over = float(strategy.get("maximumOverCapacity", 1.0))
    min_healthy = math.ceil(instances * minimum)
    max_capacity = math.floor(instances * (1 + over))
    in_flight = max(1, max_capacity - min_healthy)
    return math.ceil(instances / in_flight)


def minimum_healthy(definition: Mapping[str, Any]) -> int:
    """Tasks Marathon keeps up during a rolling upgrade of ``definition``."""
    instances = int(definition.get("instances", 1))
    strategy = definition.get("upgradeStrategy") or {}
    return math.ceil(instances * float(strategy.get("minimumHealthCapacity", 1.0)))


def _time_to_healthy(definition: Mapping[str, Any]) -> float:
    bounds = [
        float(check.get("gracePeriodSeconds", _HC_GRACE))
        + float(check.get("intervalSeconds", _HC_INTERVAL))
        * max(1, int(check.get("maxConsecutiveFailures", _HC_MAX_FAILURES)))
        + float(check.get("timeoutSeconds", _HC_TIMEOUT))
        for check in definition.get("healthChecks") or ()
    ]
    return max(bounds, default=0.0)


def _longest_prefix(app_id: model.AppId, values: Mapping[model.AppId, float]) -> float | None:
    best: tuple[int, float | None] = (-1, None)
    for prefix, value in values.items():
        if model.is_under(app_id, prefix) and len(prefix) > best[0]:
            best = (len(prefix), value)
    return best[1]


def _layers(deps: Mapping[model.AppId, tuple[model.AppId, ...]]) -> list[tuple[model.AppId, ...]]:
    """Topological layers: each depends only on earlier ones, sorted by id (graphlib)."""
    sorter = graphlib.TopologicalSorter(deps)
    try:
        sorter.prepare()
    except graphlib.CycleError as e:
        cycle = " -> ".join(e.args[1])
        raise model.InvalidDesiredState([model.Problem(
            path=min(e.args[1]), line=None, message=f"dependency cycle among {cycle}")]) from e
    layers: list[tuple[model.AppId, ...]] = []
    while sorter.is_active():
        ready = tuple(sorted(sorter.get_ready()))
        layers.append(ready)
        sorter.done(*ready)
    return layers


@dataclass(frozen=True)
class SyncPreview:
    """What syncing one app would do, said before it is queued: the changes, or why not."""

    app_id: model.AppId
    accepted: bool
    message: str
    action: model.Action | None
    changes: tuple[model.FieldChange, ...]

    def as_json(self) -> dict[str, Any]:
        return {"app": self.app_id, "accepted": self.accepted, "message": self.message,
                "action": None if self.action is None else str(self.action),
                "changes": [{"path": c.path, "old": c.old, "new": c.new}
                            for c in self.changes]}


def preview(plan: Plan, app_id: model.AppId) -> SyncPreview:
    """What a run of ``plan`` (made for ``app_id`` alone) would do to the app, or why not."""
    step = next((s for s in plan.steps if s.app_id == app_id), None)
    if step is not None:
        fields = ", ".join(c.path for c in step.diff.changes) or "the whole app"
        return SyncPreview(app_id=app_id, accepted=True, action=step.action,
                           changes=step.diff.changes,
                           message=f"will {step.action} {app_id} to {plan.revision}: {fields}")
    skipped = next((s for s in plan.skipped if s.app_id == app_id), None)
    if skipped is not None:
        why = {
            SkipReason.QUARANTINED: f"revision {plan.revision} is quarantined for this app "
                                    "(retry lifts it)",
            SkipReason.DEPENDENCY_QUARANTINED: "blocked: an app it depends on is quarantined "
                                               f"at revision {plan.revision}",
            SkipReason.PRUNE_DISABLED: "not in Git, and prune is disabled",
            SkipReason.OUTSIDE_WINDOW: skipped.detail
            or "its sync window is closed (see `reconciler windows`)",
        }.get(skipped.reason, str(skipped.reason))
        return SyncPreview(app_id=app_id, accepted=False, action=skipped.action, changes=(),
                           message=f"will not sync {app_id}: {why}")
    if app_id in plan.in_sync:
        return SyncPreview(app_id=app_id, accepted=False, action=model.Action.NOOP, changes=(),
                           message=f"nothing to do: {app_id} already equals {plan.revision}")
    return SyncPreview(app_id=app_id, accepted=False, action=None, changes=(),
                       message=f"will not sync {app_id}: neither in Git nor in Marathon")

