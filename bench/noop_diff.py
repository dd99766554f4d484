"""Benchmark: a no-op diff of 10,000 apps against live, relative to ``json.loads``.

Builds 10,000 desired apps (variants of the DIRAC services), makes Marathon hold them, reads
them back with ONE ``GET /v2/apps`` and diffs (desired equal to live, so every app must come
out no-op). Live comes from a real Marathon-compatible server when ``--marathon URL`` is given
(the dev cluster: apps are PUT with ``instances: 0`` so nothing runs), otherwise from a local
HTTP server serving the payload Marathon would return (defaults filled in, service ports
assigned, read-only fields present). Prints the figures, and as its LAST line the ratio of
(fetch + parse + normalize + diff) to ``json.loads`` of the same payload, e.g. ``ratio: 2.1x``.

    .venv/bin/python bench/noop_diff.py [--apps 10000] [--repeat 5] [--marathon URL]
"""

from __future__ import annotations

import argparse
import http.server
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.core import diff as diffing  # noqa: E402
from reconciler.core import model  # noqa: E402

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
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
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
    for start in range(0, len(apps), 500):
        batch = apps[start:start + 500]
        response = requests.put(f"{url}/v2/apps", json=batch, timeout=120,
                                params={"force": "true"})
        response.raise_for_status()


def best(samples: list[float]) -> float:
    return min(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--marathon", help="a Marathon-compatible URL to hold the apps")
    args = parser.parse_args()

    definitions = [desired_app(i, instances=0) for i in range(args.apps)]
    desired = model.DesiredState(
        revision="bench",
        apps={a["id"]: model.DesiredApp(app_id=a["id"], definition=a, source_path="bench")
              for a in definitions},
        images={}, settings=model.RepoSettings(managed_prefixes=("/bench",)))
    stop: Callable[[], None] | None = None
    if args.marathon:
        url = args.marathon.rstrip("/")
        source = f"Marathon at {url}"
        load_into_marathon(url, definitions)
    else:
        live = [as_live(a, service_port=10000 + i) for i, a in enumerate(definitions)]
        url, stop = serve(json.dumps({"apps": live}).encode())
        source = "local server (Marathon-shaped payload)"
    session = requests.Session()
    try:
        fetch_parse, normalize_diff, loads = [], [], []
        payload = b""
        for _ in range(args.repeat):
            start = time.perf_counter()
            response = session.get(f"{url}/v2/apps", params={"id": "/bench"}, timeout=120)
            response.raise_for_status()
            payload = response.content
            live_apps = orjson.loads(payload)["apps"]
            fetched = time.perf_counter()
            diffs = diffing.diff_apps(desired, live_apps)
            done = time.perf_counter()
            fetch_parse.append(fetched - start)
            normalize_diff.append(done - fetched)
            start = time.perf_counter()
            json.loads(payload)
            loads.append(time.perf_counter() - start)
            actions = {str(d.action) for d in diffs}
            if actions != {"no-op"} or len(diffs) != args.apps:
                raise SystemExit(f"not a no-op diff: {actions}, {len(diffs)} apps")
    finally:
        session.close()
        if stop is not None:
            stop()
    ours = best(fetch_parse) + best(normalize_diff)
    print(f"live from: {source}; {args.apps} apps, payload {len(payload) / 1e6:.1f} MB, "
          f"best of {args.repeat}")
    print(f"fetch + parse (1 request, orjson): {best(fetch_parse) * 1000:8.1f} ms "
          f"(median {statistics.median(fetch_parse) * 1000:.1f})")
    print(f"normalize + diff (both sides):     {best(normalize_diff) * 1000:8.1f} ms "
          f"(median {statistics.median(normalize_diff) * 1000:.1f})")
    print(f"total:                             {ours * 1000:8.1f} ms")
    print(f"json.loads of the same payload:    {best(loads) * 1000:8.1f} ms "
          f"(median {statistics.median(loads) * 1000:.1f})")
    print(f"ratio: {ours / best(loads):.1f}x")


if __name__ == "__main__":
    main()
