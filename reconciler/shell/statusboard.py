"""Every app's status, kept in memory for the readers: the dashboard, ``/api/v1/`` and
``/metrics`` read the last :class:`readmodel.Snapshot` instead of computing one per request.

A daemon thread recomputes it (records and the live cache, :func:`readmodel.snapshot`) when
something may have changed: the controller's ``generation`` moved (a reconcile, a drift
check, an event in the live cache), a reader asked through :meth:`StatusBoard.invalidate`
(an action of the API), or ``max_age`` passed (another process writing the records, such as
``reconciler rollback``). At most one computation every ``min_gap`` seconds, and never
more than a quarter of the time (a snapshot of 10,000 apps takes most of a second: during a
release the board follows every few seconds without slowing the release); a page costs the
same whatever runs: the readers only ever wait for the very first snapshot. The app gauges
of ``/metrics`` are published from each new snapshot.

With several environments each environment's controller has its own board, whose app
gauges carry the environment's name (:func:`telemetry.publish_app_statuses`) and are
withdrawn when it stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from reconciler.core import model
from reconciler.shell import liveapps, readmodel, records, telemetry

log = logging.getLogger(__name__)

LiveApps = Callable[[], Sequence[model.JSON] | Mapping[str, model.JSON]]
"""The live apps, or their status views by id (looked up one by one, never held all at once)."""


class StatusBoard:
    def __init__(self, *, store: records.RecordStore, live_apps: LiveApps,
                 generation: Callable[[], object], min_gap: float = 1.0,
                 max_age: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 environment: str | None = None) -> None:
        self._store = store
        self._live_apps = live_apps
        self._generation = generation
        self._min_gap = min_gap
        self._max_age = max_age
        self._clock = clock
        self._environment = environment
        self._current: readmodel.Snapshot | None = None
        self._computed_at = 0.0
        self._took = 0.0
        self._computed_for: object = None
        self._dirty = False
        # One computation at a time: the first page asking and the board's thread at start
        # would otherwise both compute from nothing, and the later would replace every row.
        self._computing = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="status-board", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._environment is not None:
            telemetry.withdraw_app_statuses(self._environment)

    def snapshot(self) -> readmodel.Snapshot:
        """The last snapshot (computed here only if there is none yet)."""
        current = self._current
        if current is not None:
            return current
        with self._computing:
            if self._current is None:
                self._compute_locked()
        assert self._current is not None
        return self._current

    def invalidate(self) -> None:
        """Something changed that the generation does not show: recompute soon."""
        self._dirty = True
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._min_gap)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self._compute_if_stale()
            except Exception:
                log.exception("computing the status of every app failed")
            self._stopping.wait(max(self._min_gap, 3 * self._took))

    def _compute_if_stale(self) -> None:
        # Judged under the lock: a page may have just made the first snapshot.
        with self._computing:
            if (self._dirty or self._generation() != self._computed_for
                    or self._clock() - self._computed_at >= self._max_age):
                self._compute_locked()

    def _compute_locked(self) -> None:
        started = self._clock()
        generation = self._generation()
        self._dirty = False
        try:
            live: Sequence[model.JSON] | Mapping[str, model.JSON] | None = self._live_apps()
            error = None
        except Exception as e:  # noqa: BLE001 - shown on the pages, whatever it is
            live, error = None, str(e) or type(e).__name__
        # The rows of apps that did not move stay the objects they were, found by their
        # inputs and their live status view's mark (not unpacked): the board is recomputed
        # every second or so during a release; unpacking and assessing every app each time
        # kept the interpreter from the pages, and new rows for apps that did not move
        # would be long-lived objects strewn among the release's short-lived ones (memory
        # never handed back once it is over).
        marks = live.marks() if isinstance(live, liveapps.StatusViews) else None
        current = readmodel.snapshot(self._store, live, live_error=error, keep_live=False,
                                     live_marks=marks, previous=self._current)
        self._current = current
        self._computed_at = self._clock()
        self._took = self._computed_at - started
        self._computed_for = generation
        telemetry.publish_app_statuses(current.rows, environment=self._environment)
