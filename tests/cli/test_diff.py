"""``reconciler diff``: the installed command against a real Marathon-compatible server.

The integration tests sync the example repo into the dev cluster (plain HTTP, as any client
would), wait for Marathon's deployments to finish, and expect ``diff --exit-code`` to find
nothing: a freshly synced cluster must show no difference at all. The others serve a
Marathon-shaped ``GET /v2/apps`` from a local HTTP server.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from reconciler.core import load as loading
from reconciler.devcluster import launch
from reconciler.shell import directory
from reconciler.shell.ports import free_port
from tests.core import repo


def run_diff(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", "diff", *args],
                          capture_output=True, text=True, timeout=120, check=False, env=env)


def bump_tag(root: Path, tag: str) -> None:
    images = root / "images.yaml"
    images.write_text(images.read_text().replace("tag: v8r2p44", f"tag: {tag}"))


def sync(url: str, root: Path) -> None:
    """POST every desired app, then wait until Marathon has no deployment left."""
    files, revision = directory.read_directory(root)
    desired = loading.load_desired_state(files, revision=revision)
    for app in desired.apps.values():
        response = requests.post(f"{url}/v2/apps", json=app.definition, timeout=30)
        assert response.status_code == 201, response.text
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        deployments = requests.get(f"{url}/v2/deployments", timeout=10).json()
        if not deployments:
            return
        time.sleep(0.5)
    pytest.fail(f"deployments still running after 90s: {deployments}")


@pytest.mark.integration
def test_a_freshly_synced_dev_cluster_shows_no_changes(
    devcluster: launch.RunningCluster, tmp_path: Path,
) -> None:
    root = repo.copy_example(tmp_path / "repo")
    sync(devcluster.url, root)
    result = run_diff("--marathon", devcluster.url, "--exit-code", str(root))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes" in result.stdout


@pytest.mark.integration
def test_a_tag_bump_shows_exactly_the_image_change_on_every_app(
        devcluster: launch.RunningCluster, tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    sync(devcluster.url, root)
    bump_tag(root, "v8r2p45")
    result = run_diff("--marathon", devcluster.url, "--output", "json", "--exit-code",
                      str(root))
    assert result.returncode == 2, result.stderr
    data = json.loads(result.stdout)
    assert len(data["apps"]) == 7
    for app in data["apps"]:
        assert app["action"] == "update", app
        assert app["patch"] == [{"op": "replace", "path": "/container/docker/image",
                                 "value": "lhcbdirac:v8r2p45"}]
        assert app["changes"] == [{"path": "/container/docker/image",
                                   "old": "lhcbdirac:v8r2p44", "new": "lhcbdirac:v8r2p45"}]


# --- against a local server that answers GET /v2/apps like Marathon -------------------


@pytest.fixture
def fake_marathon() -> Iterator[dict[str, Any]]:
    """A real HTTP server whose GET /v2/apps serves ``state["apps"]``."""
    state: dict[str, Any] = {"apps": [], "requests": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["requests"].append(self.path)
            body = json.dumps({"apps": state["apps"]}).encode()
            if not self.path.startswith("/v2/apps"):
                body, status = b'{"message": "not found"}', 404
            else:
                status = 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_an_empty_marathon_shows_every_app_to_create(fake_marathon: dict[str, Any],
                                                     tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    result = run_diff("--marathon", fake_marathon["url"], "--exit-code", str(root))
    assert result.returncode == 2, result.stderr
    assert "Plan: 7 to create, 0 to update, 0 to scale, 0 to delete, 0 unchanged." in (
        result.stdout)
    assert "+ /dirac-cert/web/portal (create)" in result.stdout
    assert len(fake_marathon["requests"]) == 1  # live is read with one request


def test_without_exit_code_changes_still_exit_zero(fake_marathon: dict[str, Any],
                                                   tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    result = run_diff("--marathon", fake_marathon["url"], str(root))
    assert result.returncode == 0, result.stderr


def test_the_url_may_come_from_the_environment(fake_marathon: dict[str, Any],
                                               tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    env = {**os.environ, "RECONCILER_MARATHON_URL": fake_marathon["url"]}
    result = run_diff("--output", "json", str(root), env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["counts"]["create"] == 7


def test_secrets_are_masked_in_text_and_json(fake_marathon: dict[str, Any],
                                             tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    portal = root / "dirac-cert/web/portal.yaml"
    portal.write_text(portal.read_text().replace(
        "  DIRAC_COMPONENT: WebApp\n",
        "  DIRAC_COMPONENT: WebApp\n  PORTAL_DB_PASSWORD: hunter2-new\n"))
    files, revision = directory.read_directory(root)
    desired = loading.load_desired_state(files, revision=revision)
    live = dict(desired.apps["/dirac-cert/web/portal"].definition)
    live["env"] = {**live["env"], "PORTAL_DB_PASSWORD": "hunter2-old"}
    fake_marathon["apps"] = [live]
    for output in ("text", "json"):
        result = run_diff("--marathon", fake_marathon["url"], "--output", output, str(root))
        assert result.returncode == 0, result.stderr
        assert "hunter2" not in result.stdout + result.stderr
        assert "***" in result.stdout


def test_full_shows_whole_values_and_unchanged_apps_and_yaml_is_the_json_plan(
        fake_marathon: dict[str, Any], tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    files, revision = directory.read_directory(root)
    desired = loading.load_desired_state(files, revision=revision)
    long_value = "x" * 300
    live = [dict(app.definition) for app in desired.apps.values()]
    portal = next(a for a in live if a["id"] == "/dirac-cert/web/portal")
    portal["cmd"] = long_value
    fake_marathon["apps"] = live
    short = run_diff("--marathon", fake_marathon["url"], str(root))
    assert long_value not in short.stdout and "..." in short.stdout
    assert "(unchanged)" not in short.stdout
    full = run_diff("--marathon", fake_marathon["url"], "--full", str(root))
    assert full.returncode == 0, full.stderr
    assert long_value in full.stdout
    assert "  /dirac-cert/web/webapp (unchanged)" in full.stdout or "(unchanged)" in full.stdout
    as_yaml = run_diff("--marathon", fake_marathon["url"], "--output", "yaml", str(root))
    as_json = run_diff("--marathon", fake_marathon["url"], "--output", "json", str(root))
    assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout)


def test_an_invalid_repo_is_an_error_without_a_plan(fake_marathon: dict[str, Any],
                                                    tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    (root / "dirac-cert/web/portal.yaml").write_text("mem: [\n")
    result = run_diff("--marathon", fake_marathon["url"], "--exit-code", str(root))
    assert result.returncode == 1
    assert "dirac-cert/web/portal.yaml:" in result.stderr
    assert "Plan:" not in result.stdout
    assert fake_marathon["requests"] == []


def test_an_unreachable_marathon_is_an_error(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    result = run_diff("--marathon", f"http://127.0.0.1:{free_port()}", "--exit-code",
                      str(root))
    assert result.returncode == 1
    assert "cannot read live apps" in result.stderr


@pytest.mark.parametrize("arguments", [
    ["diff", "--exit-code", "--bogus"],
    ["sync", "--parallel", "0", "--marathon", "http://127.0.0.1:9"],
])
def test_a_usage_error_exits_1_never_a_code_that_means_changes_or_failed(
        arguments: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "reconciler", *arguments],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Error:" in result.stderr
