"""Deployments: start one (versions, plan, lock), run it step by step, cancel or revert it.

Marathon's ``DeploymentManager`` and ``DeploymentActor``: the steps of a plan run one after the
other, the actions of a step at once; restarts follow ``TaskReplaceActor``. Time comes from
the cluster's injected clocks (``clock`` for delays, ``timestamp`` for versions).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

from reconciler.devcluster import changes, model, plans, serviceports, shared, tree

JSON = dict[str, Any]


class Deployments(shared.SharedState):
    """Starts, runs and cancels deployments."""

    def locking_deployments(self, app_ids: list[str] | frozenset[str]) -> list[model.Deployment]:
        """Running deployments with an action on one of ``app_ids``
        (``DeploymentManagerActor.conflictingDeployments``)."""
        wanted = frozenset(app_ids)
        return [d for d in self.deployments.values() if d.affected & wanted]

    def start_deployment(
        self, target: dict[str, JSON | None], *, force: bool, restart: bool = False,
        group_id: str = "/", groups: Callable[[tree.GroupTree], None] | None = None,
    ) -> model.Deployment:
        """Start one deployment taking every app in ``target`` to its definition (None: delete).

        Marathon's ``GroupManagerImpl.updateRootEither``: stamp versions, build the plan, check
        the locks, store the new root at once (a removed app is gone from the root, its tasks are
        then killed by the plan), publish ``group_change_success`` for ``group_id``. Definitions
        must already be filled with defaults. ``groups`` changes the group tree of the new root.
        Raises :class:`model.Locked` when an app with an action is changed by another deployment
        and ``force`` is false (``deployment_failed`` and ``group_change_failed`` are published,
        as by ``MarathonSchedulerActor.deploy``); with force the other deployments are stopped
        first. ``restart``: every task of the apps is replaced though their definitions stay.
        """
        version = self.timestamp()
        original: dict[str, JSON | None] = {
            app_id: dict(self.apps[app_id].app) if app_id in self.apps else None
            for app_id in target
        }
        stored = plans.new_definitions(target, live=original, version=version, restart=restart)
        graph = {a: list(r.app.get("dependencies") or []) for a, r in self.apps.items()}
        for app_id, app in stored.items():
            if app is None:
                graph.pop(app_id, None)
            else:
                graph[app_id] = list(app.get("dependencies") or [])
        steps = plans.steps(original=original, target=stored, graph=graph,
                            restarted=frozenset(stored) if restart else frozenset())
        deployment = model.Deployment(
            id=str(uuid.uuid4()), version=version, original=original, target=stored, steps=steps
        )
        blocking = self.locking_deployments(deployment.affected)
        if blocking and not force:
            # GroupManagerImpl.updateRootEither stores the root version (and the changed apps)
            # before the deployment manager refuses the plan: the refused version is listed.
            for app_id in deployment.affected:
                record, app = self.apps.get(app_id), stored.get(app_id)
                if record is not None and app is not None:
                    record.versions.setdefault(app["version"], app)
            refused_root = {a: r.app for a, r in self.apps.items()}
            refused_root.update((a, app) for a, app in stored.items() if app is not None)
            for app_id in (a for a, app in stored.items() if app is None):
                refused_root.pop(app_id, None)
            self.tree.keep(version, refused_root)
            self.publish("deployment_failed", id=deployment.id, plan=deployment.plan_json(),
                         reason=model.LOCKED_MESSAGE)
            self.publish("group_change_failed", groupId=group_id, version=version,
                         reason=model.LOCKED_MESSAGE)
            raise model.Locked(blocking)
        for other in blocking:
            self._stop_deployment(other, reason=model.CANCELLED_MESSAGE)
        self._store_root(deployment, groups=groups)
        self.publish("group_change_success", groupId=group_id, version=version)
        self.deployments[deployment.id] = deployment
        self._changed.set()
        deployment.runner = asyncio.create_task(self._run_deployment(deployment))
        return deployment

    def _store_root(
        self, deployment: model.Deployment, *, groups: Callable[[tree.GroupTree], None] | None,
    ) -> None:
        """The new root at once: definitions, removed apps, groups, the root version."""
        for app_id, app in deployment.target.items():
            record = self.apps.get(app_id)
            if app is None:
                if record is not None:
                    self.stopping[app_id] = self.apps.pop(app_id)
                    self._touch(app_id)
                continue
            if record is None:
                record = self.stopping.pop(app_id, None) or model.AppRecord(app=app, versions={})
                self.apps[app_id] = record
            elif (record.app["version"] == app["version"]
                  and changes.change_kind(record.app, app) == "none"):
                continue  # unchanged: what runs on it (a rolling upgrade) goes on
            elif (record.app["versionInfo"]["lastConfigChangeAt"]
                  != app["versionInfo"]["lastConfigChangeAt"]):
                record.reset_delay()  # a new config starts without the old one's backoff
            record.app = app
            if app_id in deployment.affected:  # only apps with an action are stored anew
                record.versions[app["version"]] = app
            self._touch(app_id)
            self._notify(record)  # a superseded deployment's wait for this app must end
        self.tree.add([a for a, app in deployment.target.items() if app is not None])
        if groups is not None:
            groups(self.tree)
        self.tree.stamp(deployment.version, {a: r.app for a, r in self.apps.items()})

    async def _run_deployment(self, deployment: model.Deployment) -> None:
        """Marathon's ``DeploymentActor``: steps one after the other, actions of a step at once."""
        try:
            for index, actions in enumerate(deployment.steps, start=1):
                deployment.current_step = index
                for action in actions:
                    self._touch(action["app"])
                self.publish("deployment_info", plan=deployment.plan_json(),
                             currentStep={"actions": actions})
                await asyncio.gather(*(self._run_action(deployment, a) for a in actions))
                self.publish("deployment_step_success", plan=deployment.plan_json(),
                             currentStep={"actions": actions})
        except asyncio.CancelledError:
            # A cancelled DeploymentActor reports no step failure; MarathonSchedulerActor's
            # deploymentFailed gives the DeploymentCanceledException's message as reason.
            if not self._stopping:  # a dev cluster shutting down keeps it to resume it
                self.publish("deployment_failed", id=deployment.id, plan=deployment.plan_json(),
                             reason=deployment.cancel_reason)
            raise
        finally:
            if not self._stopping:
                self._forget_deployment(deployment)
        self.publish("deployment_success", id=deployment.id, plan=deployment.plan_json())

    def _forget_deployment(self, deployment: model.Deployment) -> None:
        if self.deployments.pop(deployment.id, None) is not None:
            for app_id in deployment.affected:
                self._touch(app_id)
            self._changed.set()

    async def _run_action(self, deployment: model.Deployment, action: JSON) -> None:
        app_id = action["app"]
        kind = action["action"]
        record = self.apps.get(app_id)
        if kind == "StopApplication":
            record = self.stopping.get(app_id)
            if record is not None:
                await asyncio.gather(*(self._kill(record, t, )
                                       for t in list(record.tasks.values())))
                if self.stopping.get(app_id) is record:
                    del self.stopping[app_id]
                    if app_id not in self.apps:
                        self.allocator.release(serviceports.service_ports(record.app))
            self._changed.set()
            self.publish("app_terminated_event", appId=app_id)
            return
        if record is None:
            return
        if kind == "StartApplication":
            return
        if kind == "ScaleApplication":
            await self._scale(record)
            return
        await self._replace(record)

    @staticmethod
    async def _wait(record: model.AppRecord, predicate: Callable[[], bool]) -> None:
        while True:
            record.wakeup.clear()
            if predicate():
                return
            await record.wakeup.wait()

    async def _scale(self, record: model.AppRecord) -> None:
        """Start or kill tasks of the current version until ``instances`` run (and are healthy)."""
        app = record.app
        target = int(app["instances"])
        current = [t for t in record.tasks.values() if not t.killing]
        if len(current) > target:
            doomed = plans.kill_order(current, app.get("killSelection"))
            await asyncio.gather(*(self._kill(record, t, )
                                   for t in doomed[: len(current) - target]))
        self._converge_soon(record)
        # A scale keeps running tasks (of whatever version): all of them count.
        await self._wait(record, lambda: self._ready_count(record, None) >= target
                         or record.app["version"] != app["version"])

    def _ready_count(self, record: model.AppRecord, version: str | None) -> int:
        """Tasks of ``version`` (any, when None) that are healthy, or running without checks."""
        has_checks = bool(record.app.get("healthChecks"))
        return sum(
            1 for t in record.tasks.values()
            if (version is None or t.version == version) and not t.killing
            and (t.healthy if has_checks else t.state == "TASK_RUNNING")
        )

    async def _replace(self, record: model.AppRecord) -> None:
        """Marathon's ``TaskReplaceActor``: replace old-version tasks within the upgrade strategy.

        ``killNow = healthy - ceil(n * minimumHealthCapacity)`` old tasks (unhealthy first, and
        at least the tasks beyond ``n``) are killed up front; old tasks (until they are gone,
        dying ones included) plus new ones never exceed
        ``maxCapacity = floor(n * (1 + maximumOverCapacity))``, raised by one when it equals
        ``minHealthy`` so that the upgrade can start at all; each new task that becomes healthy
        (running, without health checks) lets the next old task be killed.
        """
        app = record.app
        version = app["version"]
        n = int(app["instances"])
        strategy = app["upgradeStrategy"]
        running = [t for t in record.tasks.values() if not t.killing]
        healthy_now = sum(1 for t in running if self._is_ready(record, t))
        # Old tasks, unhealthy ones first (TaskReplaceActor ignores killSelection here).
        old_queue = sorted((t for t in running if t.version != version),
                           key=lambda t: (self._is_ready(record, t), t.staged_at))
        min_healthy, max_capacity = plans.upgrade_capacity(
            instances=n, strategy=strategy, healthy=healthy_now)
        kill_now = max(0, healthy_now - min_healthy)
        if len(running) > n:  # left over by an earlier forced deployment
            kill_now = max(len(running) - n, kill_now)
        for _ in range(kill_now):
            if old_queue:
                self._kill_soon(record, old_queue.pop(0))
        credited: set[str] = set()
        # Until superseded (force) or reverted: an executorResources edit keeps the version and the
        # upgrade goes on, as Marathon's TaskReplaceActor does.
        while record.app["version"] == version:
            old = [t for t in record.tasks.values() if t.version != version]
            ready = [t.id for t in record.tasks.values() if t.version == version
                     and not t.killing and self._is_ready(record, t)]
            for task_id in ready:
                if task_id not in credited:
                    credited.add(task_id)
                    while old_queue and old_queue[0].killing:
                        old_queue.pop(0)
                    if old_queue:
                        self._kill_soon(record, old_queue.pop(0))
            if len(ready) >= n and not old:
                return
            new = [t for t in record.tasks.values() if t.version == version and not t.killing]
            room = min(n - len(new), max_capacity - len(old) - len(new))
            for _ in range(max(0, room)):
                self._launch(record)
            await self._wait_for_change(record)

    def _is_ready(self, record: model.AppRecord, task: model.Task) -> bool:
        if record.app.get("healthChecks"):
            return task.healthy
        return task.state == "TASK_RUNNING"

    @staticmethod
    async def _wait_for_change(record: model.AppRecord, timeout: float = 1.0) -> None:
        record.wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(record.wakeup.wait(), timeout)

    def launch_waiting(self, record: model.AppRecord) -> None:
        """Launch the tasks ``record`` waits for now (its delay was reset)."""
        self._converge_soon(record)

    def _converge_soon(self, record: model.AppRecord) -> None:
        """Outside upgrades: keep ``instances`` tasks running (Marathon's launch queue).

        An app that a deployment restarts is left to that deployment, which launches within its
        upgrade strategy.
        """
        app = record.app
        if any(app["id"] in d.restarts for d in self.deployments.values()):
            return
        live = sum(1 for t in record.tasks.values() if not t.killing)
        for _ in range(max(0, int(app["instances"]) - live)):
            self._launch(record)

    def _stop_deployment(self, deployment: model.Deployment, *, reason: str) -> None:
        deployment.cancel_reason = reason
        if deployment.runner is not None:
            deployment.runner.cancel()
        self._forget_deployment(deployment)

    def cancel_deployment(
        self, deployment: model.Deployment, *, force: bool
    ) -> model.Deployment | None:
        """Without force: stop it and start a deployment that reverts its change.

        As in Marathon (``DeploymentPlanReverter`` applied through ``updateRoot``), a reverted
        app gets its previous definition under a new ``version``: reverting is a config change.
        """
        self._stop_deployment(deployment, reason=model.CANCELLED_MESSAGE)
        if force:
            return None
        return self.start_deployment(dict(deployment.original), force=True)
