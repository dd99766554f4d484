"""Manual syncs through the API while a sync window is closed: refused (409, audited) without
an override reason; with one, handed to the controller with who and why, and audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from reconciler.shell import records
from reconciler.web import context
from tests.web import server

TOKEN = "oncall-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Reconciler-User": "carol"}
CLOSED = ("/dirac/web/portal waiting for window until 2026-12-07T07:00:00+00:00 (deny window "
          "'0 18 * * 5' for 62h (Europe/Zurich; drift+revisions))")


class Controller:
    """What the controller answers: the portal's window is closed; it remembers requests."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, str, str | None]] = []

    def closed_window(self, app_id: str | None) -> str | None:
        return CLOSED if app_id in (None, "/dirac/web/portal") else None

    def request_sync(self, app_id: str | None, who: str, override: str | None = None) -> str:
        self.calls.append((app_id, who, override))
        return "sync queued" + (f" (sync window overridden: {override})" if override else "")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[records.RecordStore]:
    opened = records.open_store(tmp_path / "state")
    yield opened
    opened.close()


def pages_of(store: records.RecordStore, controller: Controller) -> context.Deps:
    """The pages and API of ``controller``, with its window answers and override."""
    return context.Deps(records=store, live_apps=list, request_sync=controller.request_sync,
                        rollback=lambda a, w: "", token=TOKEN,
                        closed_window=controller.closed_window,
                        override_sync=controller.request_sync)


def test_a_sync_in_a_closed_window_needs_an_override_reason(
        store: records.RecordStore) -> None:
    controller = Controller()
    deps = pages_of(store, controller)
    with server.serving(server.oncall_app(deps)) as url:
        refused = requests.post(f"{url}/api/v1/apps/dirac/web/portal/sync", headers=AUTH,
                                timeout=10)
        refused_all = requests.post(f"{url}/api/v1/sync", headers=AUTH, timeout=10)
        open_app = requests.post(f"{url}/api/v1/apps/dirac/fts/sync", headers=AUTH, timeout=10)
        overridden = requests.post(f"{url}/api/v1/apps/dirac/web/portal/sync", headers=AUTH,
                                   params={"override": "CVE-2026-1234: cannot wait"},
                                   timeout=10)
    assert refused.status_code == refused_all.status_code == 409
    assert "waiting for window until 2026-12-07T07:00:00+00:00" in refused.json()["detail"]
    assert "override=" in refused.json()["detail"]
    assert open_app.status_code == 200  # its window is open: no reason needed
    assert overridden.status_code == 200, overridden.text
    assert overridden.json()["override"] == "CVE-2026-1234: cannot wait"
    assert controller.calls == [("/dirac/fts", "carol@127.0.0.1", None),
                                ("/dirac/web/portal", "carol@127.0.0.1",
                                 "CVE-2026-1234: cannot wait")]
    audit = [(e.who, e.action, e.target, e.result) for e in reversed(store.audit_log())]
    assert audit[0][1:3] == ("sync", "/dirac/web/portal")
    assert audit[0][3] is not None and audit[0][3].startswith("refused: ")
    assert audit[1][1:3] == ("sync", "all apps")
    assert audit[-1][:3] == ("carol@127.0.0.1", "sync (window override)", "/dirac/web/portal")
    assert audit[-1][3] is not None and audit[-1][3].startswith("why: CVE-2026-1234")


def test_an_override_reason_is_kept_on_one_line_and_a_long_one_is_refused_without_echo(
        store: records.RecordStore) -> None:
    controller = Controller()
    deps = pages_of(store, controller)
    hostile = "CVE\x1b[2J\x1b]0;owned\x07 fix\nforged: line\r\u2028\u202eend"
    huge = "x" * 60_000
    with server.serving(server.oncall_app(deps)) as url:
        overridden = requests.post(f"{url}/api/v1/apps/dirac/web/portal/sync", headers=AUTH,
                                   params={"override": hostile}, timeout=10)
        too_long = requests.post(f"{url}/api/v1/apps/dirac/web/portal/sync", headers=AUTH,
                                 params={"override": huge}, timeout=10)
    assert overridden.status_code == 200, overridden.text
    (entry,) = [e for e in store.audit_log() if e.action == "sync (window override)"]
    assert entry.result is not None
    assert entry.result.startswith("why: CVE [2J ]0;owned fix forged: line end; ")
    assert not any(ord(c) < 0x20 or c in "\x7f\u2028\u202e" for c in entry.result)
    assert controller.calls[-1][2] == "CVE [2J ]0;owned fix forged: line end"
    assert too_long.status_code == 422
    assert len(too_long.content) < 1000 and "xxxxxxxxxx" not in too_long.text
    assert too_long.json()["detail"][0]["loc"] == ["query", "override"]
