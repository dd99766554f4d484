"""deploy/reconciler.marathon.json: reconciler itself as a Marathon app.

Checked three ways: what it must promise (one instance, never two at once, health on
/healthz at the port the image listens on, no secret in it, state on a persistent volume),
`reconciler validate` on a config repo holding it, and Marathon's own rules (the dev
cluster's 422 checks) when it is POSTed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from reconciler.devcluster import launch
from reconciler.shell import config

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFINITION = REPO_ROOT / "deploy" / "reconciler.marathon.json"
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|CREDENTIAL|(^|_)KEY($|_)", re.IGNORECASE)


def definition() -> dict[str, Any]:
    app: dict[str, Any] = json.loads(DEFINITION.read_text())
    return app


def test_it_is_a_singleton_that_never_runs_twice_during_an_upgrade() -> None:
    app = definition()
    assert app["instances"] == 1
    assert app["upgradeStrategy"] == {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}


def test_marathon_checks_health_on_healthz_at_the_port_the_image_listens_on() -> None:
    app = definition()
    exposed = re.search(r"^EXPOSE (\d+)$", (REPO_ROOT / "Dockerfile").read_text(), re.M)
    assert exposed is not None
    (mapping,) = app["container"]["portMappings"]
    assert mapping["containerPort"] == int(exposed.group(1))
    assert app["env"]["RECONCILER_LISTEN"].rsplit(":", 1)[1] == exposed.group(1)
    (check,) = app["healthChecks"]
    assert check["path"] == "/healthz" and check["portIndex"] == 0
    (ready,) = app["readinessChecks"]
    assert ready["path"] == "/readyz" and ready["portName"] == mapping["name"]


def test_no_secret_is_written_in_it_only_paths_to_files_the_host_mounts() -> None:
    app = definition()
    secret_names = [name for name in app["env"] if SECRET_NAME.search(name)]
    assert secret_names, "the definition should show where credentials come from"
    for name in secret_names:
        assert name.endswith("_FILE"), f"{name} holds a secret value in the definition"
        value = app["env"][name]
        mounted = [v["containerPath"] for v in app["container"]["volumes"]
                   if v.get("mode") == "RO" and "hostPath" in v]
        assert any(value.startswith(path + "/") for path in mounted), (name, value)


def test_its_environment_is_a_working_configuration_with_webhooks_and_ssh(
        tmp_path: Path) -> None:
    """The files the host mounts, stood in by temporary ones: the controller accepts the
    settings, webhooks are enabled and the config repo is read over SSH with its host key
    checked."""
    env = dict(definition()["env"])
    for name, value in env.items():
        if value.startswith("/etc/reconciler/"):
            stand_in = tmp_path / value.removeprefix("/etc/reconciler/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text(f"value of {name}\n")
            env[name] = str(stand_in)
    settings = config.load(env)
    assert settings.webhook_secret == "value of RECONCILER_WEBHOOK_SECRET_FILE"
    assert settings.api_token == "value of RECONCILER_API_TOKEN_FILE"
    assert settings.git_ssh_key_file == tmp_path / "ssh" / "id_ed25519"
    assert settings.git_known_hosts_file == tmp_path / "ssh" / "known_hosts"
    assert settings.public_url and not settings.embedded_marathon


def test_the_state_directory_lives_on_a_persistent_volume() -> None:
    app = definition()
    volumes = app["container"]["volumes"]
    persistent = {v["containerPath"] for v in volumes if "persistent" in v}
    state_dir = app["env"]["RECONCILER_STATE_DIR"]
    (state,) = [v for v in volumes if v["containerPath"] == state_dir]
    assert state["hostPath"] in persistent and state["mode"] == "RW"
    assert app["unreachableStrategy"] == "disabled"


def config_repo_with_it(root: Path) -> Path:
    (root / "infra").mkdir(parents=True)
    shutil.copy(DEFINITION, root / "infra" / "reconciler.json")
    (root / "reconciler.yaml").write_text("managedPrefixes: [/infra]\n")
    return root


def test_reconciler_validate_accepts_it_in_a_config_repo(tmp_path: Path) -> None:
    root = config_repo_with_it(tmp_path / "repo")
    result = subprocess.run([sys.executable, "-m", "reconciler", "validate", str(root)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_marathon_accepts_it(devcluster: launch.RunningCluster) -> None:
    app = definition()
    created = requests.post(f"{devcluster.url}/v2/apps", json=app, timeout=30)
    assert created.status_code == 201, created.text
    live = requests.get(f"{devcluster.url}/v2/apps{app['id']}", timeout=30).json()["app"]
    assert live["upgradeStrategy"] == app["upgradeStrategy"]
    assert live["healthChecks"][0]["path"] == "/healthz"
    assert live["env"] == app["env"]


@pytest.mark.integration
def test_marathon_would_refuse_it_with_a_broken_upgrade_strategy(
    devcluster: launch.RunningCluster,
) -> None:
    """The check above can fail: the dev cluster applies Marathon's rules."""
    app = {**definition(), "upgradeStrategy": {"minimumHealthCapacity": 2,
                                               "maximumOverCapacity": 0}}
    refused = requests.post(f"{devcluster.url}/v2/apps", json=app, timeout=30)
    assert refused.status_code == 422, refused.text
