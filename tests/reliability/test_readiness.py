"""Honest readiness: ``/readyz`` is 503 and says why while the controller cannot do its job.

``reconciler run`` as a subprocess: the records turn unwritable (its PostgreSQL database goes
read-only, as a standby after a failover does), the newest commit fails to load, Marathon
answers nonsense. Each time ``/readyz`` names the cause, and recovers once it is gone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from reconciler.shell import marathon
from testbed import postgres
from tests.controller.stack import Controller, running
from tests.controller.test_outages import first_sync, readyz
from tests.reliability import tally
from tests.shell import servers
from tests.support.webhooks import Receiver

pytestmark = pytest.mark.integration


def reasons(controller: Controller) -> list[str]:
    body: dict[str, Any] = requests.get(f"{controller.url}/readyz", timeout=10).json()
    found: list[str] = body["reasons"]
    return found


@contextlib.contextmanager
def read_only(server: postgres.PostgresServer, url: str) -> Iterator[None]:
    """The database refuses writes (new sessions read-only, old ones cut) until the end."""
    name = url.rsplit("/", 1)[1]

    def switch(on: bool) -> None:
        with psycopg.connect(server.admin_url(), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = '
                         f'{"on" if on else "off"}')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))

    switch(True)
    try:
        yield
    finally:
        switch(False)


def test_readyz_is_503_while_the_records_cannot_be_written(
        tmp_path: Path, postgres_server: postgres.PostgresServer) -> None:
    with postgres_server.database() as url, running(
            tmp_path, poll_interval=1,
            extra_env={"RECONCILER_DATABASE_URL": url}) as controller:
        first_sync(controller)
        with read_only(postgres_server, url):
            controller.wait("readyz to see the records refuse writes",
                            lambda: readyz(controller) == 503, timeout=30)
            assert any(r.startswith("records:") and "read-only" in r
                       for r in reasons(controller)), reasons(controller)
        controller.wait("readyz to recover with the records",
                        lambda: readyz(controller) == 200, timeout=30)
        assert controller.process.poll() is None
    tally.record(tally.Row(case="records read-only (PostgreSQL), then writable", tried=1,
                           survived=1))


def test_a_commit_that_fails_to_load_makes_readyz_503_with_a_run_and_a_notice(
        tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        with running(tmp_path, poll_interval=1,
                     extra_env={"RECONCILER_NOTIFY_WEBHOOK_URL": receiver.url}) as controller:
            first_sync(controller)
            sha = controller.upstream.commit({"dirac/web/portal.yaml": "id: [unclosed\n"},
                                             message="A typo")
            controller.wait("readyz to see the broken commit",
                            lambda: readyz(controller) == 503, timeout=30)
            assert any(sha[:12] in r and "failed to load" in r for r in reasons(controller))
            assert controller.get("/api/v1/status")["invalid"]
            runs = [e for e in controller.get("/api/v1/history")["history"]
                    if e["kind"] == "run" and e["revision"] == sha]
            assert runs and runs[-1]["outcome"] == "failed" and runs[-1]["error"], runs
            controller.wait("a notice about it", lambda: any(
                "sync failed" in t and "portal.yaml" in t for t in receiver.texts()),
                timeout=30)
    finally:
        receiver.close()


def test_marathon_answering_nonsense_is_a_clear_error_and_makes_readyz_503(
        tmp_path: Path) -> None:
    with servers.serve() as scripted:
        scripted.on("GET", "/v2/apps", servers.Reply(200, {}))
        scripted.on("GET", "/v2/deployments", servers.Reply(200, [1, "two"]))
        client = marathon.MarathonClient(marathon.ClientSettings(urls=(scripted.url,)))
        with pytest.raises(marathon.MarathonError, match="nonsense.*'apps'"):
            client.list_apps()
        with pytest.raises(marathon.MarathonError, match="list of objects.*int, str"):
            client.list_deployments()
        scripted.on("GET", "/v2/apps", servers.Reply(200, {"apps": [["not", "an", "app"]]}))
        with pytest.raises(marathon.MarathonError, match="nonsense"):
            client.list_apps()
        client.close()

        with running(tmp_path, poll_interval=1,
                     extra_env={"RECONCILER_MARATHON_URL": scripted.url}) as controller:
            controller.wait("readyz to name Marathon's nonsense", lambda: any(
                r.startswith("marathon:") and "nonsense" in r for r in reasons(controller)),
                timeout=30)
            assert readyz(controller) == 503
            assert "Traceback" not in controller.log.read_text()
