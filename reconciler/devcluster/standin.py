"""The stand-in for the example ``lhcbdirac`` image: a tiny service on every port it was given.

It answers HTTP 200 with a small JSON body on any path, on each port in ``$PORTS`` (or
``$PORT0``), so Marathon-style HTTP and TCP health checks pass. With ``--never-ready`` it starts
and stays up but never listens: the shape of a broken release whose health checks never pass.
With ``--warmup SECONDS`` it listens only after that long, as a real service that loads its
configuration first: a slow release whose rolling upgrade lasts long enough to kill its
controller in the middle, and the apps benchmarks judge deploy tools on.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import sys
import threading
import time


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(
            {
                "status": "ok",
                "image": os.environ.get("MARATHON_APP_DOCKER_IMAGE", ""),
                "app": os.environ.get("MARATHON_APP_ID", ""),
                "task": os.environ.get("MESOS_TASK_ID", ""),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return  # health checks every second would flood the task log


def _ports() -> list[int]:
    raw = os.environ.get("PORTS") or os.environ.get("PORT0") or ""
    return [int(p) for p in raw.split(",") if p.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--never-ready", action="store_true")
    parser.add_argument("--warmup", type=float, default=0.0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.never_ready:
        while True:
            time.sleep(3600)
    time.sleep(args.warmup)
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", p), _Handler) for p in _ports()]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    if servers:
        servers[0].serve_forever()
    else:
        while True:
            time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
