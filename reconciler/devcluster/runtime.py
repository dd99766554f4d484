"""The running dev cluster: its parts put together, started, stopped, and read as Marathon JSON.

One asyncio loop owns all state; HTTP handlers (``server.py`` and the ``routes_*`` modules)
call into :class:`Cluster`. The parts: ``tasks`` (processes), ``health`` (health checks),
``deployments`` (the deployment state machine, plans in ``plans``), ``state`` (persistence),
``events`` (the event bus), all over the objects of ``model``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from reconciler.devcluster import deployments, health, model, serviceports, state, tasks

JSON = dict[str, Any]


class Cluster(deployments.Deployments, health.HealthChecks, tasks.TaskProcesses):
    """All state of the dev cluster, mutated only on the event loop."""

    _save_task: asyncio.Task[None] | None = None
    framework_id = ""
    """Kept in the state dir (see :func:`state.framework_id`); set by :meth:`start`."""

    async def start(self) -> None:
        self._start_watchdog()
        self._http = aiohttp.ClientSession()
        self.apps, self.deployments, groups = state.load(self.state_dir)
        if groups is not None:
            self.tree = groups
        self.tree.add(list(self.apps))
        self.framework_id = state.framework_id(self.state_dir)
        for record in self.apps.values():
            self.allocator.reserve(serviceports.service_ports(record.app))
        self._save_task = asyncio.create_task(self._saver())
        # Marathon resumes the deployments it had stored when a new leader takes over.
        for deployment in self.deployments.values():
            deployment.runner = asyncio.create_task(self._run_deployment(deployment))
        for record in self.apps.values():
            self._converge_soon(record)

    async def stop(self) -> None:
        """Stop every task; running deployments stay stored and resume on the next start."""
        self._stopping = True
        state.write(self.state_dir, state.snapshot(self.apps, self.deployments, self.tree))
        for deployment in list(self.deployments.values()):
            if deployment.runner:
                deployment.runner.cancel()
        records = [*self.apps.values(), *self.stopping.values()]
        kills = [self._kill(r, t) for r in records for t in list(r.tasks.values())]
        await asyncio.gather(*kills, return_exceptions=True)
        if self._save_task:
            self._save_task.cancel()
        state.write(self.state_dir, state.snapshot(self.apps, self.deployments, self.tree))
        if self._http:
            await self._http.close()
        if self._watchdog is not None and self._watchdog.stdin is not None:
            self._watchdog.stdin.close()  # nothing left to kill: it exits
            await asyncio.to_thread(self._watchdog.wait)

    async def _saver(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            await asyncio.sleep(0.2)  # coalesce bursts of changes into one write
            data = state.snapshot(self.apps, self.deployments, self.tree)
            await asyncio.to_thread(state.write, self.state_dir, data)

    def app_json(self, record: model.AppRecord, embed: frozenset[str] = frozenset()) -> JSON:
        app = dict(record.app)
        tasks = list(record.tasks.values())
        app["tasksStaged"] = sum(1 for t in tasks if t.state == "TASK_STAGING")
        app["tasksRunning"] = sum(1 for t in tasks if t.state == "TASK_RUNNING")
        app["tasksHealthy"] = sum(1 for t in tasks if t.health and t.healthy)
        app["tasksUnhealthy"] = sum(1 for t in tasks if t.unhealthy)
        app["deployments"] = [
            {"id": d.id} for d in self.deployments.values() if app["id"] in d.affected
        ]
        if "tasks" in embed:
            app["tasks"] = [t.to_json() for t in tasks]
        if "lastTaskFailure" in embed and record.last_task_failure:
            app["lastTaskFailure"] = record.last_task_failure
        if "readiness" in embed:
            app["readinessCheckResults"] = []  # readiness checks are not performed here
        if "taskStats" in embed:
            app["tasksStats"] = model.task_stats(tasks, version_info=app["versionInfo"],
                                                 now=self.timestamp())
        return app

    def app_bytes(self, record: model.AppRecord, embed: frozenset[str] = frozenset()) -> bytes:
        """Serialized app, from a cache when nothing it embeds is there (listing 10,000
        apps must stay fast): what ``app_json`` adds then is empty and goes last."""
        if embed & {"taskStats"} or (record.tasks and "tasks" in embed) or (
                record.last_task_failure and "lastTaskFailure" in embed):
            return orjson.dumps(self.app_json(record, embed))
        app_id = record.app["id"]
        cached = self._json_cache.get(app_id)
        if cached is None:
            cached = orjson.dumps(self.app_json(record))
            self._json_cache[app_id] = cached
        empty = (b',"tasks":[]' if "tasks" in embed else b"") + (
            b',"readinessCheckResults":[]' if "readiness" in embed else b"")
        return cached[:-1] + empty + b"}" if empty else cached
