"""``reconciler run`` as a subprocess against a dev cluster subprocess and a bare Git repo."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
import yaml

from reconciler.devcluster import launch
from reconciler.shell.ports import free_port
from testbed.counting_proxy import CountingProxy
from testbed.gitrepos import ServedGit, Upstream
from testbed.processes import stop_process, wait_for_http
from tests.sync import cluster

T = TypeVar("T")
SECRET = "hook-secret-7c1e"
TOKEN = "api-token-93ab"
CATALOG = "/dirac/datamanagement/filecatalog"
PORTAL = "/dirac/web/portal"
SETTINGS = {"managedPrefixes": ["/dirac"],
            "driftPolicy": {"/dirac": "correct", "/dirac/web": "report"}}


def repo_files(*, tag: str, instances: int = 1) -> dict[str, str]:
    apps = [cluster.fast_app(CATALOG, instances=instances, grace=2),
            cluster.fast_app(PORTAL, grace=2)]
    files = {app["id"].strip("/") + ".yaml": yaml.safe_dump(app) for app in apps}
    files["images.yaml"] = yaml.safe_dump(
        {"images": {"dirac": {"repository": "lhcbdirac", "tag": tag}}})
    files["reconciler.yaml"] = yaml.safe_dump(SETTINGS)
    return files


@dataclass
class Controller:
    url: str
    marathon: str
    upstream: Upstream
    process: subprocess.Popen[bytes]
    log: Path
    dev: launch.RunningCluster
    git: ServedGit | None = None
    """The ``git daemon`` serving the repo, when the controller reads it over ``git://``."""
    proxy: CountingProxy | None = None
    """Between the controller and the dev cluster, counting its requests (``via_proxy``)."""

    def restart_marathon(self) -> None:
        """Start the dev cluster again on its port, with its state (apps, deployments)."""
        self.dev = launch.launch(state_dir=self.dev.state_dir, port=self.dev.port)

    def explain(self) -> str:
        with contextlib.suppress(OSError):
            return "controller log (tail):\n" + self.log.read_text()[-5000:]
        return "no controller log"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as response:
            return json.load(response)

    def live(self) -> dict[str, dict[str, Any]]:
        return cluster.apps(self.marathon)

    def wait(self, what: str, probe: Callable[[], T | None], *, timeout: float = 60) -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                found = probe()
            except (requests.RequestException, OSError, KeyError, ValueError):
                found = None
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"never: {what}\n{self.explain()}")

    def image_of(self, app_id: str) -> str | None:
        app = self.live().get(app_id)
        return cluster.image_of(app) if app else None

    def settled(self, app_id: str) -> bool:
        app = self.live()[app_id]
        return not app.get("deployments") and cluster.healthy_tasks(app) == app["instances"]


@contextmanager
def running(root: Path, *, poll_interval: float, drift_interval: float = 60,
            extra_env: Mapping[str, str] | None = None,
            serve_git: bool = False, via_proxy: bool = False,
            files: Mapping[str, str] | None = None) -> Iterator[Controller]:
    """Dev cluster, bare repo with two apps, and ``reconciler run``; all stopped afterwards.

    ``serve_git``: the controller reads the repo from ``git daemon`` (``git://``), which the
    test may stop and start; otherwise through a file URL. ``via_proxy``: the controller
    reaches Marathon through a :class:`CountingProxy` (``controller.proxy``). ``files``: the
    repo's first commit, instead of :func:`repo_files`.
    """
    dev = launch.launch(state_dir=root / "devcluster")
    process = None
    controller: Controller | None = None
    served: ServedGit | None = None
    proxy = CountingProxy(dev.url).start() if via_proxy else None
    try:
        upstream = Upstream.create(root / "git", files or repo_files(tag="v8r2p44"),
                                   message="Desired state of the DIRAC services")
        repo_url = upstream.url
        if serve_git:
            served = ServedGit(upstream.bare.parent, root / "git-daemon.log").start()
            repo_url = f"{served.url}/{upstream.bare.name}"
        port = free_port()
        env = {**os.environ,
               "RECONCILER_MARATHON_URL": proxy.url if proxy else dev.url,
               "RECONCILER_REPO_URL": repo_url,
               "RECONCILER_REPO_REF": "main", "RECONCILER_STATE_DIR": str(root / "state"),
               "RECONCILER_LISTEN": f"127.0.0.1:{port}",
               "RECONCILER_POLL_INTERVAL": str(poll_interval),
               "RECONCILER_DRIFT_INTERVAL": str(drift_interval),
               "RECONCILER_WEBHOOK_SECRET": SECRET, "RECONCILER_API_TOKEN": TOKEN}
        for name in ("RECONCILER_NOTIFY_WEBHOOK_URL", "RECONCILER_SENTRY_DSN"):
            env.pop(name, None)
        env.update(extra_env or {})  # after the pops: a test may set a notification receiver
        log = root / "controller.log"
        with open(log, "ab") as out:
            process = subprocess.Popen([sys.executable, "-m", "reconciler", "run"], env=env,
                                       stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True, cwd=root)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", timeout=60, process=process)
        controller = Controller(url=url, marathon=dev.url, upstream=upstream, process=process,
                                log=log, dev=dev, git=served, proxy=proxy)
        yield controller
    finally:
        if process is not None:
            stop_process(process)
        if served is not None:
            served.stop()
        if proxy is not None:
            proxy.stop()
        (controller.dev if controller is not None else dev).stop()
