"""Benchmark: a no-op diff of 10,000 apps against live, relative to ``json.loads``.

Builds 10,000 desired apps (variants of the DIRAC services), makes Marathon hold them, reads
them back with ONE ``GET /v2/apps`` through the controller's own client
(``MarathonClient.list_apps``) and diffs with ``diff_apps`` (desired equal to live, so every
app must come out no-op). By default live is the real dev cluster, started here as a
subprocess on a free port and stopped at the end (apps are PUT with ``instances: 0`` so
nothing runs); ``--marathon URL`` uses a running Marathon-compatible server instead, and
``--synthetic`` a local HTTP server serving a hand-written Marathon-shaped payload.

Each repeat times, with the garbage collector on but emptied first (as for the baseline):
fetch + parse, then ``diff_apps`` on a NEW ``DesiredState`` object (a first diff of a revision:
normalizes desired and live, then diffs), then ``diff_apps`` again on the SAME object (every
later poll of that revision: desired comes normalized from the core's memo), then
``json.loads`` of the same payload. Prints the figures (best of the repeats, medians in
brackets), and as its LAST line the ratio of the first diff of a revision, the whole work
(fetch + parse + normalize both sides + diff), to ``json.loads``, e.g. ``ratio: 2.1x``.

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
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.core import diff as diffing
from reconciler.core import model
from reconciler.devcluster import launch
from reconciler.shell import marathon

SERVICES = [
    ("configuration", "server", "Configuration/Server", 9135),
    ("datamanagement", "filecatalog", "DataManagement/FileCatalog", 9197),
    ("datamanagement", "ftsmanager", "DataManagement/FTS3Manager", 9193),
    ("requestmanagement", "reqmanager", "RequestManagement/ReqManager", 9140),
    ("requestmanagement", "executor", "RequestManagement/RequestExecutingAgent", 8080),
    ("bookkeeping", "server", "Bookkeeping/BookkeepingManager", 9167),
    ("web", "portal", "WebApp", 8443),
]


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


def one_repeat(client: marathon.MarathonClient, definitions: list[model.JSON],
               payload: bytes) -> tuple[float, float, float, float]:
    """Seconds for: fetch + parse, first diff of a revision, a later diff, ``json.loads``."""
    desired = new_state(definitions)
    live_apps, fetch_parse = timed(client.list_apps, prefix="/bench")
    diffs, first_diff = timed(diffing.diff_apps, desired, live_apps)
    check_noop(diffs, len(definitions))
    diffs, later_diff = timed(diffing.diff_apps, desired, live_apps)
    check_noop(diffs, len(definitions))
    del diffs, live_apps, desired  # their garbage is not the baseline's to collect
    _, loads = timed(json.loads, payload)
    return fetch_parse, first_diff, later_diff, loads


def ms(samples: list[float]) -> str:
    return f"{min(samples) * 1000:8.1f} ms (median {statistics.median(samples) * 1000:.1f})"


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
    with live_source(args, definitions) as (url, source):
        response = requests.get(f"{url}/v2/apps", params={"id": "/bench"}, timeout=120)
        response.raise_for_status()
        payload = response.content
        client = marathon.MarathonClient(marathon.ClientSettings(urls=(url,), timeout=120))
        try:
            samples = [one_repeat(client, definitions, payload) for _ in range(args.repeat)]
        finally:
            client.close()
    fetch_parse, first_diff, later_diff, loads = (list(s) for s in zip(*samples, strict=True))
    baseline = min(loads)
    first = min(fetch_parse) + min(first_diff)
    later = min(fetch_parse) + min(later_diff)
    print(f"live from: {source}; {args.apps} apps, payload {len(payload) / 1e6:.1f} MB, "
          f"best of {args.repeat}")
    print(f"fetch + parse (list_apps, 1 request):    {ms(fetch_parse)}")
    print(f"normalize desired + live, diff:          {ms(first_diff)}")
    print(f"normalize live, diff (desired memoized): {ms(later_diff)}")
    print(f"json.loads of the same payload:          {ms(loads)}")
    print(f"later polls of the revision: {later * 1000:.1f} ms, "
          f"ratio {later / baseline:.1f}x")
    print(f"first diff of a revision:    {first * 1000:.1f} ms (fetch + parse + normalize + diff)")
    print(f"ratio: {first / baseline:.1f}x")


if __name__ == "__main__":
    main()
