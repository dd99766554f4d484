"""The dev cluster's runtime: tasks as real local processes, health checks, deployments, events.

One asyncio loop owns all state; HTTP handlers (``server.py``) call into :class:`Cluster`.
Rolling upgrades follow Marathon's ``TaskReplaceActor``: with ``n`` instances,
``minHealthy = ceil(n * minimumHealthCapacity)`` old tasks are kept up front,
``maxCapacity = floor(n * (1 + maximumOverCapacity))`` bounds old + new tasks, and one old
task is killed each time a new one becomes healthy (or running, without health checks).
A version whose tasks never become healthy keeps its deployment running forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime as dt
import functools
import math
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from reconciler.devcluster import catalog, changes, serviceports

JSON = dict[str, Any]
HOST = "127.0.0.1"
AGENT_ID = "devcluster-agent-0"
_FAILURE_STATES = frozenset({"TASK_FAILED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED"})
"""States that set ``lastTaskFailure`` (Marathon's ``TaskFailure.isFailureState``)."""
_RATE_LIMITED_STATES = frozenset({"TASK_FAILED", "TASK_ERROR", "TASK_DROPPED", "TASK_FINISHED"})
"""States that grow the launch backoff (Marathon's ``NotifyRateLimiterStep.limitWorthy``)."""
_PR_SET_PDEATHSIG = 1


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the dev cluster dies, even by kill -9."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _instance_id(task_id: str) -> str:
    """Marathon 1.5+: task ``app.UUID`` belongs to instance ``app.marathon-UUID``."""
    app, _, uuid_ = task_id.rpartition(".")
    return f"{app}.marathon-{uuid_}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class HealthResult:
    checked: bool = False
    """Marathon lists a check's result only once the check ran (even an ignored failure)."""
    alive: bool = False
    consecutive_failures: int = 0
    first_success: str | None = None
    last_success: str | None = None
    last_failure: str | None = None
    last_failure_cause: str | None = None

    def to_json(self, task_id: str) -> JSON:
        return {
            "alive": self.alive,
            "consecutiveFailures": self.consecutive_failures,
            "firstSuccess": self.first_success,
            "lastFailure": self.last_failure,
            "lastSuccess": self.last_success,
            "lastFailureCause": self.last_failure_cause,
            "instanceId": _instance_id(task_id),
            "taskId": task_id,
        }


@dataclass
class Task:
    id: str
    app_id: str
    version: str
    ports: list[int]
    service_ports: list[int]
    staged_at: str
    state: str = "TASK_STAGING"
    started_at: str | None = None
    process: asyncio.subprocess.Process | None = None
    health: list[HealthResult] = field(default_factory=list)
    watchers: list[asyncio.Task[None]] = field(default_factory=list)
    killing: bool = False
    forgotten: bool = False
    """The watchdog was told the process group ended."""

    @property
    def healthy(self) -> bool:
        return self.state == "TASK_RUNNING" and all(h.alive for h in self.health)

    @property
    def unhealthy(self) -> bool:
        """Marathon's ``tasksUnhealthy``: some check has a result and it is not alive."""
        return any(h.checked and not h.alive for h in self.health)

    def to_json(self) -> JSON:
        out: JSON = {
            "id": self.id,
            "appId": self.app_id,
            "host": HOST,
            "ipAddresses": [{"ipAddress": HOST, "protocol": "IPv4"}],
            "ports": self.ports,
            "servicePorts": self.service_ports,
            "slaveId": AGENT_ID,
            "region": "local",
            "zone": "a",
            "role": "*",
            "stagedAt": self.staged_at,
            "startedAt": self.started_at,
            "state": self.state,
            "version": self.version,
        }
        checked = [h.to_json(self.id) for h in self.health if h.checked]
        if checked:
            out["healthCheckResults"] = checked
        return out


@dataclass
class AppRecord:
    app: JSON
    versions: dict[str, JSON]
    tasks: dict[str, Task] = field(default_factory=dict)
    last_task_failure: JSON | None = None
    launch_delay: float = 0.0
    """Marathon's current backoff (``RateLimiter.Delay.currentDelay``), 0 when none."""
    launch_delay_until: float = 0.0
    delay_config: str | None = None
    """``lastConfigChangeAt`` the delay belongs to: Marathon keys delays by config version."""
    launching: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever one of the app's tasks changes state or health."""

    def add_delay(self, now: float) -> None:
        """``RateLimiter.addDelay``: backoffSeconds first, then times backoffFactor, capped."""
        app = self.app
        config = app["versionInfo"]["lastConfigChangeAt"]
        cap = float(app["maxLaunchDelaySeconds"])
        if self.delay_config != config or not self.launch_delay:
            delay = min(float(app["backoffSeconds"]), cap)
        else:
            delay = min(self.launch_delay * float(app["backoffFactor"]), cap)
        self.launch_delay = delay
        self.delay_config = config
        self.launch_delay_until = now + delay

    def reset_delay(self) -> None:
        self.launch_delay = 0.0
        self.launch_delay_until = 0.0
        self.delay_config = None


@dataclass
class Deployment:
    id: str
    version: str
    original: dict[str, JSON | None]
    target: dict[str, JSON | None]
    steps: list[list[JSON]]
    current_step: int = 0
    runner: asyncio.Task[None] | None = None

    @functools.cached_property
    def restarts(self) -> frozenset[str]:
        """Apps this deployment replaces the tasks of (``RestartApplication``)."""
        return frozenset(a["app"] for step in self.steps for a in step
                         if a["action"] == "RestartApplication")

    @property
    def affected_apps(self) -> list[str]:
        return sorted(self.target)

    def to_json(self) -> JSON:
        current = self.steps[self.current_step - 1] if self.current_step else []
        return {
            "id": self.id,
            "version": self.version,
            "affectedApps": self.affected_apps,
            "affectedPods": [],
            "steps": [{"actions": actions} for actions in self.steps],
            "currentActions": [{**a, "readinessCheckResults": []} for a in current],
            "currentStep": self.current_step,
            "totalSteps": len(self.steps),
        }

    def plan_json(self) -> JSON:
        return {
            "id": self.id,
            "version": self.version,
            "steps": [{"actions": actions} for actions in self.steps],
            "original": {"apps": [a for a in self.original.values() if a]},
            "target": {"apps": [a for a in self.target.values() if a]},
        }


class Cluster:
    """All state of the dev cluster, mutated only on the event loop."""

    def __init__(self, *, images: catalog.Catalog, state_dir: Path, clock: Callable[[], float]):
        self.images = images
        self.state_dir = state_dir
        self.clock = clock
        self.apps: dict[str, AppRecord] = {}
        self.deployments: dict[str, Deployment] = {}
        self.allocator = serviceports.ServicePortAllocator()
        self.subscribers: list[tuple[asyncio.Queue[bytes], frozenset[str]]] = []
        self._changed = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._save_task: asyncio.Task[None] | None = None
        self._json_cache: dict[str, bytes] = {}
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._start_watchdog()
        self._http = aiohttp.ClientSession()
        self._load()
        self._save_task = asyncio.create_task(self._saver())
        # Marathon resumes the deployments it had stored when a new leader takes over.
        for deployment in self.deployments.values():
            deployment.runner = asyncio.create_task(self._run_deployment(deployment))
        for record in self.apps.values():
            self._converge_soon(record)

    async def stop(self) -> None:
        """Stop every task; running deployments stay stored and resume on the next start."""
        self._stopping = True
        self._write_state(self._snapshot())
        for deployment in list(self.deployments.values()):
            if deployment.runner:
                deployment.runner.cancel()
        kills = [self._kill(r, t) for r in self.apps.values() for t in list(r.tasks.values())]
        await asyncio.gather(*kills, return_exceptions=True)
        if self._save_task:
            self._save_task.cancel()
        self._write_state(self._snapshot())
        if self._http:
            await self._http.close()
        if self._watchdog is not None and self._watchdog.stdin is not None:
            self._watchdog.stdin.close()  # nothing left to kill: it exits
            await asyncio.to_thread(self._watchdog.wait)

    def _start_watchdog(self) -> None:
        # Its own session: a kill of the dev cluster's process group must leave it to clean up.
        self._watchdog = subprocess.Popen(
            [sys.executable, "-m", "reconciler.devcluster.watchdog"],
            stdin=subprocess.PIPE, start_new_session=True,
        )

    def _tell_watchdog(self, line: str) -> None:
        stdin = self._watchdog.stdin if self._watchdog is not None else None
        if stdin is None or stdin.closed:
            return
        with contextlib.suppress(OSError):
            stdin.write(line.encode() + b"\n")
            stdin.flush()

    def _forget_process(self, task: Task) -> None:
        if task.process is not None and not task.forgotten:
            task.forgotten = True
            # Mesos destroys the whole container when a task ends: so do we, with whatever the
            # task's shell left running in its process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(task.process.pid, signal.SIGKILL)
            self._tell_watchdog(f"-{task.process.pid}")

    def _state_file(self) -> Path:
        return self.state_dir / "state.json"

    def _load(self) -> None:
        path = self._state_file()
        if not path.exists():
            return
        data = orjson.loads(path.read_bytes())
        for item in data.get("apps", []):
            app = item["app"]
            self.apps[app["id"]] = AppRecord(app=app, versions=item["versions"])
            self.allocator.reserve(serviceports.service_ports(app))
        for item in data.get("deployments", []):
            deployment = Deployment(id=item["id"], version=item["version"],
                                    original=item["original"], target=item["target"],
                                    steps=item["steps"])
            self.deployments[deployment.id] = deployment

    def _snapshot(self) -> bytes:
        """The state to keep, serialized on the event loop (the only place it changes)."""
        return orjson.dumps({
            "apps": [{"app": r.app, "versions": r.versions} for r in self.apps.values()],
            "deployments": [
                {"id": d.id, "version": d.version, "original": d.original, "target": d.target,
                 "steps": d.steps}
                for d in self.deployments.values()
            ],
        })

    def _write_state(self, data: bytes) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file().with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(self._state_file())

    async def _saver(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            await asyncio.sleep(0.2)  # coalesce bursts of changes into one write
            await asyncio.to_thread(self._write_state, self._snapshot())

    def _touch(self, app_id: str | None = None) -> None:
        if app_id is None:
            self._json_cache.clear()
        else:
            self._json_cache.pop(app_id, None)

    @staticmethod
    def _notify(record: AppRecord) -> None:
        """Wake whatever waits on this app's tasks (only this app's: 10,000 apps may wait)."""
        record.wakeup.set()

    # -- events ------------------------------------------------------------------------------

    def publish(self, event_type: str, **fields: Any) -> None:
        body = {"eventType": event_type, "timestamp": now_iso(), **fields}
        frame = b"event: " + event_type.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"
        for queue, types in self.subscribers:
            if not types or event_type in types:
                queue.put_nowait(frame)

    # -- reads -------------------------------------------------------------------------------

    def app_json(self, record: AppRecord, embed: frozenset[str] = frozenset()) -> JSON:
        app = dict(record.app)
        tasks = list(record.tasks.values())
        app["tasksStaged"] = sum(1 for t in tasks if t.state == "TASK_STAGING")
        app["tasksRunning"] = sum(1 for t in tasks if t.state == "TASK_RUNNING")
        app["tasksHealthy"] = sum(1 for t in tasks if t.health and t.healthy)
        app["tasksUnhealthy"] = sum(1 for t in tasks if t.unhealthy)
        app["deployments"] = [
            {"id": d.id} for d in self.deployments.values() if app["id"] in d.target
        ]
        if "tasks" in embed:
            app["tasks"] = [t.to_json() for t in tasks]
        if "lastTaskFailure" in embed and record.last_task_failure:
            app["lastTaskFailure"] = record.last_task_failure
        return app

    def app_bytes(self, record: AppRecord) -> bytes:
        """Serialized app without embeds, cached: listing 10,000 apps must stay fast."""
        app_id = record.app["id"]
        cached = self._json_cache.get(app_id)
        if cached is None:
            cached = orjson.dumps(self.app_json(record))
            self._json_cache[app_id] = cached
        return cached

    def locking_deployments(self, app_ids: list[str]) -> list[Deployment]:
        return [d for d in self.deployments.values() if any(a in d.target for a in app_ids)]

    # -- changes -----------------------------------------------------------------------------

    def start_deployment(
        self, target: dict[str, JSON | None], *, force: bool, restart: bool = False,
    ) -> Deployment:
        """Start one deployment taking every app in ``target`` to its definition (None: delete).

        Definitions must already be filled with defaults. Raises ``Locked`` when an affected app
        is changed by another deployment and ``force`` is false; with force the other
        deployments are stopped first, as Marathon does. ``restart``: every task of the apps is
        replaced though their definitions stay (``POST /v2/apps/{id}/restart``).
        """
        blocking = self.locking_deployments(list(target))
        if blocking and not force:
            raise Locked(blocking)
        for other in blocking:
            self._stop_deployment(other)
        version = now_iso()
        original: dict[str, JSON | None] = {}
        stored: dict[str, JSON | None] = {}
        for app_id, app in target.items():
            record = self.apps.get(app_id)
            original[app_id] = dict(record.app) if record else None
            if app is None:
                stored[app_id] = None
                continue
            new = dict(app)
            previous = record.app if record else None
            kind = changes.change_kind(previous, new) if previous else "config"
            if restart and previous is not None:
                # VersionInfo.withRestartChange: version and lastConfigChangeAt move.
                new["version"] = version
                new["versionInfo"] = {**previous["versionInfo"], "lastConfigChangeAt": version}
            elif kind == "none" and previous is not None:
                new["version"] = previous["version"]
                new["versionInfo"] = previous["versionInfo"]
            else:
                new["version"] = version
                last_config = (
                    previous["versionInfo"]["lastConfigChangeAt"]
                    if previous is not None and kind == "scale" else version
                )
                new["versionInfo"] = {"lastScalingAt": version, "lastConfigChangeAt": last_config}
            stored[app_id] = new
        steps = self._steps(original, stored)
        if restart:
            steps = [[{"action": "RestartApplication", "app": a} for a in stored]]
        deployment = Deployment(
            id=str(uuid.uuid4()), version=version, original=original, target=stored, steps=steps
        )
        # Apply the definitions at once (Marathon stores the target root group first).
        for app_id, app in stored.items():
            record = self.apps.get(app_id)
            if app is None:
                continue
            if record is None:
                record = AppRecord(app=app, versions={})
                self.apps[app_id] = record
            elif (record.app["versionInfo"]["lastConfigChangeAt"]
                  != app["versionInfo"]["lastConfigChangeAt"]):
                record.reset_delay()  # a new config starts without the old one's backoff
            record.app = app
            record.versions[app["version"]] = app
            self._touch(app_id)
            self._notify(record)  # a superseded deployment's wait for this app must end
        self.deployments[deployment.id] = deployment
        self._changed.set()
        deployment.runner = asyncio.create_task(self._run_deployment(deployment))
        return deployment

    def _steps(
        self, original: dict[str, JSON | None], target: dict[str, JSON | None]
    ) -> list[list[JSON]]:
        actions: list[tuple[str, JSON]] = []
        for app_id in target:
            old, new = original.get(app_id), target[app_id]
            if new is None:
                actions.append((app_id, {"action": "StopApplication", "app": app_id}))
            elif old is None:
                actions.append((app_id, {"action": "StartApplication", "app": app_id}))
            else:
                kind = changes.change_kind(old, new)
                if kind == "config":
                    actions.append((app_id, {"action": "RestartApplication", "app": app_id}))
                elif kind == "scale":
                    actions.append((app_id, {"action": "ScaleApplication", "app": app_id}))
        order = _dependency_order([a for a, _ in actions], target, original)
        by_app = dict(actions)
        steps: list[list[JSON]] = []
        for level in order:
            step = [by_app[a] for a in level if a in by_app]
            if step:
                steps.append(step)
            # Marathon starts a new app with 0 instances, then scales it, level by level, so
            # an app's dependents start only once it runs.
            scales = [{"action": "ScaleApplication", "app": a} for a in level
                      if by_app.get(a, {}).get("action") == "StartApplication"
                      and (target[a] or {}).get("instances", 0) > 0]
            if scales:
                steps.append(scales)
        return steps or [[]]

    async def _run_deployment(self, deployment: Deployment) -> None:
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
            if not self._stopping:  # a dev cluster shutting down keeps it to resume it
                self.publish("deployment_step_failure", plan=deployment.plan_json(),
                             currentStep={"actions": deployment.steps[deployment.current_step - 1]
                                          if deployment.current_step else []})
                self.publish("deployment_failed", id=deployment.id, plan=deployment.plan_json())
            raise
        finally:
            if not self._stopping:
                self._forget_deployment(deployment)
        self.publish("deployment_success", id=deployment.id, plan=deployment.plan_json())

    def _forget_deployment(self, deployment: Deployment) -> None:
        if self.deployments.pop(deployment.id, None) is not None:
            for app_id in deployment.target:
                self._touch(app_id)
            self._changed.set()

    async def _run_action(self, deployment: Deployment, action: JSON) -> None:
        app_id = action["app"]
        kind = action["action"]
        record = self.apps.get(app_id)
        if kind == "StopApplication":
            if record is not None:
                await asyncio.gather(*(self._kill(record, t, )
                                       for t in list(record.tasks.values())))
                self.allocator.release(serviceports.service_ports(record.app))
                del self.apps[app_id]
                self._touch(app_id)
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
    async def _wait(record: AppRecord, predicate: Callable[[], bool]) -> None:
        while True:
            record.wakeup.clear()
            if predicate():
                return
            await record.wakeup.wait()

    async def _scale(self, record: AppRecord) -> None:
        """Start or kill tasks of the current version until ``instances`` run (and are healthy)."""
        app = record.app
        target = int(app["instances"])
        current = [t for t in record.tasks.values() if not t.killing]
        if len(current) > target:
            doomed = _kill_order(current, app.get("killSelection"))
            await asyncio.gather(*(self._kill(record, t, )
                                   for t in doomed[: len(current) - target]))
        self._converge_soon(record)
        # A scale keeps running tasks (of whatever version): all of them count.
        await self._wait(record, lambda: self._ready_count(record, None) >= target
                         or record.app is not app)

    def _ready_count(self, record: AppRecord, version: str | None) -> int:
        """Tasks of ``version`` (any, when None) that are healthy, or running without checks."""
        has_checks = bool(record.app.get("healthChecks"))
        return sum(
            1 for t in record.tasks.values()
            if (version is None or t.version == version) and not t.killing
            and (t.healthy if has_checks else t.state == "TASK_RUNNING")
        )

    async def _replace(self, record: AppRecord) -> None:
        """Marathon's ``TaskReplaceActor``: replace old-version tasks within the upgrade strategy.

        ``minHealthy = ceil(n * minimumHealthCapacity)`` old tasks are kept up front; old tasks
        (until they are gone, dying ones included) plus new ones never exceed
        ``maxCapacity = floor(n * (1 + maximumOverCapacity))``, raised by one when it equals
        ``minHealthy`` so that the upgrade can start at all; each new task that becomes healthy
        (running, without health checks) lets the next old task be killed.
        """
        app = record.app
        version = app["version"]
        n = int(app["instances"])
        strategy = app["upgradeStrategy"]
        running = [t for t in record.tasks.values() if not t.killing]
        old_queue = _kill_order(
            [t for t in running if t.version != version], app.get("killSelection")
        )
        min_healthy = math.ceil(n * float(strategy["minimumHealthCapacity"]))
        max_capacity = math.floor(n * (1 + float(strategy["maximumOverCapacity"])))
        if min_healthy == max_capacity and max_capacity <= len(running):
            max_capacity += 1  # Marathon allows one task of over-capacity to make progress
        for _ in range(max(0, len(running) - min_healthy)):
            if old_queue:
                self._kill_soon(record, old_queue.pop(0))
        credited: set[str] = set()
        while record.app is app:  # else superseded (force) or reverted
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

    def _is_ready(self, record: AppRecord, task: Task) -> bool:
        if record.app.get("healthChecks"):
            return task.healthy
        return task.state == "TASK_RUNNING"

    @staticmethod
    async def _wait_for_change(record: AppRecord, timeout: float = 1.0) -> None:
        record.wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(record.wakeup.wait(), timeout)

    def _converge_soon(self, record: AppRecord) -> None:
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

    # -- tasks -------------------------------------------------------------------------------

    def _launch(self, record: AppRecord) -> None:
        if self._stopping:
            return
        app = record.app
        delay = record.launch_delay_until - self.clock()
        if delay > 0:
            if record.launching == 0:
                record.launching += 1
                asyncio.get_running_loop().call_later(delay, self._delayed_launch, record, app)
            return
        task_id = app["id"].strip("/").replace("/", "_") + "." + str(uuid.uuid4())
        host_ports = self._host_ports(app)
        service_ports = serviceports.service_ports(app)
        task = Task(id=task_id, app_id=app["id"], version=app["version"], ports=host_ports,
                    service_ports=service_ports, staged_at=now_iso())
        task.health = [HealthResult() for _ in app.get("healthChecks") or []]
        record.tasks[task_id] = task
        self._touch(app["id"])
        task.watchers.append(asyncio.create_task(self._start_task(record, task)))

    def _delayed_launch(self, record: AppRecord, app: JSON) -> None:
        record.launching = 0
        if self.apps.get(app["id"]) is record and record.app is app:
            self._converge_soon(record)
            self._notify(record)

    def _host_ports(self, app: JSON) -> list[int]:
        mappings = (app.get("container") or {}).get("portMappings")
        if mappings:
            return [m.get("hostPort") or _free_port() for m in mappings if "hostPort" in m]
        if app.get("requirePorts"):
            return [d["port"] for d in app.get("portDefinitions") or []]
        return [_free_port() for _ in app.get("portDefinitions") or []]

    def _environment(self, app: JSON, task: Task) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()}
        for key, value in (app.get("env") or {}).items():
            if isinstance(value, str):
                env[key] = value
        names = serviceports.port_names(app)
        for i, port in enumerate(task.ports):
            env[f"PORT{i}"] = str(port)
            name = names[i] if i < len(names) else None
            if name:
                env[f"PORT_{name.upper().replace('-', '_')}"] = str(port)
        if task.ports:
            env["PORT"] = str(task.ports[0])
            env["PORTS"] = ",".join(str(p) for p in task.ports)
        env.update({
            "HOST": HOST,
            "MARATHON_APP_ID": app["id"],
            "MARATHON_APP_VERSION": app["version"],
            "MESOS_TASK_ID": task.id,
            "MARATHON_APP_RESOURCE_CPUS": str(app["cpus"]),
            "MARATHON_APP_RESOURCE_MEM": str(app["mem"]),
            "MARATHON_APP_RESOURCE_DISK": str(app["disk"]),
        })
        image = ((app.get("container") or {}).get("docker") or {}).get("image")
        if image:
            env["MARATHON_APP_DOCKER_IMAGE"] = image
        for key, value in (app.get("labels") or {}).items():
            env["MARATHON_APP_LABEL_" + key.upper().replace("-", "_").replace(".", "_")] = value
        return env

    async def _start_task(self, record: AppRecord, task: Task) -> None:
        app = record.app if record.app["version"] == task.version else record.versions[task.version]
        image = ((app.get("container") or {}).get("docker") or {}).get("image")
        try:
            if image:
                command = self.images.command_for(image)
            elif app.get("cmd"):
                command = app["cmd"]
            else:
                command = " ".join(_shell_quote(a) for a in app.get("args") or [])
        except catalog.UnknownImage as e:
            await self._task_ended(record, task, state="TASK_FAILED", message=str(e))
            return
        log_dir = self.state_dir / "sandboxes" / task.id
        if command is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            try:
                with open(log_dir / "stdout", "wb") as out, open(log_dir / "stderr", "wb") as err:
                    task.process = await asyncio.create_subprocess_exec(
                        "/bin/sh", "-c", command, env=self._environment(app, task), cwd=log_dir,
                        stdout=out, stderr=err, start_new_session=True,
                        preexec_fn=_die_with_parent,
                    )
            except OSError as e:
                await self._task_ended(record, task, state="TASK_FAILED", message=str(e))
                return
            self._tell_watchdog(f"+{task.process.pid}")
        task.state = "TASK_RUNNING"
        task.started_at = now_iso()
        self._touch(app["id"])
        self.publish("status_update_event", slaveId=AGENT_ID, taskId=task.id,
                     taskStatus="TASK_RUNNING", message="", appId=app["id"], host=HOST,
                     ports=task.ports, ipAddresses=[{"ipAddress": HOST, "protocol": "IPv4"}],
                     version=task.version)
        self._notify(record)
        for index, check in enumerate(app.get("healthChecks") or []):
            task.watchers.append(asyncio.create_task(self._health_loop(record, task, index, check)))
        if task.process is not None:
            code = await task.process.wait()
            if task.killing:
                return
            await self._task_ended(
                record, task, state="TASK_FINISHED" if code == 0 else "TASK_FAILED",
                message=f"Command exited with status {code}",
            )
        elif not app.get("healthChecks"):
            return

    async def _health_loop(self, record: AppRecord, task: Task, index: int, check: JSON) -> None:
        """Marathon's ``HealthCheckActor`` for one task and one check."""
        result = task.health[index]
        started = self.clock()
        interval = max(float(check.get("intervalSeconds", 60)), 0.1)
        grace = float(check.get("gracePeriodSeconds", 300))
        limit = int(check.get("maxConsecutiveFailures", 3))
        while not task.killing:
            await asyncio.sleep(interval)
            if task.killing:
                return
            ok, cause = await self._check(record, task, check)
            if task.killing:
                return
            stamp = now_iso()
            was_alive, was_checked = result.alive, result.checked
            result.checked = True
            if ok:
                result.alive = True
                result.consecutive_failures = 0
                result.last_success = stamp
                result.first_success = result.first_success or stamp
            elif result.first_success is None and self.clock() - started < grace:
                # Ignored, as Marathon does: nothing but the (empty) result is recorded.
                pass
            else:
                result.alive = False
                result.consecutive_failures += 1
                result.last_failure = stamp
                result.last_failure_cause = cause
                self.publish("failed_health_check_event", appId=task.app_id,
                             instanceId=_instance_id(task.id), taskId=task.id,
                             healthCheck=check)
            if was_alive != result.alive or not was_checked:
                self._touch(task.app_id)
            if was_alive != result.alive:
                self.publish("health_status_changed_event", appId=task.app_id, taskId=task.id,
                             instanceId=_instance_id(task.id), version=task.version,
                             alive=result.alive)
                self._notify(record)
            if not ok and limit > 0 and result.consecutive_failures >= limit:
                reason = f"{limit} consecutive health check failures ({cause})"
                self.publish("unhealthy_instance_kill_event", appId=task.app_id,
                             taskId=task.id, instanceId=_instance_id(task.id),
                             version=task.version, reason=reason, host=HOST,
                             slaveId=AGENT_ID)
                # Mesos reports such a kill as TASK_KILLED: Marathon sets no lastTaskFailure and
                # no launch delay for it (TaskFailure.isFailureState, NotifyRateLimiterStep).
                await self._kill(record, task, message=f"Killed: {reason}", relaunch=True)
                return

    async def _check(self, record: AppRecord, task: Task, check: JSON) -> tuple[bool, str]:
        protocol = check.get("protocol", "HTTP")
        timeout = float(check.get("timeoutSeconds", 20))
        port = check.get("port")
        if port is None and protocol != "COMMAND":
            index = int(check.get("portIndex", 0))
            if index >= len(task.ports):
                return False, f"no port at index {index}"
            port = task.ports[index]
        if task.process is None and protocol != "COMMAND":
            return True, ""  # catalog entry without a process: nothing to probe
        try:
            if protocol in ("HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS"):
                scheme = "https" if protocol.endswith("HTTPS") else "http"
                assert self._http is not None
                async with self._http.get(
                    f"{scheme}://{HOST}:{port}{check.get('path', '/')}", ssl=False,
                    timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False,
                ) as response:
                    if 200 <= response.status < 400:
                        return True, ""
                    return False, f"HTTP status {response.status}"
            if protocol in ("TCP", "MESOS_TCP"):
                _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
                writer.close()
                return True, ""
            command = (check.get("command") or {}).get("value", "false")
            app = record.versions.get(task.version, record.app)
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", command, env=self._environment(app, task),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            code = await asyncio.wait_for(proc.wait(), timeout)
            return code == 0, f"command exited with {code}"
        except TimeoutError:
            return False, f"timed out after {timeout}s"
        except (OSError, aiohttp.ClientError) as e:
            return False, f"{type(e).__name__}: {e}"

    async def _kill(
        self, record: AppRecord, task: Task, *, message: str = "", relaunch: bool = False
    ) -> None:
        """SIGTERM the task's process group, SIGKILL it after 3 s; the task ends TASK_KILLED.

        While it dies the task is listed as ``TASK_KILLING`` and still takes up capacity, as in
        Marathon. ``relaunch``: a replacement is started (a kill that is not a scale-down).
        """
        if self._begin_kill(task):
            await self._finish_kill(record, task, message=message, relaunch=relaunch)

    def _kill_soon(self, record: AppRecord, task: Task) -> None:
        """Start killing ``task`` without waiting for it to die (it still counts until then)."""
        if self._begin_kill(task):
            asyncio.get_running_loop().create_task(self._finish_kill(record, task))

    def _begin_kill(self, task: Task) -> bool:
        if task.killing:
            return False
        task.killing = True
        task.state = "TASK_KILLING"
        self._touch(task.app_id)
        for watcher in task.watchers:
            if watcher is not asyncio.current_task():
                watcher.cancel()
        if task.process is not None and task.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(task.process.pid, signal.SIGTERM)
        return True

    async def _finish_kill(
        self, record: AppRecord, task: Task, *, message: str = "", relaunch: bool = False
    ) -> None:
        process = task.process
        if process is not None and process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), 3)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        await self._task_ended(record, task, state="TASK_KILLED", message=message,
                               relaunch=relaunch)

    async def _task_ended(
        self, record: AppRecord, task: Task, *, state: str, message: str, relaunch: bool = True
    ) -> None:
        record.tasks.pop(task.id, None)
        task.state = state
        task.killing = True
        self._forget_process(task)
        self._touch(task.app_id)
        self.publish("status_update_event", slaveId=AGENT_ID, taskId=task.id,
                     taskStatus=state, message=message, appId=task.app_id, host=HOST,
                     ipAddresses=[{"ipAddress": HOST, "protocol": "IPv4"}],
                     ports=task.ports, version=task.version)
        if state in _FAILURE_STATES:
            record.last_task_failure = {
                "appId": task.app_id, "host": HOST, "message": message, "state": state,
                "taskId": task.id, "timestamp": now_iso(), "version": task.version,
                "slaveId": AGENT_ID,
            }
        if state in _RATE_LIMITED_STATES and record.app["version"] == task.version:
            record.add_delay(self.clock())
        if relaunch and self.apps.get(task.app_id) is record:
            self._converge_soon(record)
        self._notify(record)

    # -- deployments API ---------------------------------------------------------------------

    def _stop_deployment(self, deployment: Deployment) -> None:
        if deployment.runner is not None:
            deployment.runner.cancel()
        self._forget_deployment(deployment)

    def cancel_deployment(self, deployment: Deployment, *, force: bool) -> Deployment | None:
        """Without force: stop it and start a deployment that reverts its change.

        As in Marathon (``DeploymentPlanReverter`` applied through ``updateRoot``), a reverted
        app gets its previous definition under a new ``version``: reverting is a config change.
        """
        self._stop_deployment(deployment)
        if force:
            return None
        return self.start_deployment(dict(deployment.original), force=True)

    def kill_tasks(self, record: AppRecord, task_ids: list[str]) -> list[Task]:
        killed = [record.tasks[t] for t in task_ids if t in record.tasks]
        for task in killed:
            asyncio.get_running_loop().create_task(self._kill_and_replace(record, task))
        return killed

    async def _kill_and_replace(self, record: AppRecord, task: Task) -> None:
        await self._kill(record, task, relaunch=True)


class Locked(Exception):
    def __init__(self, deployments: list[Deployment]) -> None:
        super().__init__("locked")
        self.deployments = deployments


def _dependency_order(
    app_ids: list[str], target: dict[str, JSON | None], original: dict[str, JSON | None]
) -> list[list[str]]:
    """Levels of apps: an app after the apps of this change that it depends on.

    Stops run in reverse: an app is stopped before the apps it depends on.
    """
    def deps(app_id: str) -> set[str]:
        app = target.get(app_id) or original.get(app_id) or {}
        return {d for d in app.get("dependencies") or [] if d in app_ids}

    levels: list[list[str]] = []
    placed: set[str] = set()
    remaining = set(app_ids)
    while remaining:
        level = sorted(a for a in remaining if deps(a) <= placed)
        if not level:  # a cycle: Marathon rejects it; here, just start the rest together
            level = sorted(remaining)
        levels.append(level)
        placed.update(level)
        remaining.difference_update(level)
    stops = [a for a in app_ids if target.get(a) is None]
    if stops:
        stop_levels = [[a for a in level if a in stops] for level in reversed(levels)]
        levels = [[a for a in level if a not in stops] for level in levels]
        levels = [lv for lv in levels if lv] + [lv for lv in stop_levels if lv]
    return levels


def _kill_order(tasks: list[Task], kill_selection: str | None) -> list[Task]:
    """Tasks in the order ``killSelection`` picks them (``YOUNGEST_FIRST`` by default)."""
    return sorted(tasks, key=lambda t: t.staged_at, reverse=kill_selection != "OLDEST_FIRST")


def _shell_quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"
