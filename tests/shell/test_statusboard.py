"""The status board recomputed: the rows of apps that did not change stay the same objects
(a release recomputes it every few seconds; new rows for apps that had not moved were
long-lived objects strewn among the release's short-lived ones, memory never handed back)."""

from __future__ import annotations

import time
from pathlib import Path

from reconciler.core import model
from reconciler.shell import liveapps, records, statusboard
from tests.support import polling


def test_a_recomputed_board_keeps_the_rows_of_apps_that_did_not_change(tmp_path: Path) -> None:
    store = records.open_store(tmp_path / "state")
    desired = {f"/dirac/a{i}": {"id": f"/dirac/a{i}", "instances": 1, "cmd": "sleep 1"}
               for i in range(3)}
    store.record_revision(revision="1" * 40, definitions=desired)
    live: dict[str, model.JSON] = {
        a: {**d, "version": "2026-11-30T00:00:00.000Z", "tasks": [], "deployments": []}
        for a, d in desired.items()}
    generation = [0]
    board = statusboard.StatusBoard(store=store, live_apps=lambda: dict(live),
                                    generation=lambda: generation[0], min_gap=0.01)
    board.start()
    try:
        first = board.snapshot()
        live["/dirac/a1"] = {**live["/dirac/a1"], "instances": 3}  # scaled
        generation[0] += 1
        # Waits for the scaling itself: the board's thread may also have computed at start.
        polling.eventually("recomputed", lambda: board.snapshot().by_id["/dirac/a1"].instances == 3)
        before = {row.app_id: row for row in first.rows}
        after = {row.app_id: row for row in board.snapshot().rows}
        assert after["/dirac/a0"] is before["/dirac/a0"]
        assert after["/dirac/a2"] is before["/dirac/a2"]
        assert after["/dirac/a1"] is not before["/dirac/a1"]
        assert after["/dirac/a1"].instances == 3
    finally:
        board.stop()
        store.close()


def test_a_page_asking_at_start_and_the_board_s_thread_compute_one_snapshot_between_them(
        tmp_path: Path) -> None:
    # Both used to compute from nothing at once (10,000 apps twice at start), and the later
    # replaced every row of the earlier: the rows a page had just read were no longer the
    # board's.
    store = records.open_store(tmp_path / "state")
    desired = {f"/dirac/a{i}": {"id": f"/dirac/a{i}", "instances": 1, "cmd": "sleep 1"}
               for i in range(3)}
    store.record_revision(revision="1" * 40, definitions=desired)
    live = {a: {**d, "version": "2026-11-30T00:00:00.000Z", "tasks": [], "deployments": []}
            for a, d in desired.items()}
    reads = [0]

    def slow_live_apps() -> dict[str, model.JSON]:
        reads[0] += 1
        time.sleep(0.3)  # long enough for the board's thread to want its own computation
        return dict(live)

    board = statusboard.StatusBoard(store=store, live_apps=slow_live_apps,
                                    generation=lambda: 0, min_gap=0.01, max_age=3600)
    board.start()
    try:
        first = board.snapshot()
        time.sleep(0.5)  # the board's thread has woken up many times since
        assert reads[0] == 1
        assert board.snapshot() is first
    finally:
        board.stop()
        store.close()


class _LookedUp(liveapps.StatusViews):
    """The live cache's status views, each lookup (an unpacking) noted in ``looked_up``."""

    def __init__(self, held: dict[str, liveapps.Held], looked_up: list[str]) -> None:
        super().__init__(held)
        self._looked_up = looked_up

    def __getitem__(self, app_id: str) -> model.JSON:
        self._looked_up.append(app_id)
        return super().__getitem__(app_id)


def test_a_recomputed_board_unpacks_only_the_live_apps_whose_status_view_moved(
        tmp_path: Path) -> None:
    """During a release the board recomputes every second or so: unpacking and assessing
    10,000 live apps each time kept the interpreter from the pages."""
    store = records.open_store(tmp_path / "state")
    desired = {f"/dirac/a{i}": {"id": f"/dirac/a{i}", "instances": 1, "cmd": "sleep 1"}
               for i in range(3)}
    store.record_revision(revision="1" * 40, definitions=desired)
    held = {a: liveapps.Held.of({**d, "version": "2026-11-30T00:00:00.000Z", "deployments": [],
                                 "tasks": [{"id": f"{a[1:]}.1", "state": "TASK_RUNNING"}]})
            for a, d in desired.items()}
    generation = [0]
    looked_up: list[str] = []
    board = statusboard.StatusBoard(store=store,
                                    live_apps=lambda: _LookedUp(dict(held), looked_up),
                                    generation=lambda: generation[0], min_gap=0.01)
    board.start()
    try:
        first = board.snapshot()
        polling.eventually("every app looked up", lambda: set(looked_up) == set(desired))
        time.sleep(0.1)  # the board's thread's own first computation, if any, is over
        looked_up.clear()
        read = held["/dirac/a1"].status_view()
        held["/dirac/a1"] = liveapps.Held.of(
            {**read, "tasks": [{**read["tasks"][0], "state": "TASK_FAILED"}]},
            known=held["/dirac/a1"])  # a resync: the same version, its task failed
        generation[0] += 1
        polling.eventually("recomputed", lambda: board.snapshot().by_id[
            "/dirac/a1"].tasks[0]["state"] == "TASK_FAILED")
        after = board.snapshot().by_id
        assert set(looked_up) == {"/dirac/a1"}
        assert after["/dirac/a0"] is first.by_id["/dirac/a0"]
        assert after["/dirac/a2"] is first.by_id["/dirac/a2"]
    finally:
        board.stop()
        store.close()
