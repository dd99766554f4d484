"""The dev cluster's watchdog: kill every task's process group if the dev cluster dies.

The dev cluster stops its tasks itself on SIGINT/SIGTERM. Killed with SIGKILL, it cannot, and
``PR_SET_PDEATHSIG`` reaches only each task's direct child (``/bin/sh``), not what the shell
started. So the dev cluster starts this process in its own session with a pipe on its stdin and
writes ``+PGID`` for each task process group it starts and ``-PGID`` for each one that ended.
When the pipe closes (the dev cluster exited, however it died), every process group still listed
gets SIGKILL.

Run as ``python -m reconciler.devcluster.watchdog``; it reads only stdin and touches nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def main() -> int:
    # The dev cluster's own SIGINT/SIGTERM handling stops the tasks; this process only acts on
    # the pipe closing, so a Ctrl-C sent to the terminal's process group must not end it early.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin:
        line = line.strip()
        if len(line) < 2 or not line[1:].isdigit():
            continue
        if line[0] == "+":
            groups.add(int(line[1:]))
        elif line[0] == "-":
            groups.discard(int(line[1:]))
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
