"""The audit of refused requests stays bounded (per client and minute, then one summary), and
``/api/v1/audit`` is paginated by a cursor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from reconciler.shell import records
from reconciler.web import context, refusals
from tests.web import server


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def written() -> tuple[list[dict[str, Any]], Any]:
    entries: list[dict[str, Any]] = []
    return entries, lambda **entry: entries.append(entry)


def test_a_client_gets_its_allowance_then_one_summary_per_minute() -> None:
    entries, audit = written()
    clock = Clock()
    limiter = refusals.RefusalAudit(audit, clock=clock, per_minute=3)
    for _ in range(10):
        limiter.refused(client="10.0.0.9", who="mallory@10.0.0.9", action="POST /api/v1/sync",
                        reason="refused: missing or invalid token")
    limiter.refused(client="10.0.0.7", who="10.0.0.7", action="POST /api/v1/sync",
                    reason="refused: missing or invalid token")
    assert [e["who"] for e in entries] == ["mallory@10.0.0.9"] * 3 + ["10.0.0.9", "10.0.0.7"]
    assert "not audited" in entries[3]["result"]
    clock.now += 61
    limiter.refused(client="10.0.0.9", who="10.0.0.9", action="POST /api/v1/sync",
                    reason="refused: missing or invalid token")
    assert [e["result"] for e in entries[5:]] == [
        "6 more refused requests in the minute before were not audited",
        "refused: missing or invalid token"]


def test_many_addresses_share_one_allowance_beyond_the_tracked_ones() -> None:
    entries, audit = written()
    limiter = refusals.RefusalAudit(audit, clock=Clock(), per_minute=2, max_clients=4)
    for n in range(1000):
        limiter.refused(client=f"10.1.{n // 256}.{n % 256}", who="x", action="POST /",
                        reason="refused")
    assert len(entries) == 4 + 2 + 1  # four tracked, then "other clients": two and a summary
    assert entries[-1]["who"] == refusals.OTHERS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[records.RecordStore]:
    opened = records.open_store(tmp_path / "state")
    yield opened
    opened.close()


def test_refused_requests_through_the_api_do_not_grow_the_audit_without_bound(
        store: records.RecordStore) -> None:
    deps = context.Deps(records=store, live_apps=list, request_sync=lambda a, w: "queued",
                      rollback=lambda a, w: "rolled back", token="right")
    with server.serving(server.oncall_app(deps)) as url, requests.Session() as session:
        codes = {session.post(f"{url}/api/v1/sync", headers={"Authorization": "Bearer wrong"},
                              timeout=10).status_code for _ in range(100)}
    assert codes == {401}
    log = store.audit_log()
    assert len(log) == refusals.PER_MINUTE + 1
    assert "not audited" in (log[0].result or "")


def test_the_audit_api_pages_through_every_entry_newest_first(
        store: records.RecordStore) -> None:
    for n in range(25):
        store.audit(who=f"user{n}", action="sync", target="all apps", result="queued")
    deps = context.Deps(records=store, live_apps=list, request_sync=lambda a, w: "queued",
                      rollback=lambda a, w: "rolled back", token="right")
    seen: list[str] = []
    pages = 0
    with server.serving(server.oncall_app(deps)) as url:
        cursor = None
        while True:
            params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
            page = requests.get(f"{url}/api/v1/audit", params=params, timeout=10).json()
            seen += [e["who"] for e in page["audit"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        default = requests.get(f"{url}/api/v1/audit", timeout=10).json()
        too_many = requests.get(f"{url}/api/v1/audit", params={"limit": 100_000}, timeout=10)
    assert seen == [f"user{n}" for n in reversed(range(25))] and pages == 3
    assert len(default["audit"]) == 25 and default["next_cursor"] is None
    assert too_many.status_code == 422
