"""A counting HTTP proxy for benchmarks: every request a tool sends to Marathon is counted.

Sits between a deploy tool and the dev cluster (or any Marathon), forwards each request
unchanged and streams each response back (server-sent events included), and counts requests
by method and path. Independent of both the tool and the server, so both tools are measured
the same way. Runs its own event loop on a daemon thread, closed on :meth:`stop` after its
last handler ended (nothing of it is left to fail at interpreter exit).

:meth:`cut` ends every event stream it forwards and refuses new ones (503) until
:meth:`restore`: a gap in Marathon's event stream, for tests. :meth:`hold_next` delays one
answer, read from Marathon when asked: a read that a write overtakes, for tests.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import re
import threading
from dataclasses import dataclass

import aiohttp
from aiohttp import web

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailers", "transfer-encoding", "upgrade", "content-length", "content-encoding",
               "host"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_APP_PATH = re.compile(r"^/v2/apps/+(.+?)(/(restart|versions|tasks)(/.*)?)?$")


def route_of(path: str) -> str:
    """``/v2/apps//bench/x/restart`` -> ``/v2/apps/{id}/restart``: counts per kind of request."""
    match = _APP_PATH.match(path)
    if match:
        return "/v2/apps/{id}" + (f"/{match.group(3)}" if match.group(3) else "")
    return _UUID.sub("{id}", path)


@dataclass(frozen=True)
class Held:
    """One answer held back (:meth:`CountingProxy.hold_next`)."""

    read: threading.Event
    """Set once Marathon's answer was read whole: what Marathon held at that moment."""
    release: threading.Event
    """Set it to send that answer on."""


class CountingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.url = ""
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._streams: set[asyncio.Task[object]] = set()
        self._cut = False
        self._held: dict[str, Held] = {}
        self._thread = threading.Thread(target=self._run, name="counting-proxy", daemon=True)

    def start(self) -> CountingProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("counting proxy did not start")
        return self

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts.most_common())

    def cut(self) -> None:
        """End the event streams being forwarded; refuse new ones until :meth:`restore`."""
        def cut_now() -> None:
            self._cut = True
            for task in list(self._streams):
                task.cancel()
        self._loop.call_soon_threadsafe(cut_now)

    def restore(self) -> None:
        def restore_now() -> None:
            self._cut = False
        self._loop.call_soon_threadsafe(restore_now)

    def hold_next(self, route: str) -> Held:
        """The next request of ``route`` (as counted: ``GET /v2/apps``) gets Marathon's answer
        as it is when the request comes, sent only once ``release`` is set (30 s at most)."""
        held = Held(read=threading.Event(), release=threading.Event())
        with self._lock:
            self._held[route] = held
        return held

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        # Best effort: an event stream still forwarded must not hold the benchmark's result.
        with contextlib.suppress(TimeoutError, concurrent.futures.TimeoutError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _shutdown(self) -> None:
        for task in list(self._streams):
            task.cancel()
        await self._runner.shutdown()
        await self._runner.cleanup()
        await self._session.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            # Every task left (a handler still streaming) ends here, in this loop, before it
            # closes: none is destroyed later against a closed loop.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _serve(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None),
                                              auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        runner = self._runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        key = f"{request.method} {route_of(request.path)}"
        with self._lock:
            self._counts[key] += 1
            held = self._held.pop(key, None)
        if request.path.rstrip("/") == "/v2/events":
            if self._cut:
                return web.Response(status=503, text="event stream cut by the test")
            task = asyncio.current_task()
            if task is not None:
                self._streams.add(task)
                task.add_done_callback(self._streams.discard)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.read()
        async with self._session.request(
            request.method, self.upstream + request.rel_url.raw_path_qs, headers=headers,
            data=body or None, allow_redirects=False,
        ) as upstream:
            passed = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            if held is not None:
                answer = await upstream.read()
                held.read.set()
                await asyncio.get_running_loop().run_in_executor(None, held.release.wait, 30)
                return web.Response(status=upstream.status, body=answer, headers=passed)
            response = web.StreamResponse(status=upstream.status, headers=passed)
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (ConnectionResetError, aiohttp.ClientError, RuntimeError):
                pass  # RuntimeError: the client went away mid-write
            return response
