"""Replicas of ``reconciler run`` as real child processes sharing ZooKeeper and PostgreSQL.

Each replica listens on its own free port, is named by it (``RECONCILER_ADVERTISE_URL``) and
logs to its own file; :func:`leader` asks every live replica's ``/api/v1/status`` who leads.
Used by the leader-election tests and ``bench/failover.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from reconciler.shell.ports import free_port
from testbed.processes import stop_process, wait_for_http

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Replica:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def status(self) -> dict[str, Any] | None:
        try:
            answer = requests.get(f"{self.url}/api/v1/status", timeout=2)
            found: dict[str, Any] = answer.json()
            return found
        except (requests.RequestException, ValueError):
            return None

    def role(self) -> str | None:
        status = self.status()
        return None if status is None else (status.get("leadership") or {}).get("role")

    def kill(self) -> None:
        """``kill -9`` of the replica (its process group)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process)


def start(name: str, env: Mapping[str, str], folder: Path) -> Replica:
    """A replica with ``env`` (RECONCILER_* settings) on a free port, with its own state
    folder (its Git clone: records are shared, local disk never); waits for ``/healthz``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "run"],
            env={**env, "RECONCILER_LISTEN": f"127.0.0.1:{port}",
                 "RECONCILER_ADVERTISE_URL": url,
                 "RECONCILER_STATE_DIR": str(folder / f"{name}-state")},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO_ROOT)
    replica = Replica(name=name, url=url, process=process, log=log)
    try:
        wait_for_http(f"{url}/healthz", timeout=60, process=process)
    except BaseException:
        stop_process(process)
        raise
    return replica


def base_env(*, marathon: str, repo: str, database: str, zookeeper: str,
             session_timeout: float = 9.0, marathon_timeout: float = 1.0) -> dict[str, str]:
    """The environment of every replica: one Marathon, one repo, shared records and election."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update({
        "RECONCILER_MARATHON_URL": marathon, "RECONCILER_REPO_URL": repo,
        "RECONCILER_REPO_REF": "main",
        "RECONCILER_DATABASE_URL": database, "RECONCILER_ZK_URL": zookeeper,
        "RECONCILER_ZK_SESSION_TIMEOUT": str(session_timeout),
        "RECONCILER_MARATHON_TIMEOUT": str(marathon_timeout),
        "RECONCILER_POLL_INTERVAL": "1", "RECONCILER_DRIFT_INTERVAL": "3600"})
    return env


def leader(replicas: Sequence[Replica]) -> Replica | None:
    """The live replica that says it leads, if exactly one does."""
    leading = [r for r in replicas if r.alive and r.role() == "leader"]
    return leading[0] if len(leading) == 1 else None


def wait_for_leader(replicas: Sequence[Replica], *, timeout: float = 60.0) -> Replica | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = leader(replicas)
        if found is not None:
            return found
        time.sleep(0.1)
    return None


def writer_overlaps(writes: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the dev cluster's record of writers shows against "one writer at a time": a write
    without a term, two replicas in one term, or a write of a term still in flight (not yet
    answered) when the first write of a later term arrived."""
    problems = []
    replica_of: dict[int, str] = {}
    for write in writes:
        if not write.get("term") or not write.get("replica"):
            problems.append(f"{write['method']} {write['path']}: no replica or term")
            continue
        term = int(write["term"])
        if replica_of.setdefault(term, write["replica"]) != write["replica"]:
            problems.append(f"term {term}: written by {replica_of[term]} and "
                            f"{write['replica']}")
    firsts: dict[int, float] = {}
    for write in writes:
        if write.get("term"):
            term = int(write["term"])
            firsts[term] = min(firsts.get(term, write["received"]), write["received"])
    for write in writes:
        if not write.get("term"):
            continue
        for later, began in firsts.items():
            if later > int(write["term"]) and write["answered"] > began:
                problems.append(f"{write['method']} {write['path']} of term {write['term']} "
                                f"by {write['replica']} still in flight when term {later} "
                                f"began")
    return problems
