"""Tasks are real processes with Marathon's environment; state and shutdown behave."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import requests

from reconciler.devcluster import launch
from tests.devcluster.helpers import app, deployments, docker_app, no_deployments, wait_until


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_tasks_run_with_marathons_environment(
    devcluster: launch.RunningCluster, tmp_path: Path,
) -> None:
    out = tmp_path / "env"
    definition = {
        "id": "/dirac/envdump",
        "cmd": f"env > {out}.$MESOS_TASK_ID && sleep 600",
        "env": {"DIRAC_SETUP": "LHCb-Certification"},
        "labels": {"team": "lhcb"},
        "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0}],
    }
    requests.post(f"{devcluster.url}/v2/apps", json=definition, timeout=5)
    task = wait_until(lambda: app(devcluster.url, "/dirac/envdump", "tasks")["tasks"])[0]
    env_file = Path(f"{out}.{task['id']}")
    wait_until(env_file.exists)
    env = dict(line.split("=", 1) for line in
               wait_until(lambda: env_file.read_text()).splitlines() if "=" in line)
    assert env["MARATHON_APP_ID"] == "/dirac/envdump"
    assert env["MESOS_TASK_ID"] == task["id"]
    assert env["MARATHON_APP_VERSION"] == task["version"]
    assert env["PORT0"] == str(task["ports"][0]) and env["PORT1"] == str(task["ports"][1])
    assert env["PORTS"] == ",".join(str(p) for p in task["ports"])
    assert env["PORT_HTTP"] == env["PORT0"]
    assert env["HOST"] and env["DIRAC_SETUP"] == "LHCb-Certification"
    assert env["MARATHON_APP_LABEL_TEAM"] == "lhcb"


def test_an_exiting_task_is_reported_and_relaunched(devcluster: launch.RunningCluster) -> None:
    requests.post(f"{devcluster.url}/v2/apps", json={"id": "/crash", "cmd": "exit 3",
                                                     "backoffSeconds": 1}, timeout=5)
    failure = wait_until(
        lambda: app(devcluster.url, "/crash", "lastTaskFailure").get("lastTaskFailure"))
    assert failure["state"] == "TASK_FAILED" and "3" in failure["message"]
    first = failure["taskId"]
    wait_until(lambda: app(devcluster.url, "/crash", "lastTaskFailure")
               ["lastTaskFailure"]["taskId"] != first, timeout=20)


def _pids_with(marker: str) -> list[int]:
    """Processes whose command line holds ``marker`` (unique per test: parallel-safe)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline and _pid_alive(int(proc.name)):
                pids.append(int(proc.name))
    return pids


def _sleeper(marker: str) -> str:
    return f"{sys.executable} -c 'import time; time.sleep(600)' {marker}"


def test_state_survives_a_restart_and_sigterm_stops_every_task(tmp_path: Path) -> None:
    state = tmp_path / "state"
    marker = f"keep-{tmp_path.name}"
    cluster = launch.launch(state_dir=state)
    try:
        requests.post(f"{cluster.url}/v2/apps", json={
            "id": "/keep", "cmd": _sleeper(marker), "instances": 2}, timeout=5)
        wait_until(lambda: app(cluster.url, "/keep")["tasksRunning"] == 2)
        wait_until(lambda: no_deployments(cluster.url))
        before = app(cluster.url, "/keep")
        pids = wait_until(lambda: len(found := _pids_with(marker)) >= 2 and found)
    finally:
        cluster.stop()
    assert not any(_pid_alive(p) for p in pids), "tasks outlived the dev cluster"
    restarted = launch.launch(state_dir=state, port=cluster.port)
    try:
        after = app(restarted.url, "/keep")
        assert after["version"] == before["version"]
        assert after["portDefinitions"] == before["portDefinitions"]
        wait_until(lambda: app(restarted.url, "/keep")["tasksRunning"] == 2)
    finally:
        restarted.stop()
    assert not _pids_with(marker)


def test_sigkill_of_the_dev_cluster_still_kills_every_task_process(tmp_path: Path) -> None:
    marker = f"orphan-{tmp_path.name}"
    cluster = launch.launch(state_dir=tmp_path / "state")
    try:
        # The shell starts two grandchildren: PR_SET_PDEATHSIG alone would miss them.
        requests.post(f"{cluster.url}/v2/apps", json={
            "id": "/orphans", "cmd": f"{_sleeper(marker)} & {_sleeper(marker)}; wait"},
            timeout=5)
        wait_until(lambda: len(_pids_with(marker)) >= 3)  # the shell and its two children
        cluster.process.kill()  # SIGKILL to the dev cluster alone, not to its process group
        cluster.process.wait()
        wait_until(lambda: not _pids_with(marker), timeout=10)
    finally:
        cluster.stop()


def test_a_running_deployment_survives_a_restart_and_resumes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cluster = launch.launch(state_dir=state)
    try:
        requests.post(f"{cluster.url}/v2/apps", json=docker_app(
            "/stuck", image="lhcbdirac:v1-broken"), timeout=5)
        (stuck,) = wait_until(lambda: deployments(cluster.url))
    finally:
        cluster.stop()
    restarted = launch.launch(state_dir=state, port=cluster.port)
    try:
        (resumed,) = deployments(restarted.url)
        assert resumed["id"] == stuck["id"] and resumed["affectedApps"] == ["/stuck"]
        # Resumed, not merely listed: its tasks are launched again.
        wait_until(lambda: app(restarted.url, "/stuck")["tasksRunning"] == 1)
        revert = requests.delete(f"{restarted.url}/v2/deployments/{stuck['id']}", timeout=5)
        assert revert.status_code == 200
        wait_until(lambda: no_deployments(restarted.url))
        # Reverting a create removes the app.
        assert requests.get(f"{restarted.url}/v2/apps/stuck", timeout=5).status_code == 404
    finally:
        restarted.stop()
