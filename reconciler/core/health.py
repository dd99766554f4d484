"""Health assessment: what one live Marathon app says about itself, as one status word.

Pure: the input is the live app JSON as ``GET /v2/apps?embed=apps.tasks&embed=apps.deployments
&embed=apps.lastTaskFailure`` returns it (plus, optionally, the deployment objects of
``GET /v2/deployments`` for the step a deployment is in); the output is an :class:`AppHealth`
in a closed, ordered vocabulary (:class:`HealthStatus`), as gitops-engine's ``health`` does.

Rules, in order:

- no live app: ``Missing``;
- a deployment runs for the app: ``Degraded`` when a task of the current config already
  failed (``lastTaskFailure`` newer than ``versionInfo.lastConfigChangeAt``), else
  ``Progressing``;
- ``instances`` is 0: ``Suspended``;
- at least ``instances`` healthy tasks of the current config: ``Healthy``;
- otherwise ``Degraded`` if a task of the current config failed or a task fails its health
  checks, ``Progressing`` if tasks are still starting, ``Degraded`` if nothing is happening.

A task is healthy when it is ``TASK_RUNNING`` and, if the app has health checks, it has health
results and all are ``alive`` (Marathon's own ``tasksHealthy`` rule). A task belongs to the
current config when its ``version`` is not older than ``versionInfo.lastConfigChangeAt``: a
scale-only change gives the app a new ``version`` but keeps its running tasks current.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core import model


class HealthStatus(enum.StrEnum):
    """Ordered from best to worst; :func:`worst` picks the most alarming of several."""

    HEALTHY = "Healthy"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    UNKNOWN = "Unknown"
    """Marathon could not be read (never returned by :func:`assess`, which has live)."""
    MISSING = "Missing"
    DEGRADED = "Degraded"


_ORDER = {status: rank for rank, status in enumerate(HealthStatus)}


def worst(statuses: Iterable[HealthStatus]) -> HealthStatus:
    """The most alarming status of ``statuses`` (``Healthy`` for none)."""
    return max(statuses, key=_ORDER.__getitem__, default=HealthStatus.HEALTHY)


@dataclass(frozen=True)
class DeploymentStep:
    """Where a running deployment is: step ``current`` of ``total`` and what it does there."""

    deployment_id: str
    current: int
    total: int
    actions: tuple[str, ...]
    """Marathon's action names for this app in the current step, e.g. ``RestartApplication``."""

    def __str__(self) -> str:
        actions = ", ".join(self.actions) or "waiting"
        return f"step {self.current}/{self.total} ({actions})"


@dataclass(frozen=True, slots=True)
class AppHealth:
    app_id: model.AppId
    status: HealthStatus
    target: int
    """``instances`` of the live app (0 when missing)."""
    healthy: int
    """Healthy tasks of the current config."""
    running: int
    """Running tasks of any version (old ones still count for capacity during an upgrade)."""
    staged: int
    version: str | None
    deployment_ids: tuple[str, ...]
    step: DeploymentStep | None
    failure: str | None
    """Marathon's ``lastTaskFailure`` message when it concerns the current config, else the
    ``lastFailureCause`` of a current task's failing health check."""

    @property
    def summary(self) -> str:
        text = f"{self.status} {self.healthy}/{self.target} healthy"
        if self.step is not None:
            text += f", {self.step}"
        if self.failure:
            text += f", last failure: {self.failure}"
        return text


def assess(
    app_id: model.AppId,
    live: Mapping[str, Any] | None,
    *,
    deployments: Iterable[Mapping[str, Any]] = (),
) -> AppHealth:
    """Assess one app. ``deployments`` are ``/v2/deployments`` objects (any app; filtered here)."""
    if live is None:
        return AppHealth(app_id=app_id, status=HealthStatus.MISSING, target=0, healthy=0,
                         running=0, staged=0, version=None, deployment_ids=(), step=None,
                         failure=None)
    target = int(live.get("instances", 1))
    config_version = _config_version(live)
    has_checks = bool(live.get("healthChecks"))
    tasks = [t for t in live.get("tasks") or () if isinstance(t, Mapping)]
    running = sum(1 for t in tasks if t.get("state", "TASK_RUNNING") == "TASK_RUNNING")
    staged = sum(1 for t in tasks if t.get("state") in _STARTING_STATES)
    healthy = sum(
        1 for t in tasks
        if _is_current(t, config_version) and _is_healthy(t, has_checks=has_checks)
    )
    unhealthy = sum(
        1 for t in tasks
        if any(r.get("alive") is False for r in t.get("healthCheckResults") or ())
    )
    failure = _current_failure(live.get("lastTaskFailure"), config_version) or _check_failure(
        [t for t in tasks if _is_current(t, config_version)])
    own_deployments = [d for d in deployments if app_id in (d.get("affectedApps") or ())]
    deployment_ids = tuple(
        dict.fromkeys(
            [str(d["id"]) for d in live.get("deployments") or () if "id" in d]
            + [str(d["id"]) for d in own_deployments if "id" in d]
        )
    )
    step = _step(app_id, own_deployments)

    if deployment_ids:
        status = HealthStatus.DEGRADED if failure else HealthStatus.PROGRESSING
    elif target == 0:
        status = HealthStatus.SUSPENDED
    elif healthy >= target:
        status = HealthStatus.HEALTHY
    elif failure or unhealthy:
        status = HealthStatus.DEGRADED
    elif staged or running > healthy:
        status = HealthStatus.PROGRESSING
    else:
        status = HealthStatus.DEGRADED
    return AppHealth(app_id=app_id, status=status, target=target, healthy=healthy,
                     running=running, staged=staged, version=live.get("version"),
                     deployment_ids=deployment_ids, step=step, failure=failure)


_STARTING_STATES = frozenset({"TASK_STAGING", "TASK_STARTING", "TASK_STAGED"})


def _config_version(live: Mapping[str, Any]) -> str | None:
    info = live.get("versionInfo") or {}
    value = info.get("lastConfigChangeAt") or live.get("version")
    return str(value) if value is not None else None


def _is_current(task: Mapping[str, Any], config_version: str | None) -> bool:
    # Marathon writes every timestamp as ISO 8601 UTC with milliseconds and a Z, so string
    # order is time order.
    version = task.get("version")
    return config_version is None or version is None or str(version) >= config_version


def _is_healthy(task: Mapping[str, Any], *, has_checks: bool) -> bool:
    if task.get("state", "TASK_RUNNING") != "TASK_RUNNING":
        return False
    if not has_checks:
        return True
    results = task.get("healthCheckResults") or ()
    return bool(results) and all(r.get("alive") is True for r in results)


def _current_failure(failure: Any, config_version: str | None) -> str | None:
    if not isinstance(failure, Mapping):
        return None
    version = failure.get("version")
    if config_version is not None and version is not None and str(version) < config_version:
        return None
    message = str(failure.get("message") or "").strip()
    state = failure.get("state")
    if state and message:
        return f"{state}: {message}"
    return message or (str(state) if state else None)


def _check_failure(tasks: list[Mapping[str, Any]]) -> str | None:
    """Why current tasks fail their health checks, before Marathon kills any of them."""
    for task in tasks:
        for result in task.get("healthCheckResults") or ():
            if result.get("alive") is False:
                cause = result.get("lastFailureCause") or "no successful health check yet"
                return f"health check failing: {cause}"
    return None


def _step(app_id: model.AppId, deployments: list[Mapping[str, Any]]) -> DeploymentStep | None:
    if not deployments:
        return None
    deployment = deployments[0]
    actions = tuple(
        str(a.get("action"))
        for a in deployment.get("currentActions") or ()
        if a.get("app") == app_id and a.get("action")
    )
    return DeploymentStep(deployment_id=str(deployment.get("id")),
                          current=int(deployment.get("currentStep") or 0),
                          total=int(deployment.get("totalSteps") or 0), actions=actions)
