"""Small apps for the dev cluster, quick to deploy and to judge healthy, and reading them back."""

from __future__ import annotations

from typing import Any

import requests


def fast_app(app_id: str, *, instances: int = 1, minimum: float = 1.0, over: float = 1.0,
             grace: int = 5, **extra: Any) -> dict[str, Any]:
    """A small app on the ``dirac`` image, with health checks that decide in seconds."""
    return {
        "id": app_id,
        "instances": instances,
        "cpus": 0.01,
        "mem": 32,
        "container": {"type": "DOCKER", "docker": {"image": "dirac"}},
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
                          "gracePeriodSeconds": grace, "intervalSeconds": 1,
                          "timeoutSeconds": 1, "maxConsecutiveFailures": 3}],
        "upgradeStrategy": {"minimumHealthCapacity": minimum, "maximumOverCapacity": over},
        "backoffSeconds": 1,
        **extra,
    }


def live_apps(marathon: str) -> dict[str, dict[str, Any]]:
    """Marathon's apps by id, with their tasks and deployments."""
    response = requests.get(f"{marathon}/v2/apps",
                            params={"embed": ["apps.tasks", "apps.deployments"]}, timeout=10)
    response.raise_for_status()
    return {app["id"]: app for app in response.json()["apps"]}
