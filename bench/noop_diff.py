"""Benchmark: the controller's recurring drift check of 10,000 apps, relative to ``json.loads``.

Builds 10,000 desired apps (variants of the DIRAC services), makes Marathon hold them, and
runs the drift check as ``reconciler run`` does, with the controller's own parts: the live
cache (:class:`reconciler.shell.livecache.LiveCache`) reads Marathon with ONE ``GET /v2/apps``
(embedding tasks, deployments and the last failure, as the controller asks), and
:meth:`reconciler.shell.driftcheck.DriftCheck.observe_all` judges every app against its
baseline (desired equal to live, so no app may come out drifted) with a real record store.
By default live is the real dev cluster, started here as a subprocess on a free port and
stopped at the end (apps are PUT with ``instances: 0`` so nothing runs); ``--marathon URL``
uses a running Marathon-compatible server instead, and ``--synthetic`` a local HTTP server
serving a hand-written Marathon-shaped payload.

Each repeat times, with the garbage collector on but emptied first (as for the baseline):

- resync: the live cache's ``GET /v2/apps`` (fetch and parse; the controller does it at
  start, after a gap in Marathon's event stream and every RECONCILER_RESYNC_INTERVAL);
- drift check: ``observe_all`` on what the cache holds (what runs every drift interval and
  after every event; between resyncs that is all a no-op check costs, no request);
- first diff of a revision: ``diff_apps`` on a NEW desired state (normalizes both sides and
  compares: what a new commit costs once);
- ``json.loads`` of the same payload (the floor).

The first drift check of the run (memo empty: normalizes both sides) is printed apart.
Prints medians with min-max, and as its LAST line the ratio of the recurring no-op check at
a resync (resync + drift check) to ``json.loads``, e.g. ``ratio: 1.1x``.

    .venv/bin/python bench/noop_diff.py [--apps 10000] [--repeat 5]
                                        [--marathon URL | --synthetic]
"""

from __future__ import annotations

import argparse
import gc
import http.server
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.core import diff as diffing
from reconciler.core import model
from reconciler.devcluster import launch
from reconciler.shell import driftcheck, livecache, marathon, records
from testbed.bigrepo import SERVICES


def desired_app(index: int, *, instances: int) -> model.JSON:
    """One app as a user writes it (image already resolved)."""
    group, name, component, port = SERVICES[index % len(SERVICES)]
    app_id = f"/bench/site{index // len(SERVICES):04d}/{group}/{name}"
    return {
        "id": app_id,
        "instances": instances,
        "cpus": 0.1,
        "mem": 256,
        "args": ["dirac-service", component],
        "container": {
            "type": "DOCKER",
            "docker": {"image": "lhcbdirac:v8r2p44"},
            "portMappings": [{"name": "dips", "containerPort": port, "hostPort": 0,
                              "servicePort": 0}],
        },
        "networks": [{"mode": "container/bridge"}],
        "env": {"DIRAC_SETUP": "LHCb-Certification", "DIRAC_COMPONENT": component},
        "labels": {"team": "lhcb-dirac", "site": f"site{index // len(SERVICES):04d}"},
        "constraints": [["hostname", "MAX_PER", "2"]],
        "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/", "portIndex": 0,
                          "gracePeriodSeconds": 10, "intervalSeconds": 2, "timeoutSeconds": 2}],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
    }


def as_live(app: model.JSON, *, service_port: int) -> model.JSON:
    """What Marathon 1.10 returns for ``app`` in GET /v2/apps (written out, not computed)."""
    mapping = app["container"]["portMappings"][0]
    check = app["healthChecks"][0]
    return {
        "id": app["id"], "args": app["args"], "backoffFactor": 1.15, "backoffSeconds": 1,
        "constraints": app["constraints"],
        "container": {
            "type": "DOCKER",
            "docker": {"forcePullImage": False, "image": app["container"]["docker"]["image"],
                       "parameters": [], "privileged": False},
            "volumes": [],
            "portMappings": [{"containerPort": mapping["containerPort"], "hostPort": 0,
                              "labels": {}, "name": mapping["name"], "protocol": "tcp",
                              "servicePort": service_port}],
        },
        "cpus": app["cpus"], "disk": 0, "env": app["env"], "executor": "",
        "instances": app["instances"], "labels": app["labels"], "maxLaunchDelaySeconds": 300,
        "mem": float(app["mem"]), "gpus": 0, "networks": [{"mode": "container/bridge"}],
        "requirePorts": False,
        "upgradeStrategy": {"maximumOverCapacity": 0.2, "minimumHealthCapacity": 0.5},
        "version": "2024-03-04T10:11:12.131Z",
        "versionInfo": {"lastScalingAt": "2024-03-04T10:11:12.131Z",
                        "lastConfigChangeAt": "2024-03-04T10:11:12.131Z"},
        "killSelection": "YOUNGEST_FIRST",
        "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
        "tasksStaged": 0, "tasksRunning": 0, "tasksHealthy": 0, "tasksUnhealthy": 0,
        "healthChecks": [{**check, "maxConsecutiveFailures": 3, "delaySeconds": 15,
                          "ipProtocol": "IPv4"}],
        "fetch": [], "dependencies": [], "readinessChecks": [], "secrets": {},
        "deployments": [], "role": "*",
    }


def serve(payload: bytes) -> tuple[str, Callable[[], None]]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}", stop


def load_into_marathon(url: str, apps: list[model.JSON]) -> None:
    """PUT every app (instances 0: nothing runs) in batches through the bulk endpoint."""
    with requests.Session() as session:
        for start in range(0, len(apps), 500):
            batch = apps[start:start + 500]
            response = session.put(f"{url}/v2/apps", json=batch, timeout=120,
                                   params={"force": "true"})
            response.raise_for_status()
        # Measure a settled Marathon: no deployment left changing what GET /v2/apps returns.
        deadline = time.monotonic() + 60
        while session.get(f"{url}/v2/deployments", timeout=30).json():
            if time.monotonic() > deadline:
                raise SystemExit("deployments of the bench apps did not finish within 60 s")
            time.sleep(0.1)


@contextmanager
def live_source(args: argparse.Namespace, definitions: list[model.JSON]
                ) -> Iterator[tuple[str, str]]:
    """(URL, description) of a server holding ``definitions``; stopped at the end."""
    if args.synthetic:
        live = [as_live(a, service_port=10000 + i) for i, a in enumerate(definitions)]
        url, stop = serve(json.dumps({"apps": live}).encode())
        try:
            yield url, "local server (hand-written Marathon-shaped payload)"
        finally:
            stop()
    elif args.marathon:
        url = args.marathon.rstrip("/")
        load_into_marathon(url, definitions)
        yield url, f"Marathon at {url}"
    else:
        with tempfile.TemporaryDirectory(prefix="noop-diff-") as work:
            cluster = launch.launch(state_dir=Path(work) / "devcluster")
            try:
                load_into_marathon(cluster.url, definitions)
                yield cluster.url, f"dev cluster started here ({cluster.url})"
            finally:
                cluster.stop()


def timed(work: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``work(*args, **kwargs)``, and its duration after emptying the collector's generations.

    The collector stays on (as in production), but garbage left by the previous step is not
    charged to this one; the baseline is timed the same way.
    """
    gc.collect()
    start = time.perf_counter()
    result = work(*args, **kwargs)
    return result, time.perf_counter() - start


def new_state(definitions: list[model.JSON]) -> model.DesiredState:
    """A fresh desired state object: nothing of it is normalized yet."""
    return model.DesiredState(
        revision="bench",
        apps={a["id"]: model.DesiredApp(app_id=a["id"], definition=a, source_path="bench")
              for a in definitions},
        images={}, settings=model.RepoSettings(managed_prefixes=("/bench",)))


def check_noop(diffs: tuple[model.AppDiff, ...], apps: int) -> None:
    actions = {str(d.action) for d in diffs}
    if actions != {"no-op"} or len(diffs) != apps:
        raise SystemExit(f"not a no-op diff: {actions}, {len(diffs)} apps")


@dataclass
class Check:
    """The controller's drift-check parts, wired as in ``reconciler run``."""

    cache: livecache.LiveCache
    drift: driftcheck.DriftCheck
    desired: model.DesiredState
    baselines: dict[str, model.JSON]

    def run(self) -> dict[str, int]:
        live = self.cache.cached()
        assert live is not None
        return self.drift.observe_all(desired=self.desired, baselines=self.baselines,
                                      live=live)


def one_repeat(check: Check, definitions: list[model.JSON], payload: bytes
               ) -> tuple[float, float, float, float, float]:
    """Seconds for: resync, its CPU time in this process, drift check, first diff of a
    revision, ``json.loads``."""
    gc.collect()
    cpu, started = time.thread_time(), time.perf_counter()
    check.cache.resync()
    resync, resync_cpu = time.perf_counter() - started, time.thread_time() - cpu
    drifted, recurring = timed(check.run)
    if drifted:
        raise SystemExit(f"not a no-op drift check: {sorted(drifted)[:5]}")
    live = check.cache.cached()
    assert live is not None
    diffs, first_diff = timed(diffing.diff_apps, new_state(definitions), live.all())
    check_noop(diffs, len(definitions))
    del diffs, live  # their garbage is not the baseline's to collect
    _, loads = timed(json.loads, payload)
    return resync, resync_cpu, recurring, first_diff, loads


def ms(samples: list[float]) -> str:
    return (f"{statistics.median(samples) * 1000:8.1f} ms (min {min(samples) * 1000:.1f}, "
            f"max {max(samples) * 1000:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--marathon", help="a running Marathon-compatible URL to hold the apps "
                                          "(default: start the dev cluster here)")
    where.add_argument("--synthetic", action="store_true",
                       help="serve a hand-written Marathon-shaped payload from this process")
    args = parser.parse_args()

    definitions = [desired_app(i, instances=0) for i in range(args.apps)]
    with live_source(args, definitions) as (url, source), \
            tempfile.TemporaryDirectory(prefix="noop-diff-state-") as state:
        response = requests.get(f"{url}/v2/apps", timeout=120,
                                params=[("embed", e) for e in marathon.LIVE_EMBED])
        response.raise_for_status()
        payload = response.content
        client = marathon.MarathonClient(marathon.ClientSettings(urls=(url,), timeout=120))
        store = records.open_store(Path(state))
        desired = new_state(definitions)
        check = Check(
            cache=livecache.LiveCache(client, resync_interval=600, on_write=lambda *_: None),
            drift=driftcheck.DriftCheck(store=store, flap_threshold=3, flap_window=600,
                                        clock=time.time),
            desired=desired,
            baselines={a: app.definition for a, app in desired.apps.items()})
        try:
            check.cache.resync()
            drifted, first_check = timed(check.run)
            if drifted:
                raise SystemExit(f"not a no-op drift check: {sorted(drifted)[:5]}")
            samples = [one_repeat(check, definitions, payload) for _ in range(args.repeat)]
        finally:
            client.close()
            store.close()
    resync, resync_cpu, recurring, first_diff, loads = (
        list(s) for s in zip(*samples, strict=True))
    baseline = statistics.median(loads)
    at_resync = statistics.median(resync) + statistics.median(recurring)
    print(f"live from: {source}; {args.apps} apps, payload {len(payload) / 1e6:.1f} MB, "
          f"{args.repeat} repeats (median, min-max)")
    print(f"resync (GET /v2/apps: fetch + parse):          {ms(resync)}")
    print(f"  of which this process's CPU (receive, parse): {ms(resync_cpu)}")
    print(f"drift check from the cache (memo warm):        {ms(recurring)}")
    print(f"first drift check of the run (memo empty):     {first_check * 1000:8.1f} ms")
    print(f"first diff of a revision (normalize + diff):   {ms(first_diff)}")
    print(f"json.loads of the same payload:                {ms(loads)}")
    print(f"between resyncs, a no-op check: {statistics.median(recurring) * 1000:.1f} ms, "
          f"no request ({statistics.median(recurring) / baseline:.2f}x json.loads)")
    print(f"first diff of a revision: fetch + parse + normalize + diff "
          f"{(statistics.median(resync) + statistics.median(first_diff)) * 1000:.1f} ms "
          f"({(statistics.median(resync) + statistics.median(first_diff)) / baseline:.1f}x)")
    own = statistics.median(resync_cpu) + statistics.median(recurring)
    print(f"at a resync, the controller's own CPU (resync in this process + drift check): "
          f"{own * 1000:.1f} ms ({own / baseline:.2f}x json.loads)")
    print(f"at a resync, a no-op check: resync + drift check {at_resync * 1000:.1f} ms wall "
          "(Marathon's time to answer included)")
    print(f"ratio: {at_resync / baseline:.2f}x")


if __name__ == "__main__":
    main()
