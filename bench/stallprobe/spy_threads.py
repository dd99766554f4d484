"""Samples per thread of a ``py-spy record --threads --format raw`` file, and within one
thread the samples of the functions named (not a benchmark: it prints no summary; it reads
what ``py-spy`` wrote, for ``docs/benchmarks.md``).

    python3 bench/stallprobe/spy_threads.py spy.txt [THREAD FUNCTION ...]

Each raw line is a stack (``thread (tid): name;frame;frame ...``) and its sample count.
Threads are counted by name, the numbered ones of a pool as one (``apply_0`` ...
``apply_7`` as ``apply``); a function counts a sample once however deep it recurs (its
samples include those of what it called). Function names are as ``py-spy`` writes them:
``compute``, ``Held.status_view``, ``RunStore.last_applied``.
"""

from __future__ import annotations

import collections
import re
import sys


def thread_name(head: str) -> str:
    name = head.split(": ", 1)[-1].rstrip(")")
    return re.sub(r"_\d+$", "", name)


def main() -> None:
    path, thread, functions = sys.argv[1], sys.argv[2:3], sys.argv[3:]
    by_thread: collections.Counter[str] = collections.Counter()
    within: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            samples = int(count)
            head, *frames = stack.split(";")
            name = thread_name(head)
            total += samples
            by_thread[name] += samples
            if thread and name == thread[0]:
                called = {frame.split(" (", 1)[0] for frame in frames}
                for function in functions:
                    if function in called:
                        within[function] += samples
    print(f"{total} samples")
    for name, samples in by_thread.most_common():
        print(f"{samples:8} {name}")
    for function in functions:
        print(f"{within[function]:8} {thread[0]}: {function}")


if __name__ == "__main__":
    main()
