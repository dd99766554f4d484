"""A secret canary in every secret source, searched for in every output of ``reconciler run``.

The canary is set as each credential (``RECONCILER_MARATHON_PASSWORD``, ``_API_TOKEN``,
``_WEBHOOK_SECRET``, ``_GIT_TOKEN``, the notification webhook's URL) and as a secret env var
of an app definition in Git; then the controller syncs, sees the secret edited by hand in
Marathon (drift, with a notice), refuses a webhook and an action with wrong secrets. The
canary is then searched for in its log, a dump of the records, every page and API answer,
the metrics and the notifications a local receiver got.

One place keeps the app's secret by design and is not counted: the records' copy of each
revision's desired definitions (``revisions.definitions``), which a rollback to that
revision sends back to Marathon. It holds what the config repo holds, no more.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import requests
import yaml

from tests.controller.stack import PORTAL, Controller, repo_files, running
from tests.controller.test_outages import first_sync
from tests.reliability import tally
from tests.support.webhooks import Receiver

pytestmark = pytest.mark.integration

CANARY = "canary-5f1d0c2e9b"


def outputs(controller: Controller, receiver: Receiver, state: Path) -> dict[str, str]:
    found = {"log": controller.log.read_text(),
             "notifications": "\n".join(r.decode(errors="replace") for r in receiver.raw)}
    for path in ("/", f"/apps{PORTAL}", "/drift", "/history", "/drift/report.html",
                 "/api/v1/status", "/api/v1/apps", f"/api/v1/apps{PORTAL}", "/api/v1/drift",
                 "/api/v1/history", "/api/v1/revisions", "/api/v1/audit", "/metrics",
                 "/readyz", "/healthz"):
        found[f"GET {path}"] = requests.get(f"{controller.url}{path}", timeout=10).text
    with sqlite3.connect(state / "reconciler.db") as db:
        dump = [line for line in db.iterdump()
                if not line.startswith('INSERT INTO "revisions"')]
    found["records (dump, revisions aside)"] = "\n".join(dump)
    return found


def test_a_secret_canary_never_leaves_through_any_output(tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.url = receiver.url.replace("abc123", CANARY)
    env = {"RECONCILER_MARATHON_PASSWORD": CANARY, "RECONCILER_MARATHON_USERNAME": "ops",
           "RECONCILER_API_TOKEN": CANARY + "-api", "RECONCILER_WEBHOOK_SECRET": CANARY + "-hook",
           "RECONCILER_GIT_TOKEN": CANARY + "-git", "RECONCILER_NOTIFY_WEBHOOK_URL": receiver.url}
    try:
        with running(tmp_path, poll_interval=1, drift_interval=1, extra_env=env) as controller:
            first_sync(controller)
            files = repo_files(tag="v8r2p44")
            portal = yaml.safe_load(files[PORTAL.strip("/") + ".yaml"])
            portal["env"] = {"DB_PASSWORD": CANARY + "-app"}
            files[PORTAL.strip("/") + ".yaml"] = yaml.safe_dump(portal)
            controller.upstream.commit(files, message="The portal's database password")
            controller.wait("the secret env var to reach Marathon", lambda: (
                controller.live()[PORTAL].get("env", {}).get("DB_PASSWORD") == CANARY + "-app"
                and controller.settled(PORTAL)), timeout=90)
            requests.put(f"{controller.marathon}/v2/apps{PORTAL}", params={"force": "true"},
                         json={"env": {"DB_PASSWORD": CANARY + "-typed"}},
                         timeout=10).raise_for_status()
            controller.wait("the drift to be announced", lambda: any(
                "drift" in t for t in receiver.texts()), timeout=60)
            requests.post(f"{controller.url}/webhooks/gitlab", timeout=10,
                          headers={"X-Gitlab-Token": CANARY + "-wrong"})
            requests.post(f"{controller.url}/api/v1/sync", timeout=10,
                          headers={"Authorization": f"Bearer {CANARY}-wrong"})
            found = outputs(controller, receiver, tmp_path / "state")
    finally:
        receiver.close()
    leaks = sorted(where for where, text in found.items() if CANARY in text)
    tally.record(tally.Row(case=f"secret canary in 6 sources, {len(found)} outputs searched",
                           tried=len(found), survived=len(found) - len(leaks),
                           secrets_leaked=len(leaks)))
    assert not leaks, {where: found[where][max(0, found[where].find(CANARY) - 200):][:400]
                       for where in leaks}
    # The search can find it: Marathon has it, and so do the records' revisions (see above).
    with sqlite3.connect(tmp_path / "state" / "reconciler.db") as db:
        assert any(CANARY in line for line in db.iterdump()
                   if line.startswith('INSERT INTO "revisions"'))
