"""Benchmark: a write behind Git's back -> drift recorded and corrected, by ``reconciler run``.

    .venv/bin/python bench/drift.py [--apps 50] [--repeat 20]

Starts the dev cluster, a Git repo of ``--apps`` DIRAC services (``instances: 0``: deploying
one is immediate, so the figure is the controller's reaction and not Marathon's) and
``reconciler run`` as a subprocess, with drift checks by the clock and resyncs set to an hour:
only Marathon's event stream can explain a correction within the run. Each repeat changes one
app's labels through Marathon's API (``PUT /v2/apps/{id}``, another app each time) and
listens to the dev cluster's event stream itself: the time from the write to the controller's
correcting write (its ``api_post_event`` for that app) is *correction issued*; the repeat ends
when the drift record says ``corrected``. Prints every figure, the median and the 95th
percentile, and as its last line ``correction issued: p50 X s, p95 Y s``.
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from reconciler.devcluster import launch  # noqa: E402
from reconciler.shell.ports import free_port  # noqa: E402
from testbed import bigrepo  # noqa: E402
from testbed.gitrepos import Upstream  # noqa: E402
from testbed.processes import run_env, stop_process, wait_for_http  # noqa: E402


def follow_writes(marathon: str, heard: queue.Queue[tuple[float, str]],
                  stop: threading.Event) -> None:
    """Every ``api_post_event``: (arrival time, app id), until ``stop``."""
    try:
        with requests.get(f"{marathon}/v2/events", params={"event_type": "api_post_event"},
                          stream=True, timeout=(10, None),
                          headers={"Accept": "text/event-stream"}) as response:
            for line in response.iter_lines(chunk_size=1):
                if stop.is_set():
                    return
                if line.startswith(b"data:"):
                    body = json.loads(line[5:])
                    heard.put((time.monotonic(), str(body["appDefinition"]["id"])))
    except requests.RequestException:
        if not stop.is_set():
            raise


def wait(what: str, probe: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = probe()
        except (requests.RequestException, KeyError, ValueError):
            found = None
        if found:
            return found
        time.sleep(0.05)
    raise SystemExit(f"never: {what}")


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    issued: list[float] = []
    recorded: list[float] = []
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-drift-") as tmp:
        work = Path(tmp)
        dev = launch.launch(state_dir=work / "devcluster")
        process = None
        stop = threading.Event()
        try:
            upstream = Upstream.create(work / "git", bigrepo.files(args.apps),
                                       message="bench apps")
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = run_env(marathon_url=dev.url, repo_url=upstream.url,
                          state_dir=work / "state", port=port, POLL_INTERVAL="3600",
                          DRIFT_INTERVAL="3600", RESYNC_INTERVAL="3600")
            with open(work / "controller.log", "ab") as log:
                process = subprocess.Popen([sys.executable, "-m", "reconciler", "run"],
                                           env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True, cwd=work)
            wait_for_http(f"{url}/healthz", timeout=60, process=process)
            wait("the first revision synced", lambda: requests.get(
                f"{url}/api/v1/status", timeout=10).json()["revision"], timeout=300)
            heard: queue.Queue[tuple[float, str]] = queue.Queue()
            threading.Thread(target=follow_writes, args=(dev.url, heard, stop),
                             daemon=True).start()
            time.sleep(1.0)  # the listener is attached
            for repeat in range(args.repeat):
                app_id = "/" + bigrepo.app_path(repeat % args.apps).removesuffix(".yaml")
                while not heard.empty():
                    heard.get_nowait()
                written = time.monotonic()
                requests.put(f"{dev.url}/v2/apps{app_id}", params={"force": "true"},
                             json={"labels": {"team": "lhcb-dirac", "hand": str(repeat)}},
                             timeout=10).raise_for_status()
                writes = 0
                while writes < 2:  # ours, then the controller's correction
                    at, written_id = heard.get(timeout=60)
                    if written_id == app_id:
                        writes += 1
                issued.append(at - written)
                wait("the drift recorded as corrected", lambda: [
                    d for d in requests.get(f"{url}/api/v1/drift", timeout=10).json()["drift"]
                    if d["app_id"] == app_id and d["action"] == "corrected"])  # noqa: B023
                recorded.append(time.monotonic() - written)
                print(f"repeat {repeat + 1}: {app_id}: correction issued after "
                      f"{issued[-1]:.3f}s, recorded corrected by {recorded[-1]:.3f}s",
                      flush=True)
                time.sleep(0.2)
        finally:
            stop.set()
            if process is not None:
                stop_process(process)
            dev.stop()
    print(f"{args.repeat} writes, {args.apps} apps; drift checks by the clock and resyncs "
          "every 3600 s (off for this run): only events explain these figures")
    print(f"recorded corrected (seen through the API, polled every 50 ms): median "
          f"{statistics.median(recorded):.3f} s, p95 {percentile(recorded, 95):.3f} s")
    print(f"correction issued: median {statistics.median(issued):.3f} s (min "
          f"{min(issued):.3f}, max {max(issued):.3f})")
    print(f"correction issued: p50 {statistics.median(issued):.3f} s, "
          f"p95 {percentile(issued, 95):.3f} s")


if __name__ == "__main__":
    main()
