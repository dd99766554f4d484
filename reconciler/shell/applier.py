"""The applier: runs a plan through Marathon, waits for each deployment, rolls back failures.

The only module that changes Marathon during a sync. For each :class:`plan.Step` it sends the
change (create, full-replacement update = Marathon's rolling upgrade under the app's
``upgradeStrategy``, scale-only, delete), tells the :class:`Journal` the deployment id
**before** waiting (so that a successor can resume after a crash), and waits until the
deployment ends or its deadline passes.

Waiting follows Marathon's event stream (``/v2/events``: ``deployment_success`` and
``deployment_failed``) on one background thread shared by all waiters; ``/v2/deployments`` is
polled as a fallback (often while the stream is down, rarely while it is up), one request
serving every waiter. A deployment that vanished without an event is judged from the live
app (its version and health).

When a deployment fails or misses its deadline it is rolled back: ``DELETE
/v2/deployments/{id}`` (Marathon starts a revert deployment), or, where that no longer works
(the deployment is gone), the previous version is fetched (``GET /v2/apps/{id}/versions/{v}``)
and put back; a failed create is deleted. The rollback is waited for too. The result carries
why, Marathon's ``lastTaskFailure`` message and the deployment step it was stuck in; the
engine records it and quarantines the revision.

A change refused with 409 (the app is locked by another deployment) waits for the blocking
deployments up to the step's deadline, or cancels them when the run asked for it
(``cancel_blocking``); it never uses Marathon's ``force`` silently.

Time is injected (``clock`` for deadlines, ``sleep`` for pauses without the event stream),
so nothing here reads the wall clock.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from reconciler.core import health, model
from reconciler.core import plan as planning
from reconciler.shell import marathon

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Clock = Callable[[], float]
Sleep = Callable[[float], None]

_WATCHED_EVENTS = ("event_stream_attached", "deployment_success", "deployment_failed",
                   "deployment_info", "deployment_step_success", "deployment_step_failure",
                   "health_status_changed_event", "status_update_event")
_EMBED = ("apps.tasks", "apps.deployments", "apps.lastTaskFailure")
# Fields Marathon adds to an app that it refuses (or ignores) in a PUT of that app.
_READ_ONLY_FIELDS = ("version", "versionInfo", "tasks", "tasksStaged", "tasksRunning",
                     "tasksHealthy", "tasksUnhealthy", "deployments", "lastTaskFailure",
                     "readinessCheckResults", "counts")


class Phase(enum.StrEnum):
    """What the applier is doing for one app, as shown live to the user."""

    WAITING_FOR_DEPENDENCIES = "waiting for dependencies"
    BLOCKED = "blocked by another deployment"
    DEPLOYING = "deploying"
    ROLLING_BACK = "rolling back"
    DONE = "done"


@dataclass(frozen=True)
class Progress:
    app_id: model.AppId
    phase: Phase
    deployment_id: str | None = None
    health: health.AppHealth | None = None
    outcome: model.Outcome | None = None
    message: str | None = None


ProgressCallback = Callable[[Progress], None]


class RollbackMethod(enum.StrEnum):
    CANCEL_DEPLOYMENT = "cancel deployment"
    """``DELETE /v2/deployments/{id}``: Marathon reverts the change itself."""
    REAPPLY_VERSION = "re-apply previous version"
    DELETE_CREATED = "delete created app"


@dataclass(frozen=True)
class RollbackResult:
    method: RollbackMethod
    from_version: str | None
    to_version: str | None
    deployment_id: str | None
    outcome: model.Outcome
    """SUCCEEDED when the rollback deployment finished, else FAILED or TIMED_OUT."""
    reason: str


@dataclass(frozen=True)
class StepResult:
    """How one app's change ended; what the engine records."""

    app_id: model.AppId
    action: model.Action
    outcome: model.Outcome
    deployment_id: str | None = None
    version: str | None = None
    """The version the change created in Marathon."""
    previous_version: str | None = None
    reason: str | None = None
    failure: str | None = None
    """Marathon's ``lastTaskFailure`` message of the new version, when there was one."""
    stuck_step: str | None = None
    """The deployment step the change was in when it failed or ran out of time."""
    health: health.AppHealth | None = None
    rollback: RollbackResult | None = None
    notes: tuple[str, ...] = ()
    started_at: float | None = None
    finished_at: float | None = None


class Journal(Protocol):
    """Where the applier reports, as it goes (the engine writes it to the record store)."""

    def deployment_started(
        self, *, app_id: model.AppId, action: model.Action, deployment_id: str, version: str,
        previous_version: str | None, purpose: str, patch: tuple[JSON, ...], deadline: float,
    ) -> None:
        """Called before waiting on a deployment. ``purpose`` is ``change`` or ``rollback``."""

    def step_finished(self, result: StepResult) -> None:
        """Called once per step, as soon as its outcome is known (rollback included)."""


class NullJournal:
    def deployment_started(self, **_: Any) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        pass


@dataclass(frozen=True)
class ApplyOptions:
    cancel_blocking: bool = False
    """On 409, cancel the deployments that lock the app instead of waiting for them."""
    use_events: bool = True
    poll_interval: float = 1.0
    """Seconds between ``/v2/deployments`` polls while the event stream is down."""
    poll_interval_with_events: float = 5.0
    """Seconds between safety polls while the event stream is up (events may be missed)."""
    progress_interval: float = 1.0
    """Seconds between refreshes of task counts shown to ``on_progress``."""
    attach_timeout: float = 2.0
    """How long to wait for the event stream before the first change is sent."""


class _Ending(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    GONE = "gone"
    """Vanished from ``/v2/deployments`` without an event: judge by the live app."""


class Watch:
    """Follows ``/v2/events`` on a daemon thread and caches polls shared by all waiters."""

    def __init__(self, client: marathon.MarathonClient, *, clock: Clock, sleep: Sleep,
                 options: ApplyOptions) -> None:
        self._client = client
        self._clock = clock
        self._sleep = sleep
        self._options = options
        self._changed = threading.Condition()
        self._ended: dict[str, str] = {}
        self._attached = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll_lock = threading.Lock()
        self._deployments: dict[str, JSON] | None = None
        self._deployments_at = float("-inf")
        self._apps: dict[str, JSON] = {}
        self._apps_at = float("-inf")

    @property
    def streaming(self) -> bool:
        return self._attached.is_set()

    def start(self) -> None:
        if not self._options.use_events or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._follow, name="marathon-events",
                                        daemon=True)
        self._thread.start()
        # Attach before the first change, so that a fast deployment's end is not missed;
        # if the stream is slow, polling still sees every deployment end.
        self._attached.wait(self._options.attach_timeout)

    def close(self) -> None:
        self._closed.set()

    def _follow(self) -> None:
        delay = 0.5
        while not self._closed.is_set():
            try:
                for event in self._client.events(event_types=_WATCHED_EVENTS):
                    if self._closed.is_set():
                        return
                    self._attached.set()
                    delay = 0.5
                    self._on_event(event)
            except Exception as e:  # noqa: BLE001 - any stream failure means: poll, reconnect
                log.info("event stream interrupted, polling meanwhile: %s", e)
            self._attached.clear()
            with self._changed:
                self._changed.notify_all()
            if self._closed.wait(delay):
                return
            delay = min(delay * 2, 10.0)

    def _on_event(self, event: marathon.Event) -> None:
        if event.event_type in ("deployment_success", "deployment_failed"):
            deployment_id = event.data.get("id") or (event.data.get("plan") or {}).get("id")
            if deployment_id:
                with self._changed:
                    self._ended[str(deployment_id)] = event.event_type
                    self._changed.notify_all()
        else:
            # Step, task and health events: wake the waiters so that progress shows promptly
            # (the exact step is polled when it matters: when a deployment fails).
            with self._changed:
                self._changed.notify_all()

    def ended(self, deployment_id: str) -> str | None:
        with self._changed:
            return self._ended.get(deployment_id)

    def wait_for_news(self, timeout: float) -> None:
        if timeout <= 0:
            return
        if self.streaming:
            with self._changed:
                self._changed.wait(timeout)
        else:
            self._sleep(timeout)

    def deployments(self, *, newer_than: float) -> dict[str, JSON] | None:
        """The running deployments, polled at most once per interval for all waiters.

        None while the last poll is not newer than ``newer_than``: a poll older than a
        deployment cannot tell that it ended. Without the event stream a new deployment gets
        a prompt first poll; with it, events tell the end and polls are only a safety net.
        """
        with self._poll_lock:
            now = self._clock()
            age = now - self._deployments_at
            if self.streaming:
                due = age >= self._options.poll_interval_with_events
            else:
                due = age >= self._options.poll_interval or (
                    self._deployments_at <= newer_than and age >= 0.2)
            if due:
                try:
                    listed = self._client.list_deployments()
                except marathon.MarathonError as e:
                    log.warning("cannot list deployments, will retry: %s", e)
                    return None
                with self._changed:
                    self._deployments = {str(d["id"]): d for d in listed if "id" in d}
                self._deployments_at = now
            if self._deployments_at <= newer_than:
                return None
            return self._deployments

    def refresh(self) -> dict[str, JSON]:
        """Poll the running deployments now (for the exact step a failed one is stuck in)."""
        with self._poll_lock:
            listed = self._client.list_deployments()
            with self._changed:
                self._deployments = {str(d["id"]): d for d in listed if "id" in d}
            self._deployments_at = self._clock()
            return self._deployments

    def deployment(self, deployment_id: str) -> JSON | None:
        with self._changed:
            return (self._deployments or {}).get(deployment_id)

    def app(self, app_id: model.AppId) -> JSON | None:
        """The live app with tasks, refreshed at most once per progress interval."""
        with self._poll_lock:
            now = self._clock()
            if now - self._apps_at >= self._options.progress_interval:
                try:
                    apps = self._client.list_apps(embed=_EMBED)
                except marathon.MarathonError:
                    return self._apps.get(app_id)
                self._apps = {str(a["id"]): a for a in apps}
                self._apps_at = now
            return self._apps.get(app_id)


class Applier:
    """Runs plans against one Marathon. Reusable across runs; :meth:`close` stops its thread."""

    def __init__(
        self,
        client: marathon.MarathonClient,
        *,
        journal: Journal | None = None,
        options: ApplyOptions = ApplyOptions(),  # noqa: B008 - frozen
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._client = client
        self._journal: Journal = journal or NullJournal()
        self._options = options
        self._clock = clock
        self._sleep = sleep
        self._watch = Watch(client, clock=clock, sleep=sleep, options=options)

    def close(self) -> None:
        self._watch.close()

    # -- running a plan -------------------------------------------------------------------

    def run(
        self, plan: planning.Plan, *, on_progress: ProgressCallback | None = None
    ) -> tuple[StepResult, ...]:
        """Apply every step, wave by wave, up to ``plan.parallel`` apps at once."""
        if plan.is_empty:
            return ()
        self._watch.start()
        results: dict[model.AppId, StepResult] = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=plan.parallel,
                                                   thread_name_prefix="apply") as pool:
            for wave in plan.waves:
                futures = {}
                for step in wave:
                    failed = [d for d in step.depends_on
                              if results[d].outcome is not model.Outcome.SUCCEEDED]
                    if failed:
                        result = StepResult(
                            app_id=step.app_id, action=step.action,
                            outcome=model.Outcome.SKIPPED,
                            reason=f"dependency {', '.join(failed)} did not succeed")
                        self._finish(result, on_progress)
                        results[step.app_id] = result
                    else:
                        futures[step.app_id] = pool.submit(self.apply_step, step,
                                                           on_progress=on_progress)
                for app_id, future in futures.items():
                    results[app_id] = future.result()
        return tuple(results[step.app_id] for step in plan.steps)

    def apply_step(
        self, step: planning.Step, *, on_progress: ProgressCallback | None = None
    ) -> StepResult:
        """Send one change, wait for it, roll it back if it fails. Never raises for Marathon."""
        started = self._clock()
        previous_version = (step.diff.live or {}).get("version")
        base = StepResult(app_id=step.app_id, action=step.action,
                          outcome=model.Outcome.FAILED, previous_version=previous_version,
                          started_at=started)
        deadline_at = started + step.deadline.seconds
        try:
            ref, notes = self._send(step, deadline_at=deadline_at, on_progress=on_progress)
            sent_at = self._clock()
        except _StepFailed as e:
            return self._finish(replace(base, reason=e.reason, notes=e.notes,
                                        finished_at=self._clock()), on_progress)
        base = replace(base, deployment_id=ref.deployment_id, version=ref.version, notes=notes)
        self._journal.deployment_started(
            app_id=step.app_id, action=step.action, deployment_id=ref.deployment_id,
            version=ref.version, previous_version=previous_version, purpose="change",
            patch=step.diff.patch,
            deadline=step.deadline.seconds)
        try:
            result = self.follow(base, step=step, deadline_at=deadline_at,
                                 on_progress=on_progress, sent_at=sent_at)
        except marathon.MarathonError as e:
            # Marathon went away while we waited: the deployment may still run; the next
            # run resumes it from the journal.
            result = replace(base, reason=f"lost Marathon while waiting: {e.message}",
                             finished_at=self._clock())
            return self._finish(result, on_progress, journal=False)
        return self._finish(result, on_progress)

    def follow(
        self, base: StepResult, *, step: planning.Step | None, deadline_at: float,
        on_progress: ProgressCallback | None = None, sent_at: float | None = None,
    ) -> StepResult:
        """Wait for ``base.deployment_id`` and roll back on failure (also used to resume).

        ``sent_at`` is when Marathon accepted the change: a poll of ``/v2/deployments`` older
        than that cannot tell that the deployment ended.
        """
        assert base.deployment_id is not None and base.started_at is not None
        self._watch.start()
        seen_after = sent_at if sent_at is not None else base.started_at
        while True:
            ending = self._wait(base.app_id, base.deployment_id, started=seen_after,
                                deadline_at=deadline_at, on_progress=on_progress)
            if ending is not _Ending.GONE:
                break
            judged = self._judge_vanished(base)
            if judged is not None:
                ending = judged
                break
            seen_after = self._clock()  # still running after all: wait for a newer poll
        if ending is _Ending.SUCCEEDED:
            # Marathon ends a deployment successfully only once its tasks are healthy; the
            # engine assesses every app with one request afterwards.
            return replace(base, outcome=model.Outcome.SUCCEEDED, finished_at=self._clock())
        if base.action is model.Action.DELETE:
            return replace(base, outcome=model.Outcome.TIMED_OUT if ending is _Ending.TIMED_OUT
                           else model.Outcome.FAILED,
                           reason=f"delete {ending}", finished_at=self._clock())
        return self._roll_back(base, ending=ending, step=step, on_progress=on_progress)

    # -- sending a change -----------------------------------------------------------------

    def _send(
        self, step: planning.Step, *, deadline_at: float, on_progress: ProgressCallback | None
    ) -> tuple[marathon.DeploymentRef, tuple[str, ...]]:
        notes: list[str] = []
        while True:
            try:
                return self._send_once(step), tuple(notes)
            except marathon.Conflict as e:
                blocking = e.deployment_ids
                if self._options.cancel_blocking and blocking:
                    for deployment_id in blocking:
                        with contextlib.suppress(marathon.NotFound):
                            self._client.cancel_deployment(deployment_id, force=True)
                        notes.append(f"cancelled blocking deployment {deployment_id}")
                    continue
                if self._clock() >= deadline_at:
                    raise _StepFailed(
                        f"locked by deployment(s) {', '.join(blocking) or '?'} until the "
                        f"deadline; rerun with --cancel-blocking to cancel them", notes) from e
                notes.append(f"waited for blocking deployment(s) {', '.join(blocking)}")
                _emit(on_progress, Progress(step.app_id, Phase.BLOCKED,
                                            message=", ".join(blocking)))
                if not blocking:
                    self._sleep(min(self._options.poll_interval,
                                    max(0.0, deadline_at - self._clock())))
                for deployment_id in blocking:
                    self._wait(step.app_id, deployment_id, started=self._clock(),
                               deadline_at=deadline_at, on_progress=None)
            except marathon.Unprocessable as e:
                details = "; ".join(f"{d.get('path')}: {', '.join(d.get('errors', []))}"
                                    for d in e.details)
                raise _StepFailed(f"Marathon refused the definition: {e.message}"
                                  + (f" ({details})" if details else ""), notes) from e
            except marathon.MarathonError as e:
                raise _StepFailed(f"Marathon error: {e.message}", notes) from e

    def _send_once(self, step: planning.Step) -> marathon.DeploymentRef:
        desired = step.diff.desired
        if step.action is model.Action.CREATE:
            assert desired is not None
            return self._client.create_app(desired)
        if step.action is model.Action.UPDATE:
            assert desired is not None
            return self._client.update_app(step.app_id, desired)
        if step.action is model.Action.SCALE:
            assert desired is not None
            return self._client.scale_app(step.app_id, int(desired.get("instances", 1)))
        if step.action is model.Action.DELETE:
            return self._client.delete_app(step.app_id)
        raise ValueError(f"nothing to send for {step.action}")

    # -- waiting ----------------------------------------------------------------------------

    def _wait(
        self, app_id: model.AppId, deployment_id: str, *, started: float, deadline_at: float,
        on_progress: ProgressCallback | None,
    ) -> _Ending:
        last_progress = float("-inf")
        while True:
            ended = self._watch.ended(deployment_id)
            if ended is not None:
                return _Ending.SUCCEEDED if ended == "deployment_success" else _Ending.FAILED
            now = self._clock()
            if now >= deadline_at:
                return _Ending.TIMED_OUT
            running = self._watch.deployments(newer_than=started)
            if running is not None and deployment_id not in running:
                ended = self._watch.ended(deployment_id)
                if ended is not None:
                    continue
                return _Ending.GONE
            if on_progress is not None and now - last_progress >= self._options.progress_interval:
                last_progress = now
                _emit(on_progress, Progress(app_id, Phase.DEPLOYING, deployment_id=deployment_id,
                                            health=self._progress_health(app_id)))
            self._watch.wait_for_news(min(self._options.poll_interval, deadline_at - now))

    def _progress_health(self, app_id: model.AppId) -> health.AppHealth | None:
        deployments = list((self._watch.deployments(newer_than=float("-inf")) or {}).values())
        live = self._watch.app(app_id)
        return health.assess(app_id, live, deployments=deployments) if live else None

    def _judge_vanished(self, base: StepResult) -> _Ending | None:
        """A deployment left ``/v2/deployments`` without an event we saw: did it succeed?

        None when the live app still lists the deployment (the poll raced the change).
        """
        try:
            live = self._client.get_app(base.app_id, embed=("app.tasks", "app.lastTaskFailure"))
        except marathon.NotFound:
            return _Ending.SUCCEEDED if base.action is model.Action.DELETE else _Ending.FAILED
        except marathon.MarathonError:
            return _Ending.FAILED
        if any(d.get("id") == base.deployment_id for d in live.get("deployments") or ()):
            return None
        if base.action is model.Action.DELETE:
            return _Ending.FAILED
        if live.get("version") != base.version:
            return _Ending.FAILED  # someone reverted or replaced it meanwhile
        assessed = health.assess(base.app_id, live)
        return (_Ending.SUCCEEDED if assessed.status in (health.HealthStatus.HEALTHY,
                                                          health.HealthStatus.SUSPENDED)
                else _Ending.FAILED)

    def _assess(self, app_id: model.AppId) -> health.AppHealth | None:
        try:
            live = self._client.get_app(app_id, embed=("app.tasks", "app.lastTaskFailure"))
        except marathon.NotFound:
            return health.assess(app_id, None)
        except marathon.MarathonError:
            return None
        return health.assess(app_id, live)

    # -- rolling back -------------------------------------------------------------------------

    def _roll_back(
        self, base: StepResult, *, ending: _Ending, step: planning.Step | None,
        on_progress: ProgressCallback | None,
    ) -> StepResult:
        assert base.deployment_id is not None
        try:
            stuck = self._watch.refresh().get(base.deployment_id)
        except marathon.MarathonError:
            stuck = self._watch.deployment(base.deployment_id)
        stuck_step = (str(health.assess(base.app_id, {"id": base.app_id},
                                        deployments=[stuck]).step) if stuck else None)
        assessed = self._assess(base.app_id)
        failure = assessed.failure if assessed is not None else None
        reason = ("deadline missed" if ending is _Ending.TIMED_OUT
                  else "deployment failed in Marathon")
        if assessed is not None:
            reason += f" ({assessed.healthy}/{assessed.target} healthy)"
        failed = replace(base, reason=reason, failure=failure, stuck_step=stuck_step,
                         health=assessed)
        _emit(on_progress, Progress(base.app_id, Phase.ROLLING_BACK,
                                    deployment_id=base.deployment_id, message=reason))
        rollback = self.roll_back_deployment(
            app_id=base.app_id, action=base.action, deployment_id=base.deployment_id,
            from_version=base.version, to_version=base.previous_version,
            deadline=self._rollback_deadline(step), reason=reason)
        outcome = (model.Outcome.ROLLED_BACK if rollback.outcome is model.Outcome.SUCCEEDED
                   else model.Outcome.FAILED)
        return replace(failed, outcome=outcome, rollback=rollback, finished_at=self._clock())

    def _rollback_deadline(self, step: planning.Step | None) -> float:
        if step is None or step.diff.live is None:
            return planning.MARGIN + planning.LAUNCH_ALLOWANCE
        previous = model.AppDiff(app_id=step.app_id, action=model.Action.UPDATE, patch=(),
                                 changes=(), desired=step.diff.live, live=step.diff.live)
        return max(step.deadline.seconds, planning.derive_deadline(previous).seconds)

    def roll_back_deployment(
        self, *, app_id: model.AppId, action: model.Action, deployment_id: str | None,
        from_version: str | None, to_version: str | None, deadline: float, reason: str,
    ) -> RollbackResult:
        """Undo one change: cancel its deployment, else re-apply ``to_version`` (or delete)."""
        started = self._clock()
        method = RollbackMethod.CANCEL_DEPLOYMENT
        ref: marathon.DeploymentRef | None = None
        try:
            if deployment_id is not None:
                with contextlib.suppress(marathon.NotFound):
                    ref = self._client.cancel_deployment(deployment_id)
            if ref is None:
                ref, method = self._reapply(app_id, action=action, to_version=to_version)
        except (marathon.MarathonError, _StepFailed) as e:
            message = e.message if isinstance(e, marathon.MarathonError) else e.reason
            return RollbackResult(method=method, from_version=from_version,
                                  to_version=to_version, deployment_id=None,
                                  outcome=model.Outcome.FAILED,
                                  reason=f"{reason}; rollback impossible: {message}")
        if ref is None:
            return RollbackResult(method=method, from_version=from_version, to_version=to_version,
                                  deployment_id=None, outcome=model.Outcome.SUCCEEDED,
                                  reason=reason)
        self._journal.deployment_started(
            app_id=app_id, action=action, deployment_id=ref.deployment_id, version=ref.version,
            previous_version=from_version, purpose="rollback", patch=(), deadline=deadline)
        ending = self._wait(app_id, ref.deployment_id, started=self._clock(),
                            deadline_at=started + deadline, on_progress=None)
        if ending is _Ending.GONE:
            ending = _Ending.SUCCEEDED  # a revert has nothing to judge it by but its end
        outcome = {_Ending.SUCCEEDED: model.Outcome.SUCCEEDED,
                   _Ending.TIMED_OUT: model.Outcome.TIMED_OUT}.get(ending, model.Outcome.FAILED)
        return RollbackResult(method=method, from_version=from_version,
                              to_version=to_version,
                              deployment_id=ref.deployment_id, outcome=outcome, reason=reason)

    def _reapply(
        self, app_id: model.AppId, *, action: model.Action, to_version: str | None
    ) -> tuple[marathon.DeploymentRef | None, RollbackMethod]:
        if action is model.Action.CREATE or to_version is None:
            try:
                return self._client.delete_app(app_id), RollbackMethod.DELETE_CREATED
            except marathon.NotFound:
                return None, RollbackMethod.DELETE_CREATED
        definition = strip_read_only(self._client.get_app_version(app_id, to_version))
        try:
            return self._client.update_app(app_id, definition), RollbackMethod.REAPPLY_VERSION
        except marathon.Conflict as e:
            # Only our own failed deployment can still hold the lock here: stop it, then retry.
            for blocking in e.deployment_ids:
                with contextlib.suppress(marathon.NotFound):
                    self._client.cancel_deployment(blocking, force=True)
            return self._client.update_app(app_id, definition), RollbackMethod.REAPPLY_VERSION

    def _finish(self, result: StepResult, on_progress: ProgressCallback | None, *,
                journal: bool = True) -> StepResult:
        if journal:
            self._journal.step_finished(result)
        _emit(on_progress, Progress(result.app_id, Phase.DONE, deployment_id=result.deployment_id,
                                    health=result.health, outcome=result.outcome,
                                    message=result.reason))
        return result


def strip_read_only(app: Mapping[str, Any]) -> JSON:
    """``app`` without the fields Marathon fills in at runtime, ready for a PUT."""
    return {k: v for k, v in app.items() if k not in _READ_ONLY_FIELDS}


class _StepFailed(Exception):
    """The change could not be sent: nothing was deployed, nothing to roll back."""

    def __init__(self, reason: str, notes: Iterable[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.notes: tuple[str, ...] = tuple(notes)


def _emit(callback: ProgressCallback | None, progress: Progress) -> None:
    if callback is None:
        return
    try:
        callback(progress)
    except Exception:  # noqa: BLE001 - a broken display must not break a deployment
        log.exception("progress callback failed")


def results_by_app(results: Iterable[StepResult]) -> dict[model.AppId, StepResult]:
    return {r.app_id: r for r in results}
