"""Benchmark: reading a page's list from the records' SQLite file while other threads keep
the interpreter busy, row by row (as before) against one JSON array (``database.all_rows``).

    .venv/bin/python bench/row_steps.py [--rows 200] [--reads 100] [--repeat 3] [--busy 2]

A record store in a temporary folder holds ``--rows`` runs. The History page's query of
them (the newest runs, every column) is read ``--reads`` times each way: row by row, as
``conn.execute(query).mappings()`` does (Python's ``sqlite3`` gives the interpreter up at
every row it steps to, and gets it back only when the thread holding it lets go), and as
one JSON array in one step. Beside it, ``--busy`` threads compute without pause, with a
switch interval of 1 ms as in ``reconciler run``; then the same with no busy thread. Each
configuration runs ``--repeat`` times, in turn with the other; the figures are the median
and the spread (min-max) over the repeats of each run's median and worst read.

What it does not include: rendering the rows into a page, the server's hops, the database's
other queries of a page, and a release's real threads (which also wait for I/O). Both ways
give the same rows (checked before timing). The last line is
``worst read of N rows while busy: row by row X ms, one array Y ms``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from reconciler.shell import records  # noqa: E402
from reconciler.shell.records import database, schema  # noqa: E402

WAYS = ("row by row", "one array")


def readers(store: records.RecordStore, rows: int) -> dict[str, Callable[[], list[Any]]]:
    engine = store._db.engine  # noqa: SLF001 - the store's own engine, as its queries use it
    runs = schema.runs
    query, order = sa.select(runs).limit(rows), [runs.c.run_id.desc()]

    def row_by_row() -> list[Any]:
        with engine.begin() as conn:
            return [dict(r) for r in conn.execute(query.order_by(*order)).mappings()]

    def one_array() -> list[Any]:
        with engine.begin() as conn:
            return [dict(r) for r in database.all_rows(conn, query, order_by=order)]

    return dict(zip(WAYS, (row_by_row, one_array), strict=True))


def timed(read: Callable[[], list[Any]], reads: int) -> list[float]:
    times = []
    for _ in range(reads):
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
    return times


def spin(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(1000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--reads", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--busy", type=int, default=2)
    args = parser.parse_args()
    sys.setswitchinterval(0.001)
    with tempfile.TemporaryDirectory() as folder:
        store = records.RecordStore(f"sqlite:///{Path(folder) / 'records.db'}")
        for n in range(args.rows):
            run = store.start_run(revision=f"{n:040x}", trigger="poll", requested_by=None,
                                  dry_run=False)
            store.finish_run(run, outcome="succeeded", error=None, summary={"changed": n})
        ways = readers(store, args.rows)
        first, second = (read() for read in ways.values())
        if first != second or len(first) != args.rows:
            raise SystemExit("the two ways read different rows")
        results: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for repeat in range(args.repeat):
            for busy in (args.busy, 0):
                stop = threading.Event()
                threads = [threading.Thread(target=spin, args=(stop,)) for _ in range(busy)]
                for thread in threads:
                    thread.start()
                try:
                    for way, read in ways.items():
                        times = timed(read, args.reads)
                        median, worst = statistics.median(times) * 1000, max(times) * 1000
                        results.setdefault((way, busy), []).append((median, worst))
                        print(f"repeat {repeat + 1}  {busy} busy  {way:<11} median "
                              f"{median:7.1f} ms, worst {worst:7.1f} ms", flush=True)
                finally:
                    stop.set()
                    for thread in threads:
                        thread.join()
        store.close()
    worst_busy = {}
    for (way, busy), runs in results.items():
        medians, worsts = [m for m, _ in runs], [w for _, w in runs]
        print(f"{way:<11} {busy} busy: median {statistics.median(medians):7.1f} ms "
              f"({min(medians):.1f}-{max(medians):.1f}), worst {statistics.median(worsts):7.1f}"
              f" ms ({min(worsts):.1f}-{max(worsts):.1f})")
        if busy:
            worst_busy[way] = statistics.median(worsts)
    print(f"worst read of {args.rows} rows while busy: row by row "
          f"{worst_busy['row by row']:.0f} ms, one array {worst_busy['one array']:.0f} ms")


if __name__ == "__main__":
    main()
