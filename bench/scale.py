"""Benchmark: ``reconciler run`` following 10,000 apps: memory, the read side, validate, diff.

    .venv/bin/python bench/scale.py [--apps 10000] [--samples 5]

1. A config repo of ``--apps`` DIRAC services (``testbed/bigrepo.py``, ``instances: 0``) is
   committed to a local Git repo; the dev cluster is given the same apps up front (bulk
   ``PUT /v2/apps``, not measured), so the controller's first reconcile finds them in sync.
2. ``reconciler run`` starts on it. Idle (first revision synced, nothing running), each of
   ``/healthz``, ``/metrics``, the dashboard's first page (``/``), one app's API page
   (``/api/v1/apps/{id}``), the same app's dashboard page, the Releases page and the History
   page is asked ``--samples`` times: median and max, in ms.
3. A full reconcile: the image tag is bumped for every app (one commit); while the controller
   rolls all of them, the same pages are asked in turn, once a second, until the revision is
   synced (``--answers FILE``: each of those answers, with the time it was asked).
4. Peak resident memory of the controller (``VmHWM`` of ``/proc/PID/status``), read at the
   end, its resident memory when idle, and at the end of the release window.
5. ``validate`` and ``diff`` of the repo: in process (``directory.read_directory`` +
   ``load.load_desired_state``; + ``diff_apps`` against one ``GET /v2/apps`` for diff) beside
   the floor of only reading its files and loading each with PyYAML's C loader; and the CLI
   commands' wall time (interpreter start and imports included).

The last line is the peak memory: ``peak RSS: N MB``.
"""

from __future__ import annotations

import argparse
import gc
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.noop_diff import load_into_marathon  # noqa: E402
from reconciler.core import diff as diffing  # noqa: E402
from reconciler.core import load as loading  # noqa: E402
from reconciler.devcluster import launch  # noqa: E402
from reconciler.shell import directory, marathon  # noqa: E402
from reconciler.shell.ports import free_port  # noqa: E402
from testbed import bigrepo  # noqa: E402
from testbed.gitrepos import Upstream  # noqa: E402
from testbed.processes import run_env, stop_process, wait_for_http  # noqa: E402

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def memory(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak) of ``pid``, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def released(marathon_url: str, tag: str) -> int:
    apps = requests.get(f"{marathon_url}/v2/apps", timeout=600).json()["apps"]
    return sum(1 for a in apps if a["container"]["docker"]["image"].endswith(f":{tag}"))


def ask(url: str) -> float:
    started = time.perf_counter()
    response = requests.get(url, timeout=600)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


def figures(samples: list[float]) -> str:
    return (f"median {statistics.median(samples) * 1000:7.1f} ms, max "
            f"{max(samples) * 1000:7.1f} ms ({len(samples)} asked)")


def timed(work: Callable[[], Any]) -> float:
    gc.collect()
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def floor(root: Path) -> None:
    """Read every config file and load it with the C YAML loader: no checks at all."""
    for path in sorted(root.rglob("*.yaml")):
        yaml.load(path.read_text(), Loader=LOADER)


def cli(*args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True,
                          text=True, cwd=REPO_ROOT)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 2):
        raise SystemExit(f"reconciler {args[0]} failed: {done.stdout[-2000:]}"
                         f"{done.stderr[-2000:]}")
    return elapsed


def apps_in_git_and_marathon(work: Path, apps: int, marathon_url: str
                             ) -> tuple[Path, Upstream]:
    """``apps`` DIRAC services written to a folder and committed to a local Git repo, and the
    same apps already in the Marathon at ``marathon_url`` (untimed): the folder and the repo."""
    repo = bigrepo.write(work / "repo", apps)
    files, revision = directory.read_directory(repo)
    desired = loading.load_desired_state(files, revision=revision)
    load_into_marathon(marathon_url, [a.definition for a in desired.apps.values()])
    return repo, Upstream.create(work / "git", bigrepo.files(apps), message="bench apps")


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--busy-for", type=float, default=300.0,
                        help="seconds the pages are asked during the release at most")
    parser.add_argument("--answers", type=argparse.FileType("a"), default=None,
                        help="a file to append each answer during the release to: the UNIX "
                             "time it was asked, ms, the page (to set beside a probe's log)")
    args = parser.parse_args()
    answers = args.answers
    app_id = bigrepo.app_path(0).removesuffix(".yaml")
    pages = {"/healthz": "/healthz", "/metrics": "/metrics", "dashboard /": "/",
             "one app's API page": "/api/v1/apps/" + app_id,
             "one app's page": "/apps/" + app_id, "releases page": "/releases",
             "history page": "/history"}
    idle: dict[str, list[float]] = {name: [] for name in pages}
    busy: dict[str, list[float]] = {name: [] for name in pages}
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-scale-") as tmp:
        work = Path(tmp)
        dev = launch.launch(state_dir=work / "devcluster")
        process = None
        try:
            repo, upstream = apps_in_git_and_marathon(work, args.apps, dev.url)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = run_env(marathon_url=dev.url, repo_url=upstream.url,
                          state_dir=work / "state", port=port, POLL_INTERVAL="1")
            with open(work / "controller.log", "ab") as log:
                process = subprocess.Popen([sys.executable, "-m", "reconciler", "run"],
                                           env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True, cwd=work)
            wait_for_http(f"{url}/healthz", timeout=120, process=process)
            started = time.monotonic()
            while not requests.get(f"{url}/api/v1/status", timeout=600).json()["revision"]:
                if time.monotonic() - started > 1800 or process.poll() is not None:
                    raise SystemExit("the first revision was never synced: "
                                     + (work / "controller.log").read_text()[-3000:])
                time.sleep(0.5)
            first_sync = time.monotonic() - started
            # The status board computes its first snapshot with the revision in the
            # background: wait for the app page to know the app.
            while requests.get(url + pages["one app's API page"], timeout=600).status_code \
                    == 404:
                if time.monotonic() - started > 1800:
                    raise SystemExit("the status board never showed the apps")
                time.sleep(0.5)
            board_ready = time.monotonic() - started - first_sync
            for _ in range(args.samples):
                for name, path in pages.items():
                    idle[name].append(ask(url + path))
            idle_rss = memory(process.pid)["VmRSS"]

            sha = upstream.commit(bigrepo.files(args.apps, tag="v8r2p45"),
                                  message="Release v8r2p45")
            started = time.monotonic()
            release: float | None = None
            while time.monotonic() - started < args.busy_for:
                if requests.get(f"{url}/api/v1/status", timeout=600).json()["revision"] == sha:
                    release = time.monotonic() - started
                    break
                if process.poll() is not None:
                    raise SystemExit("the controller died: "
                                     + (work / "controller.log").read_text()[-3000:])
                round_started = time.monotonic()
                for name, path in pages.items():
                    asked_at = time.time()
                    busy[name].append(ask(url + path))
                    if answers is not None:
                        answers.write(f"{asked_at:.3f} {busy[name][-1] * 1000:.1f} {name}\n")
                # One round a second: a reader, not a load test slowing the release down.
                time.sleep(max(0.0, 1.0 - (time.monotonic() - round_started)))
            rolled = released(dev.url, "v8r2p45")
            peak = memory(process.pid)["VmHWM"]
            after_rss = memory(process.pid)["VmRSS"]
            stop_process(process)  # validate and diff below have the CPU to themselves

            validate_in = timed(lambda: loading.load_desired_state(
                directory.read_directory(repo)[0], revision="bench"))
            client = marathon.MarathonClient(marathon.ClientSettings(urls=(dev.url,),
                                                                     timeout=600))

            def diff() -> None:
                found, rev = directory.read_directory(repo)
                diffing.diff_apps(loading.load_desired_state(found, revision=rev),
                                  client.list_apps())

            diff_in = timed(diff)
            client.close()
            floor_seconds = timed(lambda: floor(repo))
            validate_cli = cli("validate", str(repo))
            diff_cli = cli("diff", "--marathon", dev.url, str(repo))
        finally:
            if process is not None:
                stop_process(process)
            dev.stop()

    print(f"{args.apps} apps; first sync (all already in Marathon): {first_sync:.1f} s, "
          f"pages showing it {board_ready:.1f} s later")
    if release is not None:
        print(f"full reconcile (image bump of every app): {release:.1f} s")
    else:
        print(f"full reconcile (image bump of every app): still rolling after "
              f"{args.busy_for:.0f} s, {rolled} of {args.apps} apps on the new tag; the pages "
              "below were asked during it")
    for name in pages:
        print(f"idle   {name:20} {figures(idle[name])}")
    for name in pages:
        print(f"busy   {name:20} {figures(busy[name])}")
    print(f"floor: read every file + C YAML loader:   {floor_seconds:6.2f} s")
    print(f"validate in process:                      {validate_in:6.2f} s "
          f"({validate_in / floor_seconds:.1f}x floor)")
    print(f"diff in process (+ GET /v2/apps):         {diff_in:6.2f} s "
          f"({diff_in / floor_seconds:.1f}x floor)")
    print(f"reconciler validate (CLI, wall):          {validate_cli:6.2f} s")
    print(f"reconciler diff (CLI, wall):              {diff_cli:6.2f} s")
    # /proc counts in KiB; the figures are MB (10^6 bytes), as the target is stated.
    print(f"resident memory idle: {idle_rss * 1024 / 1e6:.0f} MB")
    print(f"resident memory at the end of the release window: {after_rss * 1024 / 1e6:.0f} MB")
    print(f"peak RSS: {peak * 1024 / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
