"""When the controller's jobs run: intervals, "now" triggers, bursts, and backoff after failures.

Wraps APScheduler's BackgroundScheduler. Each recurring job may have one instance running and
one waiting (``max_instances=2`` plus a per-job lock that makes the second one wait): a
trigger arriving during a run is served by the waiting instance, which starts only after the
running one finished, and further triggers are absorbed by it. A job never raises out: an
unexpected error is logged and the job runs again at its next time.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0


class Backoff:
    """Exponential delays after consecutive failures: ``base * 2**n`` up to ``cap``."""

    def __init__(self, *, base: float, cap: float = MAX_BACKOFF,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._base = base
        self._cap = cap
        self._clock = clock
        self.failures = 0
        self._not_before = 0.0

    def failed(self) -> float:
        delay = float(min(self._cap, self._base * 2.0 ** self.failures))
        self.failures += 1
        self._not_before = self._clock() + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self._not_before = 0.0

    def waiting(self) -> bool:
        return self._clock() < self._not_before


class Scheduler:
    """Named recurring jobs that can also be run now, and one-off jobs."""

    def __init__(self) -> None:
        self._scheduler = BackgroundScheduler(
            job_defaults={"max_instances": 2, "coalesce": True, "misfire_grace_time": None},
            timezone=dt.UTC)
        self._locks: dict[str, threading.Lock] = {}
        # APScheduler's shutdown(wait=True) holds its job-store lock while it waits for the
        # running jobs; a job that asks for another (run_now, once) then waits for that lock
        # forever. Our own lock and flag: once stopping, nothing more is asked of it.
        self._asking = threading.Lock()
        self._stopping = False

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def every(self, job_id: str, job: Callable[[], None], *, seconds: float,
              first_in: float = 0.0) -> None:
        """Run ``job`` every ``seconds``, the first time ``first_in`` seconds from now."""
        lock = self._locks.setdefault(job_id, threading.Lock())

        def guarded() -> None:
            with lock:
                _survive(job_id, job)

        self._scheduler.add_job(guarded, "interval", id=job_id, seconds=seconds,
                                next_run_time=_now() + dt.timedelta(seconds=first_in))

    def once(self, job_id: str, job: Callable[..., None], **kwargs: Any) -> None:
        """Run ``job(**kwargs)`` as soon as possible; replaces a queued job of that id."""
        with self._asking:
            if self._stopping:
                return
            self._scheduler.add_job(_survive, args=(job_id, job), kwargs=kwargs, id=job_id,
                                    replace_existing=True)

    def run_now(self, job_id: str) -> None:
        with self._asking:
            if self._stopping:
                return
            job = self._scheduler.get_job(job_id)
            if job is not None:
                job.modify(next_run_time=_now())
                self._scheduler.wakeup()

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        with self._asking:
            self._stopping = True
        if self._scheduler.running:  # stopping a controller that never started is no error
            self._scheduler.shutdown(wait=True)


def _survive(job_id: str, job: Callable[..., None], **kwargs: Any) -> None:
    try:
        job(**kwargs)
    except Exception:
        log.exception("%s job failed unexpectedly", job_id)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
