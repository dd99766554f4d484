"""Health checks of running tasks: Marathon's ``HealthCheckActor``, one loop per task and check."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from reconciler.devcluster import model, shared

JSON = dict[str, Any]


class HealthChecks(shared.SharedState):
    """Probes tasks (HTTP, TCP, command) and records results, events and kills."""

    async def _health_loop(
        self, record: model.AppRecord, task: model.Task, index: int, check: JSON
    ) -> None:
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
            stamp = self.timestamp()
            was_alive, was_checked = result.alive, result.checked
            was_healthy = task.healthy
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
                # Formats.FailedHealthCheckWrites: taskId holds the instance id.
                self.publish("failed_health_check_event", appId=task.app_id,
                             taskId=model.instance_id(task.id), healthCheck=check)
            if was_alive != result.alive or not was_checked:
                self._touch(task.app_id)
            if was_alive != result.alive:
                self.publish("health_status_changed_event", appId=task.app_id,
                             instanceId=model.instance_id(task.id), version=task.version,
                             alive=result.alive)
            if was_healthy != task.healthy:
                # AppHealthCheckActor: the instance's health over all its checks changed.
                self.publish("instance_health_changed_event",
                             instanceId=model.instance_id(task.id), runSpecId=task.app_id,
                             healthy=task.healthy, runSpecVersion=task.version)
                self._notify(record)
            if not ok and limit > 0 and result.consecutive_failures >= limit:
                # HealthCheckActor.checkConsecutiveFailures: the reason is the last failure's
                # cause, the time that of the last failure.
                reason = f"{limit} consecutive health check failures ({cause})"
                self.publish("unhealthy_instance_kill_event", appId=task.app_id,
                             taskId=task.id, instanceId=model.instance_id(task.id),
                             version=task.version, reason=cause, host=model.HOST,
                             slaveId=model.AGENT_ID, timestamp=result.last_failure)
                # Mesos reports such a kill as TASK_KILLED: Marathon sets no lastTaskFailure and
                # no launch delay for it (TaskFailure.isFailureState, NotifyRateLimiterStep).
                await self._kill(record, task, message=f"Killed: {reason}", relaunch=True)
                return

    async def _check(
        self, record: model.AppRecord, task: model.Task, check: JSON
    ) -> tuple[bool, str]:
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
                    f"{scheme}://{model.HOST}:{port}{check.get('path', '/')}", ssl=False,
                    timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False,
                ) as response:
                    if 200 <= response.status < 400:
                        return True, ""
                    return False, f"HTTP status {response.status}"
            if protocol in ("TCP", "MESOS_TCP"):
                connecting = asyncio.open_connection(model.HOST, port)
                _, writer = await asyncio.wait_for(connecting, timeout)
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
