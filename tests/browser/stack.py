"""The whole thing on-call looks at: a dev cluster, a config repo in Git, ``reconciler run``.

Every part is a real process or a real repository: the dev cluster subprocess, a Git
repository made with GitPython, and the controller started as ``python -m reconciler run``
with the environment it reads in production, on free ports. :meth:`Stack.stop` stops
every child, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import requests

from reconciler.devcluster import launch
from reconciler.shell.ports import free_port
from testbed.processes import stop_process, wait_for_http
from tests.sync import cluster

TOKEN = "oncall-token-4f1c9a7e2b"
PORTAL = "/dirac/web/portal"
CATALOG = "/dirac/datamanagement/filecatalog"
SETTINGS = {
    "managedPrefixes": ["/dirac"],
    "driftPolicy": {"/dirac": "correct", "/dirac/web": "report"},
}


def apps() -> list[dict[str, Any]]:
    """Two small apps: the portal (drift only reported) and the file catalog (corrected)."""
    portal = cluster.fast_app(PORTAL, grace=2,
                              env={"DIRAC_SETUP": "LHCb-Certification",
                                   "DB_PASSWORD": "hunter2-portal-db"})
    return [portal, cluster.fast_app(CATALOG, grace=2)]


@dataclass
class Stack:
    root: Path
    marathon: str
    url: str
    """The controller's base URL (dashboard at ``/``, API at ``/api/v1``)."""
    repo: Path
    token: str
    devcluster: launch.RunningCluster
    controller: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(
        cls, root: Path, *, token: str = TOKEN, poll_interval: float = 1.0,
        desired: list[dict[str, Any]] | None = None, settings: dict[str, Any] | None = None,
        extra_env: dict[str, str] | None = None, public: bool = False,
    ) -> Stack:
        """``public``: the controller's address is its RECONCILER_PUBLIC_URL (sign-on needs
        it for the provider's redirect back)."""
        dev = launch.launch(state_dir=root / "devcluster")
        controller: subprocess.Popen[bytes] | None = None
        try:
            repo = cluster.write_repo(root / "repo", apps() if desired is None else desired,
                                      tag="v8r2p44", settings=settings or SETTINGS)
            repository = git.Repo.init(repo, initial_branch="main")
            with repository.config_writer() as config:
                config.set_value("user", "name", "Alice Release")
                config.set_value("user", "email", "alice@example.org")
            repository.git.add(all=True)
            repository.index.commit("Desired state of the DIRAC services")
            port = free_port()
            env = {**os.environ,
                   "RECONCILER_MARATHON_URL": dev.url,
                   "RECONCILER_REPO_URL": repo.as_uri(),
                   "RECONCILER_REPO_REF": "main",
                   "RECONCILER_REPO_PATH": ".",
                   "RECONCILER_POLL_INTERVAL": str(poll_interval),
                   "RECONCILER_STATE_DIR": str(root / "state"),
                   "RECONCILER_LISTEN": f"127.0.0.1:{port}",
                   "RECONCILER_API_TOKEN": token}
            env.pop("RECONCILER_NOTIFY_WEBHOOK_URL", None)
            if public:
                env["RECONCILER_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
            env.update(extra_env or {})
            log_path = root / "controller.log"
            with open(log_path, "ab") as log:
                controller = subprocess.Popen(
                    [sys.executable, "-m", "reconciler", "run"], env=env, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)
            url = f"http://127.0.0.1:{port}"
            stack = cls(root=root, marathon=dev.url, url=url, repo=repo, token=token,
                        devcluster=dev, controller=controller, log_path=log_path)
            wait_for_http(f"{url}/healthz", timeout=60, process=controller)
            return stack
        except BaseException:
            if controller is not None:
                stop_process(controller)
            dev.stop()
            raise

    def stop(self) -> None:
        try:
            stop_process(self.controller)
        finally:
            self.devcluster.stop()

    def explain(self) -> str:
        """The controller's log, for a failing assertion."""
        with contextlib.suppress(OSError):
            return "controller log:\n" + self.log_path.read_text()[-6000:]
        return "no controller log"

    # -- what the test does to the world -----------------------------------------------------

    def commit(self, message: str, *, author: str, email: str) -> str:
        """Commit every change of the config repo folder, as ``author``; returns the sha."""
        repository = git.Repo(self.repo)
        repository.git.add(all=True)
        actor = git.Actor(author, email)
        return str(repository.index.commit(message, author=actor, committer=actor).hexsha)

    def scale_in_marathon(self, app_id: str, instances: int) -> None:
        """Someone changes the app through Marathon's API, behind Git's back."""
        requests.put(f"{self.marathon}/v2/apps{app_id}", json={"instances": instances},
                     params={"force": "true"}, timeout=10).raise_for_status()

    def live_instances(self, app_id: str) -> int:
        return int(cluster.apps(self.marathon)[app_id]["instances"])

    def api(self, path: str) -> Any:
        """A read of the API with the token (reading may be closed to anonymous people)."""
        request = urllib.request.Request(f"{self.url}/api/v1{path}",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def app_states(self) -> dict[str, str]:
        try:
            return {a["app_id"]: a["state"] for a in self.api("/apps")["apps"]}
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return {}

    def wait_for_states(self, wanted: dict[str, str], *, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = self.app_states()
            if all(states.get(a) == s for a, s in wanted.items()):
                return
            if self.controller.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError(f"apps never reached {wanted}: last {states}\n{self.explain()}")
