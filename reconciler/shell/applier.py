"""The applier: runs a plan through Marathon, waits for each deployment, rolls back failures.

The only module that changes Marathon during a sync. For each :class:`plan.Step` it sends the
change (create, full-replacement update = Marathon's rolling upgrade under the app's
``upgradeStrategy``, scale-only, delete), tells the :class:`Journal` the deployment id
**before** waiting (so that a successor can resume after a crash), and waits until the
deployment ends or its deadline passes.

Waiting is :mod:`reconciler.shell.watch`'s (Marathon's event stream, polls as a fallback); a
deployment that vanished without an event is judged here from the live app (its version and
health). A deployment that fails or misses its deadline is rolled back by
:mod:`reconciler.shell.rollback`; the engine records it and quarantines the revision.

A change refused with 409 (the app is locked by another deployment) waits for the blocking
deployments up to the step's deadline, or cancels them when the run asked for it
(``cancel_blocking``); it never uses Marathon's ``force`` silently.

Time is injected (``clock`` for deadlines, ``sleep`` for pauses without the event stream),
so nothing here reads the wall clock.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from reconciler.core import health, model, releases
from reconciler.core import plan as planning
from reconciler.shell import marathon, rollback, steps
from reconciler.shell import soak as soaking
from reconciler.shell import watch as watching

log = logging.getLogger(__name__)
Ending = watching.Ending
WaveState = releases.WaveState

JSON = dict[str, Any]
Clock = Callable[[], float]
Sleep = Callable[[float], None]


class Applier:
    """Runs plans against one Marathon. Reusable across runs; :meth:`close` stops its thread."""

    def __init__(
        self,
        client: marathon.MarathonClient,
        *,
        journal: steps.Journal | None = None,
        options: steps.ApplyOptions = steps.ApplyOptions(),  # noqa: B008 - frozen
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._client = client
        self._journal: steps.Journal = journal or steps.NullJournal()
        self._options = options
        self._clock = clock
        self._sleep = sleep
        self._watch = watching.Watch(client, clock=clock, sleep=sleep, options=options)
        self._rollbacks = rollback.Rollbacks(client, journal=self._journal, watch=self._watch,
                                             clock=clock)

    def close(self) -> None:
        self._watch.close()

    # -- running a plan -------------------------------------------------------------------

    def run(
        self, plan: planning.Plan, *, on_progress: steps.ProgressCallback | None = None,
        on_wave: steps.WaveCallback | None = None,
    ) -> tuple[steps.StepResult, ...]:
        """Apply every step, layer by layer, up to ``plan.parallel`` apps at once; with
        release waves, wave by wave (:meth:`_run_stages`)."""
        if plan.is_empty:
            return ()
        self._watch.start()
        results: dict[model.AppId, steps.StepResult] = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=plan.parallel,
                                                   thread_name_prefix="apply") as pool:
            if plan.stages:
                self._run_stages(plan.stages, results=results, pool=pool,
                                 on_progress=on_progress, on_wave=on_wave)
            else:
                for layer in plan.waves:
                    self._run_layer(layer, results=results, pool=pool, on_progress=on_progress)
        return tuple(results[step.app_id] for step in plan.steps)

    def _run_layer(
        self, layer: tuple[planning.Step, ...], *, results: dict[model.AppId, steps.StepResult],
        pool: concurrent.futures.ThreadPoolExecutor, on_progress: steps.ProgressCallback | None,
    ) -> None:
        def calls() -> Iterator[tuple[model.AppId, Callable[[], steps.StepResult]]]:
            for step in layer:
                failed = [d for d in step.depends_on
                          if results[d].outcome is not model.Outcome.SUCCEEDED]
                if failed:
                    result = steps.StepResult(
                        app_id=step.app_id, action=step.action, outcome=model.Outcome.SKIPPED,
                        reason=f"dependency {', '.join(failed)} did not succeed")
                    self._finish(result, on_progress)
                    results[step.app_id] = result
                else:
                    yield step.app_id, functools.partial(self.apply_step, step,
                                                         on_progress=on_progress)

        results.update(run_bounded(pool, calls(), limit=_in_flight(pool)))

    def _run_stages(
        self, stages: tuple[planning.Stage, ...], *,
        results: dict[model.AppId, steps.StepResult],
        pool: concurrent.futures.ThreadPoolExecutor, on_progress: steps.ProgressCallback | None,
        on_wave: steps.WaveCallback | None,
    ) -> None:
        """Release waves: a wave's layers, then its soak (not for the last wave: nothing
        waits on it); a failure rolls back the whole wave and leaves later waves untouched."""
        failed_wave: str | None = None
        for index, stage in enumerate(stages):
            apps = tuple(s.app_id for s in stage.steps)
            report = steps.WaveReport(name=stage.name, state=WaveState.DEPLOYING, apps=apps,
                                      soak=stage.soak, started_at=self._clock())
            if failed_wave is not None:
                why = f"wave {failed_wave} failed: this wave was not started"
                for step in stage.steps:
                    results[step.app_id] = self._finish(steps.StepResult(
                        app_id=step.app_id, action=step.action, outcome=model.Outcome.SKIPPED,
                        reason=why), on_progress)
                _emit_wave(on_wave, replace(report, state=WaveState.NOT_STARTED,
                                            started_at=None, reason=why))
                continue
            _emit_wave(on_wave, report)
            for layer in stage.waves:
                self._run_layer(layer, results=results, pool=pool, on_progress=on_progress)
            broken = [results[a] for a in apps if results[a].outcome is not model.Outcome.SUCCEEDED]
            why = "; ".join(f"{r.app_id}: {r.outcome}" + (f" ({r.reason})" if r.reason else "")
                            for r in broken if r.outcome is not model.Outcome.SKIPPED)
            if not broken and stage.soak > 0 and index < len(stages) - 1:
                _emit_wave(on_wave, replace(report, state=WaveState.SOAKING))
                unhealthy = soaking.soak(self._client, apps, seconds=stage.soak,
                                         interval=self._options.poll_interval,
                                         clock=self._clock, sleep=self._sleep)
                if unhealthy is not None:
                    broken = [results[unhealthy.app_id]]
                    why = f"{unhealthy.app_id}: {unhealthy.reason}"
            if not broken:
                _emit_wave(on_wave, replace(report, state=WaveState.SUCCEEDED,
                                            finished_at=self._clock()))
                continue
            failed_wave = stage.name
            self._roll_back_wave(stage, results=results, pool=pool, why=why,
                                 on_progress=on_progress)
            # Undone unless something reached Marathon and could not be taken back (a change
            # refused before any deployment left nothing behind).
            undone = not any(results[a].deployment_id is not None and results[a].outcome
                             not in (model.Outcome.ROLLED_BACK, model.Outcome.SKIPPED)
                             for a in apps)
            _emit_wave(on_wave, replace(
                report, state=WaveState.ROLLED_BACK if undone else WaveState.FAILED,
                finished_at=self._clock(), reason=why))

    def _roll_back_wave(
        self, stage: planning.Stage, *, results: dict[model.AppId, steps.StepResult],
        pool: concurrent.futures.ThreadPoolExecutor, why: str,
        on_progress: steps.ProgressCallback | None,
    ) -> None:
        """Put every app of the wave that succeeded back to its previous version (the apps
        that failed were rolled back as they failed)."""
        reason = f"release wave {stage.name} failed ({why}): rolled back with its wave"
        undoing = [
            (step.app_id, functools.partial(
                self._rollbacks.roll_back_deployment, app_id=step.app_id, action=step.action,
                deployment_id=None, from_version=results[step.app_id].version,
                to_version=results[step.app_id].previous_version,
                deadline=self._rollbacks.deadline_for(step), reason=reason))
            for step in stage.steps
            if results[step.app_id].outcome is model.Outcome.SUCCEEDED
            and step.action is not model.Action.DELETE]
        for app_id, undo in run_bounded(pool, undoing, limit=_in_flight(pool)).items():
            outcome = (model.Outcome.ROLLED_BACK if undo.outcome is model.Outcome.SUCCEEDED
                       else model.Outcome.FAILED)
            results[app_id] = self._finish(replace(
                results[app_id], outcome=outcome, reason=reason, rollback=undo,
                finished_at=self._clock()), on_progress)

    def apply_step(
        self, step: planning.Step, *, on_progress: steps.ProgressCallback | None = None
    ) -> steps.StepResult:
        """Send one change, wait for it, roll it back if it fails. Never raises for Marathon."""
        started = self._clock()
        previous_version = (step.diff.live or {}).get("version")
        base = steps.StepResult(app_id=step.app_id, action=step.action,
                          outcome=model.Outcome.FAILED, previous_version=previous_version,
                          started_at=started)
        deadline_at = started + step.deadline.seconds
        # Write-ahead: if the records cannot take the intent, nothing is sent.
        self._journal.intend(app_id=step.app_id, action=step.action,
                             purpose=model.Purpose.CHANGE, definition=step.diff.desired,
                             previous_version=previous_version, deadline=step.deadline.seconds)
        try:
            ref, notes = self._send(step, deadline_at=deadline_at, on_progress=on_progress)
            sent_at = self._clock()
        except steps.StepFailed as e:
            return self._finish(replace(base, reason=e.reason, notes=e.notes,
                                        in_doubt=e.in_doubt, finished_at=self._clock()),
                                on_progress)
        base = replace(base, deployment_id=ref.deployment_id, version=ref.version, notes=notes)
        self._journal.deployment_started(
            app_id=step.app_id, action=step.action, deployment_id=ref.deployment_id,
            version=ref.version, previous_version=previous_version, purpose=model.Purpose.CHANGE,
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
        self, base: steps.StepResult, *, step: planning.Step | None, deadline_at: float,
        on_progress: steps.ProgressCallback | None = None, sent_at: float | None = None,
    ) -> steps.StepResult:
        """Wait for ``base.deployment_id`` and roll back on failure (also used to resume).

        ``sent_at`` is when Marathon accepted the change: a poll of ``/v2/deployments`` older
        than that cannot tell that the deployment ended.
        """
        assert base.deployment_id is not None and base.started_at is not None
        self._watch.start()
        seen_after = sent_at if sent_at is not None else base.started_at
        while True:
            ending = self._watch.wait(base.app_id, base.deployment_id, started=seen_after,
                                deadline_at=deadline_at, on_progress=on_progress)
            if ending is not Ending.GONE:
                break
            judged = self._judge_vanished(base)
            if judged is not None:
                ending = judged
                break
            seen_after = self._clock()  # still running after all: wait for a newer poll
        if ending is Ending.SUCCEEDED:
            # Marathon ends a deployment successfully only once its tasks are healthy; the
            # engine assesses every app with one request afterwards when its report needs
            # health (``reconciler sync``'s; the controller reads its live cache).
            return replace(base, outcome=model.Outcome.SUCCEEDED, finished_at=self._clock())
        if base.action is model.Action.DELETE:
            return replace(base, outcome=model.Outcome.TIMED_OUT if ending is Ending.TIMED_OUT
                           else model.Outcome.FAILED,
                           reason=f"delete {ending}", finished_at=self._clock())
        return self._rollbacks.roll_back(base, ending=ending, step=step, on_progress=on_progress)

    # -- sending a change -----------------------------------------------------------------

    def _send(
        self, step: planning.Step, *, deadline_at: float, on_progress: steps.ProgressCallback | None
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
                    raise steps.StepFailed(
                        f"locked by deployment(s) {', '.join(blocking) or '?'} until the "
                        f"deadline; rerun with --cancel-blocking to cancel them", notes) from e
                notes.append(f"waited for blocking deployment(s) {', '.join(blocking)}")
                steps.emit(on_progress, steps.Progress(step.app_id, steps.Phase.BLOCKED,
                                            message=", ".join(blocking)))
                if not blocking:
                    self._sleep(min(self._options.poll_interval,
                                    max(0.0, deadline_at - self._clock())))
                for deployment_id in blocking:
                    self._watch.wait(step.app_id, deployment_id, started=self._clock(),
                               deadline_at=deadline_at, on_progress=None)
            except marathon.Unprocessable as e:
                details = "; ".join(f"{d.get('path')}: {', '.join(d.get('errors', []))}"
                                    for d in e.details)
                raise steps.StepFailed(f"Marathon refused the definition: {e.message}"
                                  + (f" ({details})" if details else ""), notes) from e
            except marathon.MarathonError as e:
                clear = isinstance(e, marathon.NotFound | marathon.Unauthorized)
                raise steps.StepFailed(f"Marathon error: {e.message}", notes,
                                       in_doubt=not clear) from e

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

    def _judge_vanished(self, base: steps.StepResult) -> Ending | None:
        """A deployment left ``/v2/deployments`` without an event we saw: did it succeed?

        None when the live app still lists the deployment (the poll raced the change).
        """
        try:
            live = self._client.get_app(base.app_id, embed=("app.tasks", "app.lastTaskFailure"))
        except marathon.NotFound:
            return Ending.SUCCEEDED if base.action is model.Action.DELETE else Ending.FAILED
        except marathon.MarathonError:
            # No answer, or a garbled one, says nothing about the deployment: judging it
            # failed would roll back a release that may be fine. Ask again after a poll.
            return None
        if any(d.get("id") == base.deployment_id for d in live.get("deployments") or ()):
            return None
        if base.action is model.Action.DELETE:
            return Ending.FAILED
        if live.get("version") != base.version:
            return Ending.FAILED  # someone reverted or replaced it meanwhile
        assessed = health.assess(base.app_id, live)
        return (Ending.SUCCEEDED if assessed.status in (health.HealthStatus.HEALTHY,
                                                          health.HealthStatus.SUSPENDED)
                else Ending.FAILED)

    def _finish(self, result: steps.StepResult, on_progress: steps.ProgressCallback | None, *,
                journal: bool = True) -> steps.StepResult:
        if journal:
            self._journal.step_finished(result)
        steps.emit(on_progress, steps.Progress(
            result.app_id, steps.Phase.DONE, deployment_id=result.deployment_id,
            health=result.health, outcome=result.outcome, message=result.reason))
        return result


K = TypeVar("K")
R = TypeVar("R")


def run_bounded(pool: concurrent.futures.Executor, calls: Iterable[tuple[K, Callable[[], R]]],
                *, limit: int) -> dict[K, R]:
    """Each call of ``calls`` run on ``pool``, at most ``limit`` of them submitted and not
    finished at any time (``calls`` is drawn from as room frees); their results by key, in
    the order of ``calls``.

    Bounded because a pending future costs about 2 KB (its condition, lock and waiter
    queue): a layer of 10,000 steps submitted at once held 19 MB until its last step ended.
    As with every call submitted up front, all calls run even when some raise, and then the
    exception of the first of them (in the order of ``calls``) is raised.
    """
    running: dict[concurrent.futures.Future[R], tuple[int, K]] = {}
    results: dict[int, tuple[K, R]] = {}
    first_error: tuple[int, BaseException] | None = None

    def collect(done: Iterable[concurrent.futures.Future[R]]) -> None:
        nonlocal first_error
        for future in done:
            index, key = running.pop(future)
            try:
                results[index] = (key, future.result())
            except BaseException as e:  # noqa: BLE001 - raised below, as future.result() would
                if first_error is None or index < first_error[0]:
                    first_error = (index, e)

    waiting = iter(calls)
    for index in itertools.count():
        if len(running) >= limit:  # room first: a call is drawn only when it can go
            collect(concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED).done)
        drawn = next(waiting, None)
        if drawn is None:
            break
        key, call = drawn
        running[pool.submit(call)] = (index, key)
    collect(concurrent.futures.wait(running).done)
    if first_error is not None:
        raise first_error[1]
    return dict(results[index] for index in sorted(results))


def _in_flight(pool: concurrent.futures.ThreadPoolExecutor) -> int:
    """Steps submitted ahead: every worker busy and one more queued each, no more."""
    return 2 * pool._max_workers  # noqa: SLF001 - the pool's size, as it was made


def _emit_wave(callback: steps.WaveCallback | None, report: steps.WaveReport) -> None:
    if callback is None:
        return
    try:
        callback(report)
    except Exception:
        log.exception("wave callback failed")
