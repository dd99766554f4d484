"""Every command that talks to Marathon uses the host's ``RECONCILER_MARATHON_*`` settings:
a Marathon behind basic auth (password from a file) answers ``diff``, ``sync --dry-run`` and
``status`` alike."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.shell import records
from tests.shell import servers
from tests.shell.servers import Reply

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", [
    ["diff", "desired-state"],
    ["sync", "--dry-run", "desired-state"],
    ["status"],
])
def test_the_command_sends_the_hosts_marathon_credentials(
        command: list[str], tmp_path: Path) -> None:
    password = tmp_path / "marathon-password"
    password.write_text("s3cret\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(RECONCILER_MARATHON_USERNAME="ops", RECONCILER_MARATHON_PASSWORD_FILE=str(password),
               RECONCILER_STATE_DIR=str(tmp_path / "state"))
    records.open_store(tmp_path / "state").close()  # status reads records a run wrote
    with servers.serve() as marathon:
        marathon.on("GET", "/v2/apps", Reply(body={"apps": []}))
        marathon.on("GET", "/v2/deployments", Reply(body=[]))
        result = subprocess.run(
            [sys.executable, "-m", "reconciler", *command, "--marathon", marathon.url],
            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=env)
        seen = marathon.requests()
    assert result.returncode in (0, 2), result.stdout + result.stderr  # 2: diff has changes
    assert seen, "the command never reached Marathon"
    # base64("ops:s3cret"): the password file's content without its newline.
    assert {s.headers.get("authorization") for s in seen} == {"Basic b3BzOnMzY3JldA=="}
    assert "s3cret" not in result.stdout + result.stderr
