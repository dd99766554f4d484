"""Tasks as local processes: launch, environment, kill, and what Marathon records when one ends.

Each task is ``/bin/sh -c <command>`` in its own process group and sandbox folder; a watchdog
(``watchdog.py``) kills the groups left if the dev cluster itself dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import uuid
from typing import Any

from reconciler.devcluster import catalog, model, serviceports, shared

JSON = dict[str, Any]


_FAILURE_STATES = frozenset({"TASK_FAILED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED"})
"""States that set ``lastTaskFailure`` (Marathon's ``TaskFailure.isFailureState``)."""
_RATE_LIMITED_STATES = frozenset({"TASK_FAILED", "TASK_ERROR", "TASK_DROPPED", "TASK_FINISHED"})
"""States that grow the launch backoff (Marathon's ``NotifyRateLimiterStep.limitWorthy``)."""
_CONDITIONS = {"TASK_KILLED": "Killed", "TASK_FAILED": "Failed", "TASK_FINISHED": "Finished",
               "TASK_ERROR": "Error", "TASK_LOST": "Unknown", "TASK_DROPPED": "Dropped"}
"""``core/condition/Condition.scala``: the condition a terminal Mesos state gives an instance."""
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the dev cluster dies, even by kill -9."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    """A host port for a task, free now: Mesos would offer one from the agent's range."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((model.HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class TaskProcesses(shared.SharedState):
    """Starts, watches and kills the processes of tasks."""

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

    def _forget_process(self, task: model.Task) -> None:
        if task.process is not None and not task.forgotten:
            task.forgotten = True
            # Mesos destroys the whole container when a task ends: so do we, with whatever the
            # task's shell left running in its process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(task.process.pid, signal.SIGKILL)
            self._tell_watchdog(f"-{task.process.pid}")

    def _launch(self, record: model.AppRecord) -> None:
        if self._stopping:
            return
        app = record.app
        delay = record.launch_delay_until - self.clock()
        if delay > 0:
            if record.launching == 0:
                record.launching += 1
                asyncio.get_running_loop().call_later(delay, self._delayed_launch, record, app)
            return
        # Instance.Id.forRunSpec (time-based UUID) and Task.Id: <instance>._app.<incarnation>.
        # An instance whose task ended while it should run is relaunched, same instance, next
        # incarnation (Instance.isScheduled, Task.Id.nextIncarnationFor).
        incarnation = 1
        instance = app["id"].strip("/").replace("/", "_") + ".instance-" + str(uuid.uuid1())
        while record.scheduled:
            old_instance, old_incarnation, old_version = record.scheduled.pop(0)
            if old_version == app["version"]:
                instance, incarnation = old_instance, old_incarnation + 1
                break
        task_id = f"{instance}._app.{incarnation}"
        host_ports = self._host_ports(app)
        service_ports = serviceports.service_ports(app)
        task = model.Task(id=task_id, app_id=app["id"], version=app["version"], ports=host_ports,
                    service_ports=service_ports, staged_at=self.timestamp())
        task.health = [model.HealthResult() for _ in app.get("healthChecks") or []]
        record.tasks[task_id] = task
        self._touch(app["id"])
        self._status_update(task, "TASK_STAGING")
        self._instance_changed(task, "Staging")
        task.watchers.append(asyncio.create_task(self._start_task(record, task)))

    def _delayed_launch(self, record: model.AppRecord, app: JSON) -> None:
        record.launching = 0
        if self.apps.get(app["id"]) is record and record.app["version"] == app["version"]:
            self._converge_soon(record)
            self._notify(record)

    def _host_ports(self, app: JSON) -> list[int]:
        mappings = (app.get("container") or {}).get("portMappings")
        if mappings:
            return [m.get("hostPort") or _free_port() for m in mappings if "hostPort" in m]
        if app.get("requirePorts"):
            return [d["port"] for d in app.get("portDefinitions") or []]
        return [_free_port() for _ in app.get("portDefinitions") or []]

    def _environment(self, app: JSON, task: model.Task) -> dict[str, str]:
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
            "HOST": model.HOST,
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

    async def _start_task(self, record: model.AppRecord, task: model.Task) -> None:
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
        self._status_update(task, "TASK_STARTING")
        self._instance_changed(task, "Starting")
        task.state = "TASK_RUNNING"
        task.started_at = self.timestamp()
        self._touch(app["id"])
        self._status_update(task, "TASK_RUNNING")
        self._instance_changed(task, "Running")
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

    async def _kill(
        self, record: model.AppRecord, task: model.Task, *, message: str = "",
        relaunch: bool = False,
    ) -> None:
        """SIGTERM the task's process group, SIGKILL it after 3 s; the task ends TASK_KILLED.

        While it dies the task is listed as ``TASK_KILLING`` and still takes up capacity, as in
        Marathon. ``relaunch``: a replacement is started (a kill that is not a scale-down).
        """
        if self._begin_kill(task):
            await self._finish_kill(record, task, message=message, relaunch=relaunch)

    def _kill_soon(self, record: model.AppRecord, task: model.Task) -> None:
        """Start killing ``task`` without waiting for it to die (it still counts until then)."""
        if self._begin_kill(task):
            asyncio.get_running_loop().create_task(self._finish_kill(record, task))

    def _begin_kill(self, task: model.Task) -> bool:
        if task.killing:
            return False
        task.killing = True
        task.state = "TASK_KILLING"
        self._touch(task.app_id)
        self._status_update(task, "TASK_KILLING")
        self._instance_changed(task, "Killing")
        for watcher in task.watchers:
            if watcher is not asyncio.current_task():
                watcher.cancel()
        if task.process is not None and task.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(task.process.pid, signal.SIGTERM)
        return True

    async def _finish_kill(
        self, record: model.AppRecord, task: model.Task, *, message: str = "",
        relaunch: bool = False,
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
        self, record: model.AppRecord, task: model.Task, *, state: str, message: str,
        relaunch: bool = True,
    ) -> None:
        record.tasks.pop(task.id, None)
        task.state = state
        task.killing = True
        self._forget_process(task)
        self._touch(task.app_id)
        self._status_update(task, state, message=message)
        self._instance_changed(task, _CONDITIONS.get(state, "Unknown"))
        if state in _FAILURE_STATES:
            record.last_task_failure = {
                "appId": task.app_id, "host": model.HOST, "message": message, "state": state,
                "taskId": task.id, "timestamp": self.timestamp(), "version": task.version,
                "slaveId": model.AGENT_ID,
            }
        if state in _RATE_LIMITED_STATES and record.app["version"] == task.version:
            record.add_delay(self.clock())
        if relaunch and self.apps.get(task.app_id) is record:
            if task.version == record.app["version"]:
                incarnation = int(task.id.rsplit(".", 1)[1])
                record.scheduled.append((model.instance_id(task.id), incarnation, task.version))
            self._converge_soon(record)
        self._notify(record)

    def _status_update(self, task: model.Task, state: str, *, message: str = "") -> None:
        """A Mesos status update (``InstanceChangedEventsGenerator``: before the instance's)."""
        self.publish("status_update_event", slaveId=model.AGENT_ID, taskId=task.id,
                     taskStatus=state, message=message, appId=task.app_id, host=model.HOST,
                     ipAddresses=[{"ipAddress": model.HOST, "protocol": "IPv4"}],
                     ports=task.ports, version=task.version)

    def _instance_changed(self, task: model.Task, condition: str) -> None:
        """``InstanceChangedEventsGenerator``: an instance's condition changed."""
        self.publish("instance_changed_event", instanceId=model.instance_id(task.id),
                     condition=condition, runSpecId=task.app_id, agentId=model.AGENT_ID,
                     host=model.HOST, runSpecVersion=task.version)

    def kill_tasks(self, record: model.AppRecord, task_ids: list[str]) -> list[model.Task]:
        killed = [record.tasks[t] for t in task_ids if t in record.tasks]
        for task in killed:
            asyncio.get_running_loop().create_task(self._kill_and_replace(record, task))
        return killed

    async def _kill_and_replace(self, record: model.AppRecord, task: model.Task) -> None:
        await self._kill(record, task, relaunch=True)


def _shell_quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"
