"""``kill -9`` of ``reconciler run`` at random points of rolling upgrades, then a restart.

Each round commits a new tag for three apps (two instances each, one task replaced at a
time), waits a random time (seeded), SIGKILLs the controller and starts it again. The dev
cluster answers app PUTs a second late (``DEVCLUSTER_ANSWER_DELAY_PUT``), so many kills land
while a write is in flight. Every round must converge; at the end the dev cluster's own
versions count the deployments (one per app and round, no duplicate) and the records must
hold every change (no run left without an outcome, the last revision applied everywhere).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from reconciler.devcluster import faults, launch
from reconciler.shell import records
from reconciler.shell.ports import free_port
from testbed.gitrepos import Upstream
from testbed.processes import stop_process, wait_for_http
from tests.reliability import tally
from tests.sync import cluster

pytestmark = pytest.mark.integration

APPS = [f"/dirac/chaos/app{i}" for i in range(3)]
ROUNDS = tally.pick(2, 20)


def files(tag: str) -> dict[str, str]:
    found = {a.strip("/") + ".yaml": yaml.safe_dump(
        cluster.fast_app(a, instances=2, over=0.0, grace=1)) for a in APPS}
    found["images.yaml"] = yaml.safe_dump(
        {"images": {"dirac": {"repository": "lhcbdirac", "tag": tag}}})
    return found


def start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "reconciler", "run"],
                                   env={**env, "RECONCILER_LISTEN": f"127.0.0.1:{port}"},
                                   stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=cluster.REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/healthz", timeout=60, process=process)
    return process, url


def converged(marathon: str, tag: str) -> bool:
    live = cluster.apps(marathon)
    return all(a in live and cluster.image_of(live[a]) == f"lhcbdirac:{tag}"
               and not live[a].get("deployments")
               and cluster.healthy_tasks(live[a]) == 2 for a in APPS)


def wait_converged(marathon: str, tag: str, log: Path, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if converged(marathon, tag):
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


def wait_recorded(state: Path, head: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = records.open_store(state)
        try:
            runs = store.runs()
            if runs and runs[0].revision == head and runs[0].outcome is not None:
                return
        finally:
            store.close()
        time.sleep(0.2)


def test_kill_9_during_rolling_upgrades_converges_without_duplicates_or_lost_records(
        tmp_path: Path) -> None:
    rng = random.Random(20261129)
    dev = launch.launch(state_dir=tmp_path / "devcluster", env={faults.ENV: "1"})
    upstream = Upstream.create(tmp_path / "git", files("v0"), message="v0")
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items()
           if k not in ("RECONCILER_NOTIFY_WEBHOOK_URL", "RECONCILER_SENTRY_DSN")}
    env.update({"RECONCILER_MARATHON_URL": dev.url, "RECONCILER_REPO_URL": upstream.url,
                "RECONCILER_REPO_REF": "main", "RECONCILER_STATE_DIR": str(state),
                "RECONCILER_POLL_INTERVAL": "1", "RECONCILER_DRIFT_INTERVAL": "3600"})
    log = tmp_path / "controller.log"
    process, _ = start(env, log)
    survived = 0
    try:
        assert wait_converged(dev.url, "v0", log), log.read_text()[-3000:]
        for round_ in range(1, ROUNDS + 1):
            tag = f"v{round_}"
            head = upstream.commit(files(tag), message=tag)
            time.sleep(rng.uniform(0.5, 4.0))
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            process, _ = start(env, log)
            survived += wait_converged(dev.url, tag, log)
        final_tag = f"v{ROUNDS}"
        assert converged(dev.url, final_tag), log.read_text()[-3000:]
        # Marathon can be done before the run that did it has written its outcome; a stop in
        # that moment is one more crash, which only a next start would recover. The records
        # are read below once the controller says it is done (or after a minute, and then
        # they count as lost).
        wait_recorded(state, head)
    finally:
        stop_process(process)
        dev_url = dev.url
    try:
        duplicates = sum(max(0, len(cluster.versions(dev_url, a)) - (ROUNDS + 1))
                         for a in APPS)
    finally:
        dev.stop()
    store = records.open_store(state)
    try:
        applied = store.last_applied()
        runs = store.runs()
        head = runs[0].revision
        behind = {a: applied[a].revision if a in applied else None for a in APPS
                  if a not in applied or applied[a].revision != head}
        open_runs = [(r.run_id, r.revision) for r in runs if r.outcome is None]
        lost = len(behind) + len(open_runs)
    finally:
        store.close()
    tally.record(tally.Row(case="kill -9 of reconciler run mid-upgrade (3 apps)",
                           tried=ROUNDS, survived=survived, records_lost=lost,
                           duplicate_deployments=duplicates))
    assert survived == ROUNDS
    assert duplicates == 0
    assert lost == 0, (f"head {head}; apps behind it: {behind}; runs without an outcome: "
                       f"{open_runs}; log: {log.read_text()[-4000:]}")
