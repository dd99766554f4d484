"""A probe for stalls of ``reconciler run``, loaded into it from ``PYTHONPATH`` (not a
benchmark: it prints no figures of its own, and the pages it is run beside are slower for it).

    STALL_LOG=/tmp/stalls.txt SETTLE_LOG=/tmp/settles.txt PYTHONPATH=bench/stallprobe \\
        .venv/bin/python bench/scale.py --busy-for 120

Python imports ``sitecustomize`` at start in every process the bench starts; the probe acts
only in ``reconciler run``:

- ``STALL_LOG``: a thread re-arms ``faulthandler.dump_traceback_later`` every 20 ms, so every
  thread's stack is appended to the file whenever that thread has not run for
  ``STALL_AFTER`` seconds (default 0.15): a single call holding the interpreter that long is
  caught in the act. No dump means no thread was kept from running that long.
- ``SETTLE_LOG``: each ``memory.settle`` (a collection, a freeze, ``malloc_trim``) is timed
  and one line per call appended.
"""

from __future__ import annotations

import os
import sys
import threading
import time

_IN_RUN = "reconciler" in sys.orig_argv and "run" in sys.orig_argv


def _watch_for_stalls(path: str, after: float) -> None:
    import faulthandler

    out = open(path, "a")  # noqa: SIM115 - open for the life of the process

    def beat() -> None:
        while True:
            faulthandler.dump_traceback_later(after, file=out)
            time.sleep(0.02)

    threading.Thread(target=beat, name="stall-probe", daemon=True).start()


def _time_settles(path: str) -> None:
    def wrap_when_imported() -> None:
        while "reconciler.shell.memory" not in sys.modules:
            time.sleep(0.05)
        memory = sys.modules["reconciler.shell.memory"]
        settle = memory.settle
        out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the life of the process

        def timed() -> None:
            started = time.perf_counter()
            settle()
            out.write(f"{time.time():.3f} settle {1000 * (time.perf_counter() - started):.1f} ms\n")

        memory.settle = timed

    threading.Thread(target=wrap_when_imported, name="settle-probe", daemon=True).start()


if _IN_RUN and os.environ.get("STALL_LOG"):
    _watch_for_stalls(os.environ["STALL_LOG"], float(os.environ.get("STALL_AFTER", "0.15")))
if _IN_RUN and os.environ.get("SETTLE_LOG"):
    _time_settles(os.environ["SETTLE_LOG"])
