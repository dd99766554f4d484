"""deploy/reconciler-ha.marathon.json: two replicas on ZooKeeper and PostgreSQL, no local state.

Checked for what it must promise (two instances on different agents, replaced one at a time,
no persistent volume, records in PostgreSQL, leader election in ZooKeeper with a session
timeout the fence accepts, every credential from a host file), and against Marathon's rules
(the dev cluster's 422 checks) when it is POSTed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from reconciler.devcluster import launch
from reconciler.shell import config, leadership

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFINITION = REPO_ROOT / "deploy" / "reconciler-ha.marathon.json"
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|CREDENTIAL|AUTH|(^|_)KEY($|_)|DATABASE_URL",
                         re.IGNORECASE)


def definition() -> dict[str, Any]:
    app: dict[str, Any] = json.loads(DEFINITION.read_text())
    return app


def test_two_replicas_on_different_agents_replaced_one_at_a_time() -> None:
    app = definition()
    assert app["instances"] == 2
    assert ["hostname", "UNIQUE"] in app["constraints"]
    # One replica is always up while Marathon rolls the app; leadership moves by election.
    assert app["upgradeStrategy"] == {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}


def test_no_local_state_records_in_postgresql_election_in_zookeeper() -> None:
    app = definition()
    assert not any("persistent" in v or v.get("mode") == "RW"
                   for v in app["container"]["volumes"])
    assert app["env"]["RECONCILER_ZK_URL"].startswith("zk://")
    assert "RECONCILER_DATABASE_URL_FILE" in app["env"]


def test_every_credential_comes_from_a_file_the_host_mounts() -> None:
    app = definition()
    mounted = [v["containerPath"] for v in app["container"]["volumes"]
               if v.get("mode") == "RO" and "hostPath" in v]
    secret_names = [name for name in app["env"] if SECRET_NAME.search(name)]
    assert {"RECONCILER_ZK_AUTH_FILE", "RECONCILER_DATABASE_URL_FILE"} <= set(secret_names)
    for name in secret_names:
        assert name.endswith("_FILE"), f"{name} holds a secret value in the definition"
        assert any(app["env"][name].startswith(path + "/") for path in mounted), name


def test_its_environment_is_a_working_configuration_whose_fence_holds(tmp_path: Path) -> None:
    env = dict(definition()["env"])
    for name, value in env.items():
        if value.startswith("/etc/reconciler/"):
            stand_in = tmp_path / value.removeprefix("/etc/reconciler/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("postgresql+psycopg://reconciler@db.example.org/reconciler\n"
                                if name == "RECONCILER_DATABASE_URL_FILE"
                                else f"value of {name}\n")
            env[name] = str(stand_in)
    settings = config.load({**env, "HOST": "agent7.example.org", "PORT0": "31005"})
    assert settings.database_url and settings.database_url.startswith("postgresql")
    assert settings.zk_auth == "value of RECONCILER_ZK_AUTH_FILE"
    assert settings.advertise_url == "http://agent7.example.org:31005"
    leadership.check_timing(session_timeout=settings.zk_session_timeout,
                            marathon_timeout=settings.marathon_timeout)


@pytest.mark.integration
def test_marathon_accepts_it(devcluster: launch.RunningCluster) -> None:
    app = definition()
    created = requests.post(f"{devcluster.url}/v2/apps", json=app, timeout=30)
    assert created.status_code == 201, created.text
    live = requests.get(f"{devcluster.url}/v2/apps{app['id']}", timeout=30).json()["app"]
    assert (live["instances"], live["upgradeStrategy"]) == (2, app["upgradeStrategy"])
    assert live["env"] == app["env"]
