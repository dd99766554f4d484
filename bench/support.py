"""What the benchmarks need besides the package: a served Git repository, child processes.

The dev cluster is started with the package's launcher (``reconciler.devcluster.launch``);
this module holds only what is bench scaffolding, so ``bench/`` never imports ``tests/``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import requests

from reconciler.shell import ports


def wait_for_http(url: str, *, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until ``url`` answers any HTTP status below 500, or ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@dataclass
class Upstream:
    """A bare repository (what the controller follows) and a working clone to commit from."""

    bare: Path
    work: Path

    @classmethod
    def create(cls, root: Path, files: Mapping[str, str], *, message: str) -> Upstream:
        bare = root / "upstream.git"
        git.Repo.init(bare, bare=True, initial_branch="main")
        work = root / "work"
        repo = git.Repo.clone_from(bare.as_uri(), work)
        with repo.config_writer() as config:
            config.set_value("user", "name", "Bench Release")
            config.set_value("user", "email", "bench@example.org")
        repo.git.checkout("-b", "main")
        upstream = cls(bare=bare, work=work)
        upstream.commit(files, message=message)
        return upstream

    def commit(self, files: Mapping[str, str], *, message: str) -> str:
        """Write files, commit and push to ``main``; returns the new sha."""
        repo = git.Repo(self.work)
        for relative, text in files.items():
            path = self.work / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        repo.git.add(all=True)
        sha = repo.index.commit(message).hexsha
        repo.git.push("origin", "HEAD:refs/heads/main")
        return str(sha)


class ServedGit:
    """``git daemon`` exporting every repository under ``base`` (``git://``)."""

    def __init__(self, base: Path, log: Path) -> None:
        self.base = base
        self.log = log
        self.url = f"git://127.0.0.1:{ports.free_port()}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServedGit:
        port = self.url.rsplit(":", 1)[1]
        with open(self.log, "ab") as out:
            self._process = subprocess.Popen(
                ["git", "daemon", "--reuseaddr", "--export-all", "--verbose",
                 "--informative-errors", f"--base-path={self.base}", "--listen=127.0.0.1",
                 f"--port={port}", str(self.base)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while "Ready to rumble" not in self.log.read_text(errors="replace"):
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.stop()
                raise RuntimeError(f"git daemon did not start: {self.log.read_text()}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None


def fast_app(app_id: str, *, instances: int = 1, grace: int = 5) -> dict[str, Any]:
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
        "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
        "backoffSeconds": 1,
    }


def live_apps(marathon_url: str) -> dict[str, dict[str, Any]]:
    """Marathon's apps by id, with their tasks and deployments."""
    response = requests.get(f"{marathon_url}/v2/apps",
                            params={"embed": ["apps.tasks", "apps.deployments"]}, timeout=10)
    response.raise_for_status()
    return {app["id"]: app for app in response.json()["apps"]}
