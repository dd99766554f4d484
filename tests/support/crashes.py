"""What a test worker was doing when its process died.

A native crash (a segfault in a C extension) kills a pytest-xdist worker at once: no
assertion, no report, and the stacks Python's faulthandler writes go to a stderr that the
summary cuts short. So each worker writes them to its own file in ``$TEST_CRASHES`` (a folder
the main process makes before the workers start), and the main process prints the crashed
thread's stack in its summary, where a CI log keeps it.
"""

from __future__ import annotations

import faulthandler
import os
import tempfile
from pathlib import Path
from typing import IO, Any

ENV = "TEST_CRASHES"
LINES = 40
"""Of the crashed thread's stack, innermost frames first."""

_open: list[IO[str]] = []


def prepare() -> None:
    """In the main process, before the workers start: the folder they all write to."""
    if not os.environ.get(ENV):
        os.environ[ENV] = tempfile.mkdtemp(prefix="test-crashes-")


def watch(worker: str) -> None:
    """In a worker: fatal errors write every thread's stack to this worker's file."""
    folder = os.environ.get(ENV)
    if not folder:
        return
    stream = open(Path(folder) / f"{worker}-{os.getpid()}.txt", "w")  # noqa: SIM115 (kept open until the process ends)
    _open.append(stream)
    faulthandler.enable(file=stream, all_threads=True)


def report(terminalreporter: Any) -> None:
    """In the main process, at the end: each dead worker's crashed thread, then clean up."""
    folder = os.environ.get(ENV)
    if not folder or not Path(folder).is_dir():
        return
    for found in sorted(Path(folder).glob("*.txt")):
        lines = found.read_text(errors="replace").splitlines()
        if lines:
            terminalreporter.write_sep("=", f"native crash in worker {found.stem}")
            for line in crashed_thread(lines):
                terminalreporter.write_line(line)
        found.unlink()
    Path(folder).rmdir()


def crashed_thread(lines: list[str]) -> list[str]:
    """The error line and the crashed thread's stack, out of faulthandler's dump of them all
    (which lists the threads newest first, the crashed one among them)."""
    start = next((i for i, line in enumerate(lines) if line.startswith("Current thread")), 0)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[:2] + lines[start:min(end, start + LINES)]
