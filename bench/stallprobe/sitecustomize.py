"""A probe for stalls of ``reconciler run``, loaded into it from ``PYTHONPATH`` (not a
benchmark: it prints no figures of its own, and the pages it is run beside are slower for it).

    PROBE_LOG=/tmp/probe.txt PYTHONPATH=$PWD/bench/stallprobe \\
        .venv/bin/python bench/scale.py --busy-for 120

(``PYTHONPATH`` must be absolute: the bench starts the controller in a folder of its own.)
Python imports ``sitecustomize`` at start in every process the bench starts; the probe acts
only in ``reconciler run``, appending to ``PROBE_LOG`` one line per event, each starting with
the UNIX time:

- ``late``: a thread that sleeps 5 ms woke up more than 20 ms late (it waited that long for
  a core or for the interpreter's lock, as every step of a page's answer does);
- ``gc``: a collection that took more than 10 ms, and its generation;
- ``settle``: each ``memory.settle`` (a collection, a freeze, ``malloc_trim``) and its time;
- ``threads``: every second, each thread's native id and name (to read
  ``/proc/<pid>/task/<id>/stat`` beside it: which thread used the CPU).

An earlier version dumped every thread's stack with ``faulthandler.dump_traceback_later``
whenever a thread had not run for a while: reading the stacks of running threads that way
crashed the controller once (a segmentation fault in the middle of a dump), so it is gone.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from typing import Any, TextIO

_IN_RUN = "reconciler" in sys.orig_argv and "run" in sys.orig_argv


def _late_wakeups(out: TextIO) -> None:
    while True:
        started = time.perf_counter()
        time.sleep(0.005)
        late = time.perf_counter() - started - 0.005
        if late > 0.02:
            out.write(f"{time.time():.3f} late {1000 * late:.1f} ms\n")


def _thread_names(out: TextIO) -> None:
    while True:
        time.sleep(1)
        names = {t.native_id: t.name for t in threading.enumerate()}
        out.write(f"{time.time():.3f} threads {names}\n")


def _long_collections(out: TextIO) -> None:
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        if took > 0.01:
            out.write(f"{time.time():.3f} gc gen{info['generation']} {1000 * took:.1f} ms\n")

    gc.callbacks.append(timed)


def _settles(out: TextIO) -> None:
    while "reconciler.shell.memory" not in sys.modules:
        time.sleep(0.05)
    memory = sys.modules["reconciler.shell.memory"]
    settle = memory.settle

    def timed() -> None:
        started = time.perf_counter()
        settle()
        out.write(f"{time.time():.3f} settle {1000 * (time.perf_counter() - started):.1f} ms\n")

    memory.settle = timed


def _start(path: str) -> None:
    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the life of the process
    _long_collections(out)
    for watch in (_late_wakeups, _thread_names, _settles):
        threading.Thread(target=watch, args=(out,), name=f"probe-{watch.__name__}",
                         daemon=True).start()


if _IN_RUN and os.environ.get("PROBE_LOG"):
    _start(os.environ["PROBE_LOG"])
