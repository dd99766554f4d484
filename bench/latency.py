"""Benchmark: from a pushed commit (or a tag pushed to a registry) to the first write Marathon
receives: webhook, polling, and the registry watch.

    python bench/latency.py [--commits 10] [--poll-interval 5] [--registry-interval 5]

Everything is real and local: the dev cluster subprocess, a bare Git repository served by
``git daemon`` (``git://``), and ``reconciler run`` as a subprocess reading it. Each commit
changes the instance count of one app (one scale, one ``PUT /v2/apps/...``), is pushed to the
bare repo, and then:

- webhook: a GitLab push webhook is posted to the controller right after the push (the
  controller polls every 60 s, so only the webhook can explain a fast write);
- polling: nothing is posted; the controller polls every ``--poll-interval`` seconds. The
  commits are spread at random over the poll period (fixed seed), so the figure includes
  the wait for the next poll, as users see it.

- registry: no commit by hand: a new ``v8r2pN`` tag is pushed to a real Distribution
  registry (Debian's ``docker-registry``, started here like the tests do) through its HTTP
  API; the controller checks the registry every ``--registry-interval`` seconds, commits the
  bump to the config repo (a file URL: the bench's ``git daemon`` takes no pushes) and polls
  Git at once. Pushes are spread at random over the registry interval, so the wait for the
  next registry check is included. Start: the manifest ``PUT`` returned.

Start: the moment ``git push`` returned (the commit is in the remote). End: the
``timestamp`` of the dev cluster's ``api_post_event`` for the app (its event stream, followed
from here), i.e. when Marathon received the write. Same machine, same clock. Between commits
the bench waits until the controller reports the revision synced and the deployment ended.
Prints median, p95, min and max per mode.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import git
import requests
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from reconciler.devcluster import launch  # noqa: E402
from reconciler.shell import marathon, ports  # noqa: E402
from testbed import apps, gitrepos, processes, registries  # noqa: E402

APP = "/bench/latency/catalog"
REGISTRY_REPOSITORY = "lhcb/lhcbdirac"
SECRET = "bench-webhook-secret"


def repo_files(instances: int, *, registry: registries.Registry | None = None
               ) -> dict[str, str]:
    app = apps.fast_app(APP, instances=instances, grace=1)
    app.pop("healthChecks")  # a scale is done when tasks run: quick rounds
    image: dict[str, object] = {"repository": "lhcbdirac", "tag": "v8r2p44"}
    if registry is not None:
        host = registry.url.split("://", 1)[1]
        image = {"repository": f"{host}/{REGISTRY_REPOSITORY}", "tag": "v8r2p44",
                 "update": {"registry": registry.url, "order": "lhcbdirac"}}
    return {
        APP.strip("/") + ".yaml": yaml.safe_dump(app),
        "images.yaml": yaml.safe_dump({"images": {"dirac": image}}),
        "reconciler.yaml": yaml.safe_dump({"managedPrefixes": ["/bench"]}),
    }


class Writes:
    """``api_post_event`` timestamps for the app, from the dev cluster's event stream."""

    def __init__(self, url: str) -> None:
        self._client = marathon.MarathonClient(marathon.ClientSettings(urls=(url,), retries=0))
        self._seen: list[float] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for event in self._client.events(event_types=("api_post_event",),
                                             idle_timeout=None):
                definition = event.data.get("appDefinition") or {}
                if definition.get("id") == APP:
                    at = dt.datetime.fromisoformat(str(event.data["timestamp"])).timestamp()
                    with self._lock:
                        self._seen.append(at)
        except marathon.MarathonError:
            return  # the dev cluster stopped: the bench is over (or failed, and says so)

    def first_after(self, start: float, *, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                later = [t for t in self._seen if t >= start]
            if later:
                return min(later)
            time.sleep(0.005)
        raise TimeoutError(f"no write to {APP} reached Marathon within {timeout:.0f}s")


class Controller:
    """``reconciler run`` as a subprocess."""

    def __init__(self, root: Path, *, marathon_url: str, repo_url: str,
                 poll_interval: float, registry_interval: float = 600.0) -> None:
        port = ports.free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = processes.run_env(
            marathon_url=marathon_url, repo_url=repo_url, state_dir=root / "state", port=port,
            POLL_INTERVAL=str(poll_interval), REGISTRY_INTERVAL=str(registry_interval),
            DRIFT_INTERVAL="600", WEBHOOK_SECRET=SECRET, LOG_LEVEL="WARNING")
        for name in ("RECONCILER_NOTIFY_WEBHOOK_URL", "RECONCILER_SENTRY_DSN",
                     "RECONCILER_DATABASE_URL"):
            env.pop(name, None)
        root.mkdir(parents=True, exist_ok=True)
        with open(root / "controller.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "reconciler", "run"], env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
        processes.wait_for_http(f"{self.url}/healthz", timeout=60, process=self.process)

    def synced(self) -> str | None:
        revision = requests.get(f"{self.url}/api/v1/status", timeout=10).json()["revision"]
        return str(revision) if revision else None

    def webhook(self) -> None:
        requests.post(f"{self.url}/webhooks/gitlab", json={"ref": "refs/heads/main"},
                      headers={"X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Push Hook"},
                      timeout=10).raise_for_status()

    def stop(self) -> None:
        processes.stop_process(self.process)


def wait_until(what: str, condition: Callable[[], bool], *, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def settled(marathon_url: str, instances: int) -> bool:
    app = apps.live_apps(marathon_url).get(APP)
    return bool(app) and not app.get("deployments") and app["instances"] == instances and \
        app.get("tasksRunning", 0) == instances


def measure(controller: Controller, upstream: gitrepos.Upstream, writes: Writes, *,
            marathon_url: str, commits: int, webhook: bool, spread: float, rng: random.Random,
            start_instances: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    instances = start_instances
    for number in range(commits):
        if spread:
            time.sleep(rng.uniform(0, spread))
        instances = 2 if instances == 1 else 1
        sha = upstream.commit(repo_files(instances), message=f"bench commit {number}")
        pushed = time.time()
        if webhook:
            controller.webhook()
        written = writes.first_after(pushed, timeout=180)
        latencies.append(written - pushed)
        wait_until("the commit to be synced", lambda s=sha: controller.synced() == s)
        wait_until("the scale to settle", lambda n=instances: settled(marathon_url, n))
    return latencies, instances


def measure_registry(controller: Controller, upstream: gitrepos.Upstream, writes: Writes,
                     registry: registries.Registry, *, marathon_url: str, tags: int,
                     spread: float, rng: random.Random, instances: int) -> list[float]:
    """Push ``v8r2p45``, ``v8r2p46``... to the registry; each must reach Marathon."""
    latencies: list[float] = []
    repo = git.Repo(upstream.bare)
    for number in range(tags):
        time.sleep(rng.uniform(0, spread))
        tag = f"v8r2p{45 + number}"
        registry.push(REGISTRY_REPOSITORY, tag)
        pushed = time.time()
        written = writes.first_after(pushed, timeout=180)
        latencies.append(written - pushed)
        head = repo.head.commit
        if tag not in head.message:
            raise RuntimeError(f"the newest commit is not the bump to {tag}: {head.message}")
        wait_until("the bump to be synced", lambda s=head.hexsha: controller.synced() == s)
        wait_until("the upgrade to settle", lambda: settled(marathon_url, instances))
    return latencies


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = statistics.quantiles(ordered, n=20, method="inclusive")[18] if len(ordered) > 1 \
        else ordered[0]
    return (f"median {statistics.median(ordered) * 1000:7.0f} ms   p95 {p95 * 1000:7.0f} ms   "
            f"min {ordered[0] * 1000:6.0f} ms   max {ordered[-1] * 1000:6.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=10, help="commits per mode")
    parser.add_argument("--poll-interval", type=float, default=5.0,
                        help="RECONCILER_POLL_INTERVAL of the polling mode (seconds)")
    parser.add_argument("--registry-interval", type=float, default=5.0,
                        help="RECONCILER_REGISTRY_INTERVAL of the registry mode (seconds)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="reconciler-latency-") as tmp:
        root = Path(tmp)
        dev = launch.launch(state_dir=root / "devcluster")
        served: gitrepos.ServedGit | None = None
        controller: Controller | None = None
        try:
            upstream = gitrepos.Upstream.create(root / "git", repo_files(1), message="bench start")
            served = gitrepos.ServedGit(upstream.bare.parent, root / "git-daemon.log").start()
            repo_url = f"{served.url}/{upstream.bare.name}"
            writes = Writes(dev.url)
            results: dict[str, list[float]] = {}
            instances = 1
            for mode, poll, webhook, spread in (
                    ("webhook", 60.0, True, 0.0),
                    ("polling", args.poll_interval, False, args.poll_interval)):
                controller = Controller(root / mode, marathon_url=dev.url, repo_url=repo_url,
                                        poll_interval=poll)
                wait_until("the first sync", lambda c=controller: c.synced() is not None)
                wait_until("the app to settle", lambda n=instances: settled(dev.url, n))
                results[mode], instances = measure(
                    controller, upstream, writes, marathon_url=dev.url, commits=args.commits,
                    webhook=webhook, spread=spread, rng=rng, start_instances=instances)
                controller.stop()
                controller = None
            with registries.running_registry() as registry:
                registry.push(REGISTRY_REPOSITORY, "v8r2p44")
                upstream.commit(repo_files(instances, registry=registry),
                                message="bench: follow the registry")
                controller = Controller(root / "registry", marathon_url=dev.url,
                                        repo_url=upstream.url, poll_interval=60.0,
                                        registry_interval=args.registry_interval)
                wait_until("the first sync", lambda c=controller: c.synced() is not None)
                wait_until("the app to settle", lambda n=instances: settled(dev.url, n))
                results["registry"] = measure_registry(
                    controller, upstream, writes, registry, marathon_url=dev.url,
                    tags=args.commits, spread=args.registry_interval, rng=rng,
                    instances=instances)
                controller.stop()
                controller = None
            print(f"commit-to-first-Marathon-write latency, {args.commits} commits per mode "
                  "(git push returned -> api_post_event timestamp at the dev cluster)")
            print(f"  webhook (poll interval 60 s):  {summary(results['webhook'])}")
            print(f"  polling (poll interval {args.poll_interval:g} s): "
                  f"{summary(results['polling'])}")
            print(f"registry-push-to-first-Marathon-write latency, {args.commits} tags "
                  "(manifest PUT returned -> api_post_event timestamp at the dev cluster)")
            print(f"  registry (registry interval {args.registry_interval:g} s): "
                  f"{summary(results['registry'])}")
            print("summary: median commit/tag -> Marathon write: " + ", ".join(
                f"{mode} {statistics.median(values) * 1000:.0f} ms"
                for mode, values in results.items()))
        finally:
            if controller is not None:
                controller.stop()
            if served is not None:
                served.stop()
            dev.stop()


if __name__ == "__main__":
    main()
