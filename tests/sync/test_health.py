"""Health assessment of one live app from Marathon's JSON."""

from __future__ import annotations

from typing import Any

from reconciler.core import health

CONFIG = "2026-01-01T10:00:00.000Z"
OLD = "2025-12-31T10:00:00.000Z"


def _task(version: str = CONFIG, *, alive: bool | None = True,
          state: str = "TASK_RUNNING") -> dict[str, Any]:
    task: dict[str, Any] = {"id": "t", "state": state, "version": version}
    if alive is not None:
        task["healthCheckResults"] = [{"alive": alive, "consecutiveFailures": 0}]
    return task


def _app(tasks: list[dict[str, Any]], *, instances: int = 2, checks: bool = True,
         **extra: Any) -> dict[str, Any]:
    return {"id": "/a", "instances": instances, "version": CONFIG,
            "versionInfo": {"lastConfigChangeAt": CONFIG},
            "healthChecks": [{"protocol": "HTTP"}] if checks else [],
            "tasks": tasks, "deployments": [], **extra}


def test_missing_app() -> None:
    assessed = health.assess("/a", None)
    assert assessed.status is health.HealthStatus.MISSING
    assert (assessed.healthy, assessed.target) == (0, 0)


def test_all_current_tasks_healthy() -> None:
    assessed = health.assess("/a", _app([_task(), _task()]))
    assert assessed.status is health.HealthStatus.HEALTHY
    assert (assessed.healthy, assessed.target) == (2, 2)


def test_old_version_tasks_do_not_count_as_healthy_for_the_new_config() -> None:
    assessed = health.assess("/a", _app([_task(), _task(OLD)]))
    assert assessed.healthy == 1
    assert assessed.running == 2
    assert assessed.status is health.HealthStatus.PROGRESSING


def test_without_health_checks_running_means_healthy() -> None:
    assessed = health.assess("/a", _app([_task(alive=None)], instances=1, checks=False))
    assert assessed.status is health.HealthStatus.HEALTHY


def test_running_deployment_is_progressing_with_its_step() -> None:
    deployment = {"id": "d1", "affectedApps": ["/a"], "currentStep": 1, "totalSteps": 2,
                  "currentActions": [{"action": "RestartApplication", "app": "/a"}]}
    app = _app([_task(OLD), _task(OLD)], deployments=[{"id": "d1"}])
    assessed = health.assess("/a", app, deployments=[deployment, {"id": "x",
                                                                   "affectedApps": ["/b"]}])
    assert assessed.status is health.HealthStatus.PROGRESSING
    assert assessed.deployment_ids == ("d1",)
    assert str(assessed.step) == "step 1/2 (RestartApplication)"


def test_failure_of_the_current_config_during_a_deployment_is_degraded() -> None:
    failure = {"message": "health check failed", "state": "TASK_KILLED", "version": CONFIG}
    app = _app([_task(OLD), _task(OLD)], deployments=[{"id": "d1"}], lastTaskFailure=failure)
    assessed = health.assess("/a", app)
    assert assessed.status is health.HealthStatus.DEGRADED
    assert assessed.failure == "TASK_KILLED: health check failed"


def test_failure_of_an_older_config_is_ignored() -> None:
    failure = {"message": "old crash", "state": "TASK_FAILED", "version": OLD}
    assessed = health.assess("/a", _app([_task(), _task()], lastTaskFailure=failure))
    assert assessed.status is health.HealthStatus.HEALTHY
    assert assessed.failure is None


def test_scaled_to_zero_is_suspended_and_too_few_healthy_is_degraded() -> None:
    assert health.assess("/a", _app([], instances=0)).status is health.HealthStatus.SUSPENDED
    unhealthy = health.assess("/a", _app([_task(alive=False), _task()]))
    assert unhealthy.status is health.HealthStatus.DEGRADED


def test_worst_status_orders_the_vocabulary() -> None:
    statuses = [health.HealthStatus.HEALTHY, health.HealthStatus.DEGRADED,
                health.HealthStatus.PROGRESSING]
    assert health.worst(statuses) is health.HealthStatus.DEGRADED
    assert health.worst([]) is health.HealthStatus.HEALTHY


def test_failing_health_check_cause_explains_a_task_not_yet_killed() -> None:
    task = _task()
    task["healthCheckResults"] = [{"alive": False, "consecutiveFailures": 2,
                                   "lastFailureCause": "Connection refused"}]
    app = _app([task, _task(OLD)], deployments=[{"id": "d1"}])
    assessed = health.assess("/a", app)
    assert assessed.failure == "health check failing: Connection refused"
    assert assessed.status is health.HealthStatus.DEGRADED
