"""The running dev cluster's objects: apps with their tasks, health results, deployments.

Each knows its Marathon JSON; none does I/O. Time comes in as arguments (``now``), except
:func:`now_iso`, the wall-clock stamp Marathon puts on versions and events.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


HOST = "127.0.0.1"
AGENT_ID = "devcluster-agent-0"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def timestamp_text(text: str) -> str:
    """``text`` as Marathon's ``Timestamp.toString`` prints it (UTC, milliseconds), when it
    parses; else as given."""
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def instance_id(task_id: str) -> str:
    """Marathon 1.8+: task ``<instance>._app.<incarnation>`` belongs to ``<instance>``."""
    return task_id.rsplit("._app.", 1)[0]


class InvalidTaskId(ValueError):
    """Not a task id of any shape ``Task.Id.parse`` knows (its ``MatchError``: 400)."""


_TASK_ID_SHAPES = (
    re.compile(r"^(?P<app>.+)[._](?P<prefix>instance-|marathon-)(?P<uuid>[^._]+)"
               r"\.[^.]+(?:\.\d+)?$"),
    re.compile(r"^(?P<app>.+)[._](?P<uuid>[^._]+)(?:\.\d+)?$"),
)


def parse_task_id(text: str) -> str:
    """The instance id of a task id, as ``Task.Id.parse`` reads it (``instance-``/``marathon-``
    ids with a container and incarnation, legacy ``app.uuid[.n]``). Raises
    :class:`InvalidTaskId`, or ``ValueError("Invalid UUID string: ...")`` (422) when the shape
    holds but the UUID does not."""
    for shape in _TASK_ID_SHAPES:
        match = shape.match(text)
        if match is not None:
            break
    else:
        raise InvalidTaskId(
            f"Invalid task id '{text}'. [taskId {text} no valid identifier "
            "(of class java.lang.String)]")
    try:
        uuid.UUID(match["uuid"])
    except ValueError:
        raise ValueError(f"Invalid UUID string: {match['uuid']}") from None
    prefix = match.groupdict().get("prefix") or "marathon-"
    return f"{match['app']}.{prefix}{match['uuid']}"


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
            "instanceId": instance_id(task_id),
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
    scheduled: list[tuple[str, int, str]] = field(default_factory=list)
    """Instances to relaunch (id, last incarnation, version): their task ended, they did not."""
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
    cancel_reason: str = "The upgrade has been cancelled"

    @functools.cached_property
    def restarts(self) -> frozenset[str]:
        """Apps this deployment replaces the tasks of (``RestartApplication``)."""
        return frozenset(a["app"] for step in self.steps for a in step
                         if a["action"] == "RestartApplication")

    @functools.cached_property
    def affected(self) -> frozenset[str]:
        """Apps with an action: only they are locked and listed (``affectedRunSpecIds``)."""
        return frozenset(a["app"] for step in self.steps for a in step)

    @property
    def affected_apps(self) -> list[str]:
        return sorted(self.affected)

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
        """The plan in events: RAML ``DeploymentPlan`` (``DeploymentPlanConversion``)."""
        return {
            "id": self.id,
            "steps": [{"actions": actions} for actions in self.steps],
            "version": self.version,
        }


LOCKED_MESSAGE = (
    "App is locked by one or more deployments. Override with the option '?force=true'. "
    "View details at '/v2/deployments/<DEPLOYMENT_ID>'."
)
"""``AppLockedException``'s fixed text: the placeholder is sent as is."""
CANCELLED_MESSAGE = "The upgrade has been cancelled"
"""``DeploymentCanceledException``: the reason of a stopped deployment's ``deployment_failed``."""


class Locked(Exception):
    def __init__(self, deployments: list[Deployment]) -> None:
        super().__init__(LOCKED_MESSAGE)
        self.deployments = deployments


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def task_stats(tasks: list[Task], *, version_info: JSON, now: str) -> JSON:
    """``tasksStats`` (``TaskStatsByVersion``): counts and life times of all tasks, of those
    started after the last scaling, and of those with the latest or an outdated config; a
    group without tasks is left out. Life time: seconds since ``startedAt``, mean and the
    middle element (``TaskLifeTime``)."""
    def stats(group: list[Task]) -> JSON:
        counts = {"staged": sum(1 for t in group if t.state == "TASK_STAGING"),
                  "running": sum(1 for t in group if t.state == "TASK_RUNNING"),
                  "healthy": sum(1 for t in group if t.health and t.healthy),
                  "unhealthy": sum(1 for t in group if t.unhealthy)}
        out: JSON = {"counts": counts}
        lives = sorted((_parse(now) - _parse(t.started_at)).total_seconds()
                       for t in group if t.started_at)
        if lives:
            out["lifeTime"] = {"averageSeconds": sum(lives) / len(lives),
                               "medianSeconds": lives[len(lives) // 2]}
        return {"stats": out}

    groups = {
        "startedAfterLastScaling": [t for t in tasks
                                    if t.version >= version_info["lastScalingAt"]],
        "withLatestConfig": [t for t in tasks if t.version >= version_info["lastConfigChangeAt"]],
        "withOutdatedConfig": [t for t in tasks
                               if t.version < version_info["lastConfigChangeAt"]],
        "totalSummary": tasks,
    }
    return {name: stats(group) for name, group in groups.items() if group}
