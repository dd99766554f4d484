"""Stopping the scheduler while a job asks for another job never deadlocks.

APScheduler 3's ``shutdown(wait=True)`` holds its job-store lock while it waits for running
jobs; a running job that then called ``run_now`` (the live cache waking the drift check)
waited for that lock forever, and so did ``reconciler run``'s stop.
"""

from __future__ import annotations

import threading
import time

from reconciler.shell import scheduler


def test_a_job_asking_for_another_while_the_scheduler_stops_does_not_hang_the_stop() -> None:
    jobs = scheduler.Scheduler()
    running = threading.Event()
    asked = threading.Event()

    def job() -> None:
        running.set()
        time.sleep(0.5)  # the stop begins meanwhile and waits for this job
        jobs.run_now("other")
        jobs.once("later", lambda: None)
        asked.set()

    jobs.every("job", job, seconds=3600)
    jobs.every("other", lambda: None, seconds=3600, first_in=3600)
    jobs.start()
    assert running.wait(10), "the job never ran"
    stopper = threading.Thread(target=jobs.shutdown, daemon=True)
    stopper.start()
    stopper.join(timeout=20)
    assert not stopper.is_alive(), "shutdown hung on a job that asked for another"
    assert asked.is_set()
