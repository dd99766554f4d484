"""A chat webhook endpoint for tests: keeps every JSON body it is sent (Slack-compatible)."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
from typing import Any


class Receiver:
    """A webhook endpoint that keeps every JSON body it is sent."""

    def __init__(self, *, status: int = 200, parse: bool = True,
                 failures: int = 0) -> None:
        """``failures``: answer 503 to that many posts first (a chat server having trouble)."""
        self.bodies: list[dict[str, Any]] = []
        self.failures = failures
        self.raw: list[bytes] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                receiver.raw.append(data)
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                if parse:
                    receiver.bodies.append(json.loads(data))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/abc123"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def texts(self) -> list[str]:
        return [json.dumps(b) for b in self.bodies]
