"""A config repo of two environments (certification and production folders, each with its own
images.yaml), and a reader of what runs where."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from reconciler.devcluster import launch
from reconciler.shell import config
from reconciler.shell import environments as environing
from testbed.apps import fast_app, live_apps
from testbed.gitrepos import Upstream

HOUR = 3600.0

CERT_APPS = ("/dirac-cert/web/portal", "/dirac-cert/dm/catalog")
PROD_APPS = ("/dirac-prod/web/portal",)


def environment_files(folder: str, *, app_ids: tuple[str, ...], tag: str, prefix: str
                      ) -> dict[str, str]:
    """``folder/images.yaml``, ``folder/reconciler.yaml`` and one file per app under it."""
    files = {f"{folder}/{app_id.strip('/')}.yaml": yaml.safe_dump(fast_app(app_id, grace=2))
             for app_id in app_ids}
    files[f"{folder}/images.yaml"] = images(tag)
    files[f"{folder}/reconciler.yaml"] = yaml.safe_dump({"managedPrefixes": [prefix]})
    return files


def images(tag: str) -> str:
    return ("# the DIRAC image, one tag per environment\n"
            "images:\n  dirac:\n    repository: lhcbdirac\n"
            f"    tag: {tag}   # bumped by releases\n")


def repo_files(*, cert_tag: str, prod_tag: str) -> dict[str, str]:
    return {**environment_files("cert", app_ids=CERT_APPS, tag=cert_tag, prefix="/dirac-cert"),
            **environment_files("prod", app_ids=PROD_APPS, tag=prod_tag, prefix="/dirac-prod")}


def environments(*, cert: Mapping[str, Any] | None = None,
                 prod: Mapping[str, Any] | None = None) -> str:
    """RECONCILER_ENVIRONMENTS: cert, and prod promoted from cert."""
    return json.dumps([{"name": "cert", "path": "cert", **(cert or {})},
                       {"name": "prod", "path": "prod", "promote_from": "cert",
                        **(prod or {})}])


def running_tag(marathon: str, app_id: str) -> str | None:
    """The tag ``app_id`` runs once it is settled (no deployment, every task healthy)."""
    app = live_apps(marathon).get(app_id)
    if app is None or app.get("deployments"):
        return None
    healthy = sum(1 for t in app.get("tasks") or ()
                  if t.get("healthCheckResults") and all(
                      r.get("alive") for r in t["healthCheckResults"]))
    if healthy < app["instances"]:
        return None
    return str(app["container"]["docker"]["image"]).rsplit(":", 1)[1]


class Clock:
    """The promoter's clock: real time plus what the test moves it forward by."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


def fleet_for(root: Path, dev: launch.RunningCluster, upstream: Upstream, *,
              prod: Mapping[str, object] | None = None, clock: Clock,
              extra: Mapping[str, str] | None = None) -> environing.Fleet:
    """Both environments on ``dev``, controllers built in this process (not started)."""
    settings = config.load({
        "RECONCILER_MARATHON_URL": dev.url, "RECONCILER_REPO_URL": upstream.url,
        "RECONCILER_STATE_DIR": str(root / "state"), "RECONCILER_POLL_INTERVAL": "0.5",
        "RECONCILER_DRIFT_INTERVAL": "60", **(extra or {}),
        "RECONCILER_ENVIRONMENTS": environments(prod={"soak": "1h", **(prod or {})})})
    return environing.build(settings, clock=clock)
