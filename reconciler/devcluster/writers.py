"""The record of writers: every write request the dev cluster received, one JSON line each.

Marathon ignores request headers it does not know; the dev cluster notes, for every request
that is not a read (POST, PUT, PATCH, DELETE), who sent it: the client address and the
``X-Reconciler-Replica`` and ``X-Reconciler-Term`` headers a replica of ``reconciler run``
sends with its writes, with when the request arrived and when it was answered (wall clock),
in ``<state dir>/writes.jsonl``. Tests of leader election read it to check that no two
replicas wrote in overlapping terms. Reads are not recorded.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from aiohttp import web

FILE = "writes.jsonl"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def recorder(state_dir: Path) -> Any:
    """A middleware appending each write request to ``state_dir/writes.jsonl``."""
    path = state_dir / FILE

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method in _READS:
            response: web.StreamResponse = await handler(request)
            return response
        received = time.time()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            line = json.dumps({
                "received": received, "answered": time.time(), "method": request.method,
                "path": request.path, "status": status, "client": request.remote or "",
                "replica": request.headers.get("X-Reconciler-Replica"),
                "term": request.headers.get("X-Reconciler-Term")})
            with open(path, "a", encoding="utf-8") as out:
                out.write(line + "\n")

    return middleware


def read(state_dir: Path) -> list[dict[str, Any]]:
    """The writes recorded so far, oldest first."""
    path = state_dir / FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
