"""The one-command default: ``reconciler run`` with no Marathon and no repo configured starts
the dev cluster as its child and applies the bundled ``desired-state/``; ``reconciler
status`` then finds that cluster through the state dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from reconciler.core import load as loading
from reconciler.shell import config, directory
from reconciler.shell.ports import free_port
from testbed.processes import stop_process, wait_for_http
from tests.sync import cluster

pytestmark = pytest.mark.integration


def test_run_with_defaults_applies_the_bundled_repo_on_an_embedded_cluster(
        tmp_path: Path) -> None:
    files, revision = directory.read_directory(config.BUNDLED_DESIRED_STATE)
    bundled = loading.load_desired_state(files, revision=revision)
    port = free_port()
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(RECONCILER_STATE_DIR=str(state), RECONCILER_LISTEN=f"127.0.0.1:{port}")
    log = tmp_path / "controller.log"
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "reconciler", "run"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=tmp_path)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60, process=process)
        deadline = time.monotonic() + 120
        synced = None
        while time.monotonic() < deadline and process.poll() is None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status") as response:
                synced = json.load(response)["revision"]
            if synced:
                break
            time.sleep(0.2)
        assert synced == revision, log.read_text()[-4000:]

        url_file = state / "devcluster" / "url"
        assert url_file.is_file(), "the embedded cluster's URL is kept for the other commands"
        live = cluster.apps(url_file.read_text().strip())
        assert set(bundled.apps) <= set(live)

        status = subprocess.run(
            [sys.executable, "-m", "reconciler", "status", "--state-dir", str(state),
             "--output", "json"], capture_output=True, text=True, timeout=60,
            env={k: v for k, v in env.items() if k != "RECONCILER_STATE_DIR"})
        assert status.returncode == 0, status.stderr
        rows = {row["app_id"]: row for row in json.loads(status.stdout)}
        assert set(rows) == set(bundled.apps)
        assert {row["revision"] for row in rows.values()} == {revision}
    finally:
        stop_process(process)
    # The controller stops its dev cluster on the way out, and says so by removing the URL.
    assert not (state / "devcluster" / "url").exists()
