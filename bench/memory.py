"""Benchmark: what ``reconciler run``'s memory is made of at 10,000 apps, and its collector.

    .venv/bin/python bench/memory.py [--apps 10000] [--release-for 60] [--no-trace]

The same setup as ``bench/scale.py`` (its ``apps_in_git_and_marathon``: the apps of
``testbed/bigrepo.py``, already in the dev cluster), but ``reconciler run`` runs inside this
script's own child (``--child``) with ``tracemalloc`` on (one frame) and ``gc.callbacks``
counting collections. SIGUSR1 makes the child write a report: its resident memory, the
Python memory traced by source file, pymalloc's arenas (``sys._debugmallocstats``), and the
collections so far by generation (count, longest, total). Reports are taken at start
(listening, no app yet), idle after the first sync, and after ``--release-for`` seconds of a
release that bumps every app's image. tracemalloc's own bookkeeping inflates the resident
figures: ``--no-trace`` runs the child without it, for true resident figures and no traced
ones.

The last line is the Python memory traced when idle, ``traced idle: N MB``, or with
``--no-trace`` the resident memory when idle and the highest resident memory so far, the
release included (``VmHWM``): ``resident idle: N MB, peak so far (...): M MB``.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

TOP = 12
"""Source files shown per report."""


def child(report_to: Path, *, trace: bool) -> None:
    """``reconciler run`` (traced or not); writes a report to ``report_to`` on SIGUSR1."""
    if trace:
        tracemalloc.start(1)
    collections: list[tuple[int, float]] = []
    started = [0.0]

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            collections.append((info["generation"], time.perf_counter() - started[0]))

    gc.callbacks.append(on_collection)

    def report() -> None:
        lines = [line.strip() for line in Path("/proc/self/status").read_text().splitlines()
                 if line.startswith(("VmRSS", "VmHWM"))]
        if trace:
            traced, _peak = tracemalloc.get_traced_memory()
            lines.append(f"traced {traced / 1e6:.1f} MB")
            stats = tracemalloc.take_snapshot().statistics("filename")
            lines += [f"  {s.size / 1e6:7.2f} MB  "
                      f"{s.traceback[0].filename.replace(str(REPO_ROOT), '.')}"
                      for s in stats[:TOP]]
        # pymalloc's own account goes to file descriptor 2 only: lend it a file for a moment.
        with tempfile.TemporaryFile() as held:
            saved = os.dup(2)
            os.dup2(held.fileno(), 2)
            try:
                sys._debugmallocstats()  # noqa: SLF001 - the only way to read pymalloc's arenas
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            held.seek(0)
            mallocstats = held.read().decode(errors="replace")
        for name in ("arenas allocated current", "bytes in allocated blocks",
                     "bytes in available blocks", "unused pools"):
            found = re.search(rf"^(.*{name}.*)$", mallocstats, re.MULTILINE)
            if found:
                lines.append("pymalloc " + " ".join(found.group(1).split()))
        for generation in (0, 1, 2):
            took = [t for g, t in collections if g == generation]
            if took:
                lines.append(f"gc generation {generation}: {len(took)} collections, longest "
                             f"{max(took) * 1000:.0f} ms, total {sum(took) * 1000:.0f} ms")
        lines.append(f"objects the collector scans: {len(gc.get_objects())} "
                     f"(frozen: {gc.get_freeze_count()})")
        report_to.write_text("\n".join(lines) + "\n")

    # SIGUSR1 is blocked in every thread (the controller's inherit the mask) and awaited by
    # one of its own: a handler runs only in the main thread, which ``reconciler run`` parks
    # in a wait that a signal delivered to another thread never interrupts (no report).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})

    def reporter() -> None:
        while True:
            signal.sigwait({signal.SIGUSR1})
            report()

    threading.Thread(target=reporter, name="bench-report", daemon=True).start()
    from reconciler import cli
    sys.argv = ["reconciler", "run"]
    cli.main()


def main() -> None:
    import requests

    from bench.scale import apps_in_git_and_marathon
    from reconciler.devcluster import launch
    from reconciler.shell.ports import free_port
    from testbed import bigrepo
    from testbed.processes import run_env, stop_process, wait_for_http

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--release-for", type=float, default=60.0)
    parser.add_argument("--no-trace", action="store_true",
                        help="without tracemalloc: true resident figures, no composition")
    args = parser.parse_args()
    reports: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-memory-") as tmp:
        work = Path(tmp)
        dev = launch.launch(state_dir=work / "devcluster")
        process = None
        try:
            _, upstream = apps_in_git_and_marathon(work, args.apps, dev.url)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            out = work / "report.txt"
            with open(work / "controller.log", "ab") as log:
                process = subprocess.Popen(
                    [sys.executable, __file__, "--child", str(out),
                     "no-trace" if args.no_trace else "trace"], cwd=work,
                    env=run_env(marathon_url=dev.url, repo_url=upstream.url,
                                state_dir=work / "state", port=port, POLL_INTERVAL="1"),
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

            def take(name: str) -> None:
                out.unlink(missing_ok=True)
                os.kill(process.pid, signal.SIGUSR1)
                deadline = time.monotonic() + 300
                while not out.exists() or not out.read_text().endswith("\n"):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"no report {name}")
                    time.sleep(0.2)
                reports[name] = out.read_text()

            wait_for_http(f"{url}/healthz", timeout=300, process=process)
            take("at start")
            while not requests.get(f"{url}/api/v1/status", timeout=600).json()["revision"]:
                if process.poll() is not None:
                    raise SystemExit((work / "controller.log").read_text()[-3000:])
                time.sleep(0.5)
            while requests.get(f"{url}/api/v1/apps/" + bigrepo.app_path(0).removesuffix(
                    ".yaml"), timeout=600).status_code == 404:
                time.sleep(0.5)
            time.sleep(5)
            take("idle")
            upstream.commit(bigrepo.files(args.apps, tag="v8r2p45"), message="Release")
            time.sleep(args.release_for)
            take(f"after {args.release_for:.0f} s of a release of every app")
        finally:
            if process is not None:
                stop_process(process)
            dev.stop()
    print(f"{args.apps} apps, reconciler run "
          + ("without tracemalloc" if args.no_trace else "with tracemalloc (one frame)"))
    for name, text in reports.items():
        print(f"-- {name}")
        print(text, end="")
    if args.no_trace:
        # /proc counts in KiB; the figures are MB (10^6 bytes), as the target is stated.
        resident = re.search(r"^VmRSS:\s+(\d+) kB", reports["idle"], re.MULTILINE)
        peak = re.search(r"^VmHWM:\s+(\d+) kB", list(reports.values())[-1], re.MULTILINE)
        print(f"resident idle: {int(resident.group(1)) * 1024 / 1e6 if resident else 0:.0f} MB, "
              f"peak so far (VmHWM, the release included): "
              f"{int(peak.group(1)) * 1024 / 1e6 if peak else 0:.0f} MB")
    else:
        traced = re.search(r"^traced ([0-9.]+) MB", reports["idle"], re.MULTILINE)
        print(f"traced idle: {traced.group(1) if traced else '?'} MB")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), trace=sys.argv[3] == "trace")
    else:
        main()
