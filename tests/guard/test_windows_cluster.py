"""Sync windows on the dev cluster: a commit pushed inside a deny window is planned, shown as
"waiting for window until ...", and applied only when the window ends; a newer commit pushed
meanwhile replaces it; a manual sync inside the window is refused without an override, and
an override is recorded with who and why.

The controller runs in this process with its scheduler, on a real Git repository and a dev
cluster; its clock is the test's (``Controller(clock=...)``), never the wall clock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from reconciler.devcluster import launch
from reconciler.shell import config, controller, gitsource, marathon, readmodel, records
from testbed.gitrepos import Upstream
from tests.controller import stack
from tests.support import polling
from tests.sync import cluster

pytestmark = pytest.mark.integration

# Every day, 12:00 to 13:00 UTC: no new revision goes out.
LUNCH_FREEZE = {"kind": "deny", "schedule": "0 12 * * *", "duration": "1h",
                "timeZone": "UTC", "groups": ["/dirac"], "for": ["revisions"]}


class Clock:
    """The controller's clock: moves only when the test says so."""

    def __init__(self, at: str) -> None:
        self._now = dt.datetime.fromisoformat(at).timestamp()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def set(self, at: str) -> None:
        with self._lock:
            self._now = dt.datetime.fromisoformat(at).timestamp()


@dataclass
class Stack:
    controller: controller.Controller
    upstream: Upstream
    store: records.RecordStore
    marathon: str
    clock: Clock

    def push(self, tag: str, message: str) -> str:
        return self.upstream.commit(_files(tag), message=message)

    def image(self, app_id: str) -> str | None:
        app = cluster.apps(self.marathon).get(app_id)
        return cluster.image_of(app) if app else None

    def rows(self) -> dict[str, readmodel.status.AppStatus]:
        return {r.app_id: r for r in readmodel.app_rows(self.store, list(
            cluster.apps(self.marathon).values()))}


def _files(tag: str, window: dict[str, object] = LUNCH_FREEZE) -> dict[str, str]:
    files = stack.repo_files(tag=tag)
    files["reconciler.yaml"] = yaml.safe_dump({**stack.SETTINGS, "windows": [window]})
    return files


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Stack]:
    with _running(tmp_path, window=LUNCH_FREEZE) as built:
        yield built


@contextlib.contextmanager
def _running(tmp_path: Path, *, window: dict[str, object],
             drift_interval: float = 600) -> Iterator[Stack]:
    dev = launch.launch(state_dir=tmp_path / "devcluster")
    clock = Clock("2026-12-01T10:00:00+00:00")  # before the freeze
    built: controller.Controller | None = None
    store = None
    try:
        upstream = Upstream.create(tmp_path / "git", _files("v8r2p44", window),
                                   message="DIRAC services with a lunch freeze")
        settings = config.load({"RECONCILER_MARATHON_URL": dev.url,
                                "RECONCILER_REPO_URL": upstream.url,
                                "RECONCILER_STATE_DIR": str(tmp_path / "state"),
                                "RECONCILER_POLL_INTERVAL": "0.2",
                                "RECONCILER_DRIFT_INTERVAL": str(drift_interval)})
        source = gitsource.open_source(settings.repo_url, ref="main", path=".",
                                       cache_dir=tmp_path / "state" / "git")
        store = records.open_store(settings.state_dir)
        client = marathon.MarathonClient(settings.client_settings())
        built = controller.Controller(settings=settings, source=source, client=client,
                                      store=store, clock=clock)
        built.start()
        yield Stack(controller=built, upstream=upstream, store=store, marathon=dev.url,
                    clock=clock)
    finally:
        if built is not None:
            built.stop()
            built.client.close()
        if store is not None:
            store.close()
        dev.stop()


def test_a_commit_pushed_in_a_deny_window_is_applied_when_the_window_ends(
        running: Stack) -> None:
    polling.eventually("the first revision applied outside the window",
                       lambda: running.image(stack.CATALOG) == "lhcbdirac:v8r2p44"
                       and running.controller.status().revision)

    running.clock.set("2026-12-01T12:10:00+00:00")  # inside the freeze
    held = running.push("v8r2p45", "Release v8r2p45 during the freeze")
    polling.eventually("the new revision planned and held", lambda: {
        h.app_id for h in running.store.window_holds() if h.revision == held}
        == {stack.CATALOG, stack.PORTAL})
    row = running.rows()[stack.CATALOG]
    waiting = row.condition(readmodel.status.ConditionType.WAITING)
    assert waiting is not None, row
    assert waiting.message.startswith("waiting for window until 2026-12-01T13:00:00+00:00")
    assert str(row.sync) == "OutOfSync"
    assert running.image(stack.CATALOG) == "lhcbdirac:v8r2p44"

    # A newer commit in the same window replaces the one waiting: only it will go out.
    newer = running.push("v8r2p46", "Release v8r2p46, still in the freeze")
    polling.eventually("the newer revision held instead",
                       lambda: {h.revision for h in running.store.window_holds()} == {newer})
    superseded = [h for h in running.store.window_holds(open_only=False) if h.revision == held]
    assert {h.ended for h in superseded} == {"superseded"}
    # Polls (5 per second of wall time) change nothing while the clock stays in the window.
    time.sleep(1.0)
    assert running.image(stack.CATALOG) == "lhcbdirac:v8r2p44"
    assert running.image(stack.PORTAL) == "lhcbdirac:v8r2p44"

    # Manual sync: refused without an override.
    refused = running.controller.request_sync(None, "carol@10.0.0.7")
    assert refused.startswith("refused: ") and "waiting for window until" in refused

    running.clock.set("2026-12-01T13:00:30+00:00")  # the window has ended
    polling.eventually("the held revision applied once the window ended",
                       lambda: running.image(stack.CATALOG) == "lhcbdirac:v8r2p46"
                       and running.image(stack.PORTAL) == "lhcbdirac:v8r2p46"
                       and not running.store.window_holds())
    ended = [h for h in running.store.window_holds(open_only=False) if h.revision == newer]
    assert {h.ended for h in ended} == {"applied"}
    assert running.rows()[stack.CATALOG].condition(
        readmodel.status.ConditionType.WAITING) is None
    # The superseded release was never sent to Marathon.
    assert held not in {c.revision for c in running.store.changes()}


def test_a_manual_sync_overrides_a_closed_window_and_the_override_is_recorded(
        running: Stack) -> None:
    polling.eventually("the first revision applied",
                       lambda: running.image(stack.CATALOG) == "lhcbdirac:v8r2p44"
                       and running.controller.status().revision)
    running.clock.set("2026-12-01T12:05:00+00:00")
    held = running.push("v8r2p45", "Hotfix during the freeze")
    polling.eventually("the hotfix held", lambda: len([h for h in running.store.window_holds()
                                         if h.revision == held]) == 2)

    message = running.controller.request_sync(None, "carol@10.0.0.7",
                                              override="CVE-2026-1234 fix cannot wait")
    assert "sync window overridden" in message
    polling.eventually("the hotfix applied inside the window",
                       lambda: running.image(stack.CATALOG) == "lhcbdirac:v8r2p45"
                       and running.image(stack.PORTAL) == "lhcbdirac:v8r2p45")
    entry = polling.eventually("the override audited", lambda: next(
        (e for e in running.store.audit_log() if e.action == "sync window override"), None))
    assert entry.who == "carol@10.0.0.7"
    assert entry.result is not None and "why: CVE-2026-1234 fix cannot wait" in entry.result
    assert stack.CATALOG in (entry.target or "")
    assert {h.ended for h in running.store.window_holds(open_only=False)} == {"overridden"}
    assert running.clock() < dt.datetime.fromisoformat("2026-12-01T13:00:00+00:00").timestamp()


def test_a_drift_only_window_holds_the_correction_not_the_release(tmp_path: Path) -> None:
    drift_freeze = {**LUNCH_FREEZE, "for": ["drift"]}
    with _running(tmp_path, window=drift_freeze, drift_interval=0.5) as running:
        polling.eventually("the first revision applied",
                           lambda: running.image(stack.CATALOG) == "lhcbdirac:v8r2p44"
                           and running.controller.status().revision)
        running.clock.set("2026-12-01T12:10:00+00:00")
        # Someone scales the catalog by hand during the freeze: recorded, not corrected.
        scaled = requests.put(f"{running.marathon}/v2/apps{stack.CATALOG}",
                              json={"instances": 2}, timeout=10)
        assert scaled.status_code < 300, scaled.text
        drift = polling.eventually("the drift recorded and its correction held", lambda: next(
            (d for d in running.store.drifts(open_only=True, app_id=stack.CATALOG)
             if d.reason and "waiting for window" in d.reason), None))
        assert drift.action == "blocked"
        assert cluster.apps(running.marathon)[stack.CATALOG]["instances"] == 2
        # A release is not held by a drift-only window: it goes out inside it.
        running.upstream.commit(_files("v8r2p45", drift_freeze),
                                message="Release during the drift freeze")
        polling.eventually("the release applied inside the drift-only window",
                           lambda: running.image(stack.PORTAL) == "lhcbdirac:v8r2p45")
        assert not running.store.window_holds()


def test_a_drift_correction_never_carries_out_a_release_its_window_holds(
        tmp_path: Path) -> None:
    """A hand edit during a release freeze is put back to what was applied, not to the
    release waiting for the window."""
    with _running(tmp_path, window=LUNCH_FREEZE, drift_interval=0.5) as running:
        polling.eventually("the first revision applied",
                           lambda: running.image(stack.CATALOG) == "lhcbdirac:v8r2p44"
                           and running.controller.status().revision)
        running.clock.set("2026-12-01T12:10:00+00:00")
        held = running.push("v8r2p45", "Release during the freeze")
        polling.eventually("the release held", lambda: len([h for h in running.store.window_holds()
                                              if h.revision == held]) == 2)
        scaled = requests.put(f"{running.marathon}/v2/apps{stack.CATALOG}",
                              json={"instances": 3}, timeout=10)
        assert scaled.status_code < 300, scaled.text
        polling.eventually("the hand edit corrected", lambda: any(
            d.action == "corrected" for d in running.store.drifts(app_id=stack.CATALOG)))
        live = cluster.apps(running.marathon)[stack.CATALOG]
        assert live["instances"] == 1
        assert cluster.image_of(live) == "lhcbdirac:v8r2p44"  # not the held release
        assert held not in {c.revision for c in running.store.changes()}
