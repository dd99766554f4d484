"""A fault-injecting HTTP proxy in front of the dev cluster, for the reliability suite.

Each request is forwarded to the dev cluster; a seeded random draw decides whether it is
spoilt, and the kinds take turns: ``5xx`` (answered 503, not forwarded), ``reset``
(forwarded, then the connection is closed without an answer: a write may have landed),
``hang`` (forwarded, then held past the client's timeout and closed), ``truncated`` (half
the answer's JSON), ``wrong-shape`` (JSON of the wrong shape: ``{}`` for a list, a list for
an object) and ``slow`` (a correct answer, late). The event stream is refused (404), so
clients poll.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import requests

KINDS = ("5xx", "reset", "hang", "truncated", "wrong-shape", "slow")


@dataclass
class FaultProxy:
    upstream: str
    rate: float
    seed: int
    hang: float = 3.0
    kinds: tuple[str, ...] = KINDS
    injected: Counter[str] = field(default_factory=Counter)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def draw(self) -> str | None:
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            # In turn, so that every kind shows up even in a short run.
            fault = self.kinds[sum(self.injected.values()) % len(self.kinds)]
            self.injected[fault] += 1
            return fault

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)


def _handler(proxy: FaultProxy) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if self.path.startswith("/v2/events"):
                self._answer(404, b'{"message": "no events through the proxy"}')
                return
            fault = proxy.draw()
            if fault == "5xx":
                self._answer(503, b'{"message": "injected"}')
                return
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() in ("content-type", "accept", "authorization")}
            upstream = requests.request(self.command, proxy.upstream + self.path, data=body,
                                        headers=headers, timeout=30)
            content = upstream.content
            if fault == "reset":
                self.close_connection = True
                return
            if fault == "hang":
                time.sleep(proxy.hang)
                self.close_connection = True
                return
            if fault == "truncated" and content:
                content = content[: len(content) // 2]
            elif fault == "wrong-shape":
                with contextlib.suppress(ValueError):
                    parsed = json.loads(content or b"null")
                    content = b"{}" if isinstance(parsed, list) else b"[1, 2]"
            elif fault == "slow":
                time.sleep(0.3)
            self._answer(upstream.status_code, content)

        def _answer(self, status: int, content: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815 - stdlib names

    return Handler


@contextlib.contextmanager
def serving(proxy: FaultProxy) -> Iterator[FaultProxy]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
