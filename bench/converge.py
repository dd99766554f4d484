"""Benchmark: converge 20 changed apps with reconciler and with marathon-deploy 3.0.2 (PyPI).

    python bench/converge.py [--apps 20] [--parallel 8] [--repeat 3] [--warmup 3]

Same dev cluster, same definitions: the apps are created once (not measured), then in each
repeat every app gets a new image tag twice, once applied by ``marathon-deploy --put DIR``
(its JSON files are reconciler's own resolved desired definitions) and once by ``reconciler
sync``; the tool that goes first alternates between repeats. Each is one rolling upgrade of
every app. The apps have an HTTP health check, and their stand-in process (the dev cluster's
``standin --warmup``) listens only ``--warmup`` seconds after it starts: a task becomes healthy
a few seconds after launch, as a real service does, so both tools wait for real health.
Prints each tool's wall time per repeat, the median and the spread (min-max) of both.

Requests are counted at the cluster side by a counting proxy (``testbed/counting_proxy.py``)
that both tools talk to; the dev cluster itself is reached directly only for setup and
checks. The last line is the speed-up: marathon-deploy's median wall time divided by
reconciler's.

marathon-deploy cannot run on Python 3.11 (see :data:`MARATHON_DEPLOY_WHY_NOT_311`), so it
is installed from PyPI into its own virtualenv under /tmp on Python 3.9 (found on PATH, in
pyenv, or given as $MARATHON_DEPLOY_PYTHON); reconciler runs on the project's Python. It is
driven as its README says: ``marathon-deploy -m URL --put DIR``, answering its ``YES`` prompt.
It deploys one file after the other and polls ``/v2/deployments`` every 0.5 s, then waits a
fixed 3 s "grace time" per app; when a deployment ends before it looks, it takes that for a
failure and restarts the app (``POST /v2/apps/{id}/restart`` in its counts).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from reconciler.core import load as loading  # noqa: E402
from reconciler.devcluster import launch  # noqa: E402
from reconciler.shell import directory  # noqa: E402
from testbed.counting_proxy import CountingProxy  # noqa: E402

MARATHON_DEPLOY_VERSION = "3.0.2"
MARATHON_DEPLOY_WHY_NOT_311 = (
    "marathon-deploy 3.0.2 needs the `marathon` client library, whose last release (0.13.0, "
    "2020) serializes every app with `collections.Iterable` (marathon/util.py), removed in "
    "Python 3.10: on 3.11 every create/update dies with AttributeError: module 'collections' "
    "has no attribute 'Iterable'."
)


def find_python39() -> str | None:
    """An interpreter marathon-deploy still runs on (3.9), if this machine has one."""
    explicit = os.environ.get("MARATHON_DEPLOY_PYTHON")
    if explicit:
        return explicit
    candidates = [*sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.9*/bin/python"))),
                  shutil.which("python3.9")]
    for candidate in candidates:
        # pyenv shims exist for versions that are not enabled: only a working one counts.
        if candidate and subprocess.run([candidate, "-c", "pass"],
                                        capture_output=True).returncode == 0:
            return candidate
    return None


def marathon_deploy_command(python: str) -> list[str]:
    """marathon-deploy from PyPI, in its own virtualenv under /tmp (keyed by interpreter)."""
    version = subprocess.run([python, "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    venv = (Path(tempfile.gettempdir())
            / f"reconciler-bench-marathon-deploy-{MARATHON_DEPLOY_VERSION}-py{version}")
    executable = venv / "bin" / "marathon-deploy"
    if not executable.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q",
                        f"marathon-deploy=={MARATHON_DEPLOY_VERSION}"], check=True)
    return [str(executable)]


def installed_version(command: list[str]) -> str:
    """The marathon-deploy version in its virtualenv, as pip reports it."""
    pip = Path(command[0]).parent / "pip"
    shown = subprocess.run([str(pip), "show", "marathon-deploy"], capture_output=True,
                           text=True, check=True).stdout
    return next((line.split(":", 1)[1].strip() for line in shown.splitlines()
                 if line.startswith("Version:")), "unknown")


def catalog(path: Path, warmup: float) -> Path:
    """The dev cluster's image catalog for this run: the ``dirac`` image is a stand-in that
    listens (and so passes its health check) ``warmup`` seconds after it starts."""
    path.write_text(yaml.safe_dump({"images": [{
        "image": "lhcbdirac", "tags": "*",
        "command": f"{{python}} -m reconciler.devcluster.standin --warmup {warmup}"}]}))
    return path


def app_definition(index: int) -> dict[str, Any]:
    return {
        "id": f"/bench/group{index % 5}/app{index:03d}",
        "instances": 1,
        "cpus": 0.01,
        "mem": 16,
        "container": {"type": "DOCKER", "docker": {"image": "dirac"}},
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
                          "gracePeriodSeconds": 30, "intervalSeconds": 1,
                          "timeoutSeconds": 1, "maxConsecutiveFailures": 3}],
        "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
    }


def write_repo(root: Path, count: int, tag: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        app = app_definition(index)
        path = root / (app["id"].strip("/") + ".yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(app, sort_keys=False))
    set_tag(root, tag)


def set_tag(root: Path, tag: str) -> None:
    images = {"images": {"dirac": {"repository": "lhcbdirac", "tag": tag}}}
    (root / "images.yaml").write_text(yaml.safe_dump(images))


def write_json_definitions(repo: Path, target: Path) -> None:
    """marathon-deploy deploys JSON files: write reconciler's resolved desired apps."""
    files, revision = directory.read_directory(repo)
    desired = loading.load_desired_state(files, revision=revision)
    target.mkdir(parents=True, exist_ok=True)
    for app_id, app in sorted(desired.apps.items()):
        (target / (app_id.strip("/").replace("/", "_") + ".json")).write_text(
            json.dumps(app.definition, indent=2))


def reconciler_sync(marathon: str, repo: Path, state: Path, parallel: int) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "sync", "--marathon", marathon, str(repo),
         "--state-dir", str(state), "--parallel", str(parallel)],
        capture_output=True, text=True, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise SystemExit(f"reconciler sync failed ({result.returncode}):\n{result.stdout}"
                         f"\n{result.stderr}")


def check_converged(marathon: str, count: int, tag: str) -> None:
    deadline = time.monotonic() + 120
    done: list[Any] = []
    while time.monotonic() < deadline:
        apps = requests.get(f"{marathon}/v2/apps", params={"id": "/bench"}, timeout=10)
        listed = [a for a in apps.json()["apps"] if a["id"].startswith("/bench/")]
        done = [a for a in listed if a["container"]["docker"]["image"] == f"lhcbdirac:{tag}"
                and a.get("tasksHealthy", 0) >= a["instances"]]
        if len(done) == count and not requests.get(f"{marathon}/v2/deployments",
                                                   timeout=10).json():
            return
        time.sleep(0.2)
    raise SystemExit(f"not converged on {tag}: {len(done)}/{count} apps")


def run_marathon_deploy(command: list[str], proxy: CountingProxy, work: Path, repo: Path,
                        tag: str) -> tuple[float, dict[str, int]]:
    set_tag(repo, tag)
    target = work / f"json-{tag}"
    write_json_definitions(repo, target)
    proxy.reset()
    started = time.monotonic()
    deployed = subprocess.run([*command, "-m", proxy.url, "--put", str(target)],
                              input="YES\n", capture_output=True, text=True)
    seconds = time.monotonic() - started
    if deployed.returncode != 0:
        raise SystemExit(f"marathon-deploy failed ({deployed.returncode}):\n"
                         f"{deployed.stdout[-3000:]}\n{deployed.stderr[-3000:]}")
    return seconds, proxy.counts()


def run_reconciler(proxy: CountingProxy, repo: Path, state: Path, parallel: int,
                   tag: str) -> tuple[float, dict[str, int]]:
    set_tag(repo, tag)
    proxy.reset()
    started = time.monotonic()
    reconciler_sync(proxy.url, repo, state, parallel)
    return time.monotonic() - started, proxy.counts()


def spread(samples: list[float]) -> str:
    return (f"median {statistics.median(samples):.1f}s (min {min(samples):.1f}, "
            f"max {max(samples):.1f}; " + ", ".join(f"{s:.1f}" for s in samples) + ")")


def main() -> None:
    # A SIGTERM (a timeout, a CI cancel) must still run the cleanup below: no orphaned cluster.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds a task takes to become healthy (the stand-in's)")
    args = parser.parse_args()
    python = find_python39()
    if python is None:
        print(f"marathon-deploy cannot run here: {MARATHON_DEPLOY_WHY_NOT_311} No Python 3.9 "
              "found (set MARATHON_DEPLOY_PYTHON).")
        print("speedup: n/a")
        raise SystemExit(1)
    command = marathon_deploy_command(python)
    md_version = installed_version(command)
    times: dict[str, list[float]] = {"marathon-deploy": [], "reconciler": []}
    counts: dict[str, dict[str, int]] = {}

    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        work = Path(tmp)
        devcluster = launch.launch(state_dir=work / "devcluster",
                                   images=catalog(work / "catalog.yaml", args.warmup))
        proxy = CountingProxy(devcluster.url).start()
        try:
            repo = work / "repo"
            state = work / "state"
            write_repo(repo, args.apps, "v1")
            reconciler_sync(devcluster.url, repo, state, args.parallel)  # setup, not measured
            check_converged(devcluster.url, args.apps, "v1")
            version = 1
            for repeat in range(args.repeat):
                order = ["marathon-deploy", "reconciler"]
                if repeat % 2:
                    order.reverse()
                for tool in order:
                    version += 1
                    tag = f"v{version}"
                    if tool == "marathon-deploy":
                        seconds, counted = run_marathon_deploy(command, proxy, work, repo, tag)
                    else:
                        seconds, counted = run_reconciler(proxy, repo, state, args.parallel,
                                                          tag)
                    check_converged(devcluster.url, args.apps, tag)
                    times[tool].append(seconds)
                    counts[tool] = counted
                    print(f"repeat {repeat + 1}: {tool}: {seconds:.1f}s", flush=True)
        finally:
            proxy.stop()
            devcluster.stop()

    print(f"apps changed: {args.apps} (one rolling upgrade each, health check, healthy "
          f"{args.warmup:g}s after start), reconciler --parallel {args.parallel}, "
          f"marathon-deploy {md_version} on {python}, {args.repeat} repeats, order alternating")
    print(f"note: {MARATHON_DEPLOY_WHY_NOT_311}")
    for tool in ("marathon-deploy", "reconciler"):
        detail = ", ".join(f"{k}: {v}" for k, v in counts[tool].items())
        print(f"{tool}: {spread(times[tool])}; requests of the last run: "
              f"{sum(counts[tool].values())} ({detail})")
    ratios = [m / r for m, r in zip(times["marathon-deploy"], times["reconciler"], strict=True)]
    print("speed-up per repeat: " + ", ".join(f"{x:.1f}x" for x in ratios))
    speedup = statistics.median(times["marathon-deploy"]) / statistics.median(times["reconciler"])
    print(f"speedup: {speedup:.1f}x")


if __name__ == "__main__":
    main()
