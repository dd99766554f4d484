"""CPU per thread of a running process, once a second, with the busiest other processes
(not a benchmark: it prints no summary; read it beside the probe's ``threads`` lines, which
name each thread id).

    python3 bench/stallprobe/threadcpu.py <pid> /tmp/cpu.txt

Each line: the UNIX time, ``total`` (the process's CPU in that second, in clock ticks: 100 is
one whole core), its eight busiest threads as (thread id, ticks), and the five busiest
processes on the machine as (pid, (name, ticks)). Ends when the process does.
"""

from __future__ import annotations

import os
import sys
import time


def _ticks(stat: str) -> int:
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def threads(pid: int) -> dict[int, int]:
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                found[int(tid)] = _ticks(f.read())
        except OSError:
            continue  # the thread ended
    return found


def processes() -> dict[int, tuple[str, int]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            found[int(entry)] = (stat.split("(", 1)[1].split(")", 1)[0], _ticks(stat))
    return found


def main() -> None:
    pid, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "a", buffering=1) as out:
        before, others = threads(pid), processes()
        while True:
            time.sleep(1)
            try:
                now = threads(pid)
            except FileNotFoundError:
                return
            everyone = processes()
            used = {t: n - before.get(t, 0) for t, n in now.items() if n > before.get(t, 0)}
            busy = {p: (name, n - others[p][1]) for p, (name, n) in everyone.items()
                    if p in others and n > others[p][1]}
            out.write(f"{time.time():.3f} total {sum(used.values())} "
                      f"{sorted(used.items(), key=lambda x: -x[1])[:8]} procs "
                      f"{sorted(busy.items(), key=lambda x: -x[1][1])[:5]}\n")
            before, others = now, everyone


if __name__ == "__main__":
    main()
