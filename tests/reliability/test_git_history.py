"""Git rewritten under a running controller: a force-push back in time, then the ref deleted.

A force-push is the desired state going back: the controller applies the older commit, as
it would any new one. A deleted ref is Git failing: the controller keeps the last revision
in force, says so on ``/readyz`` and applies nothing until the ref is back.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from tests.controller.stack import CATALOG, Controller, repo_files, running
from tests.controller.test_outages import first_sync, readyz
from tests.reliability import tally

pytestmark = pytest.mark.integration


def update_ref(controller: Controller, *args: str) -> None:
    subprocess.run(["git", "-C", str(controller.upstream.bare), "update-ref", *args],
                   check=True, capture_output=True)


def test_a_force_push_is_applied_and_a_deleted_ref_keeps_the_last_revision(
        tmp_path: Path) -> None:
    survived = 0
    with running(tmp_path, poll_interval=1) as controller:
        old = first_sync(controller)
        new = controller.upstream.commit(repo_files(tag="v8r2p45"), message="Release")
        controller.wait("the release", lambda: controller.image_of(CATALOG) == "lhcbdirac:v8r2p45")

        update_ref(controller, "refs/heads/main", old)  # git push --force, back in time
        controller.wait("the force-pushed commit to be applied", lambda: (
            controller.image_of(CATALOG) == "lhcbdirac:v8r2p44"
            and controller.get("/api/v1/status")["revision"] == old), timeout=90)
        survived += 1

        update_ref(controller, "-d", "refs/heads/main")
        controller.wait("readyz to report Git", lambda: readyz(controller) == 503)
        reasons = requests.get(f"{controller.url}/readyz", timeout=10).json()["reasons"]
        assert any(r.startswith("git:") for r in reasons), reasons
        assert controller.get("/api/v1/status")["revision"] == old
        assert controller.image_of(CATALOG) == "lhcbdirac:v8r2p44"

        update_ref(controller, "refs/heads/main", new)
        controller.wait("the restored ref to be applied",
                        lambda: controller.image_of(CATALOG) == "lhcbdirac:v8r2p45", timeout=90)
        controller.wait("readyz to recover", lambda: readyz(controller) == 200, timeout=30)
        assert controller.process.poll() is None
        survived += 1
    tally.record(tally.Row(case="git force-push back in time; deleted ref", tried=2,
                           survived=survived))
