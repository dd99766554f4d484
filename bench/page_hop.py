"""Benchmark: one page's answer while other threads keep the interpreter busy, by the way the
route is run: a plain ``def`` (FastAPI hands it to one of anyio's worker threads), the same
function through ``web/offload.py`` (``loop.run_in_executor``), and a coroutine on the
server's loop; each under uvicorn's pure-Python parser and loop and under the C ones.

    .venv/bin/python bench/page_hop.py [--repeat 3] [--asks 150] [--busy 2]

Each configuration serves ``/page`` (a tiny JSON answer, the work of ``/healthz``, with no
response model: one hop through anyio's threads for the plain ``def``, none more) from a
uvicorn in a thread of a child process, as ``reconciler run`` does, beside ``--busy`` threads
that compute without pause and six that compute a little and wait a little (what the
release's workers do), with a switch interval of 1 ms (``reconciler run`` sets the same).
A second process asks ``--asks`` times, 20 ms apart, one connection per request. Each
configuration runs ``--repeat`` times, in turn with the others; the figures are the median
and the spread (min-max) over the repeats of each run's median, 95th percentile and worst
answer.

What it does not include: the controller's own work per page (the same in every
configuration), its other threads' real work, and the dev cluster's share of the cores.
Prints every run, then one line per configuration, and as its last line
``worst answer: plain def X ms, offloaded Y ms, on the loop Z ms`` (C parser and loop, the
medians over the repeats of each run's worst answer).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

WAYS = ("plain def", "offloaded", "on the loop")
SERVERS = (("h11", "asyncio"), ("httptools", "uvloop"))


def serve(*, way: str, http: str, loop: str, busy: int, asks: int) -> list[float]:
    """In this (child) process: the server and the busy threads; the asker in a grandchild.
    Returns the asker's times in seconds."""
    import fastapi
    import uvicorn

    from reconciler.web import offload

    sys.setswitchinterval(0.001)
    app = fastapi.FastAPI()

    def answer() -> dict[str, bool]:
        return {"alive": True}

    # No response model: a plain def's answer would be checked in a second hop through
    # anyio's threads, and each way would not be one hop against one.
    if way == "plain def":
        app.get("/page", response_model=None)(answer)
    elif way == "offloaded":
        app.get("/page", response_model=None)(offload.route(answer))
    else:
        async def on_loop() -> dict[str, bool]:
            return answer()
        app.get("/page", response_model=None)(on_loop)

    def compute() -> None:
        total = 0
        while True:
            for i in range(1000):
                total += i * i
            {str(i): i for i in range(100)}  # allocates, as real work does

    def compute_and_wait() -> None:
        while True:
            json.loads(json.dumps({str(i): i for i in range(2000)}))
            time.sleep(0.002)

    for _ in range(busy):
        threading.Thread(target=compute, daemon=True).start()
    for _ in range(6):
        threading.Thread(target=compute_and_wait, daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None,
                                           access_log=False, lifespan="off", ws="none",
                                           http=http, loop=loop))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    asker = f"""
import json, time, requests
times = []
for _ in range({asks}):
    started = time.perf_counter()
    requests.get("http://127.0.0.1:{port}/page", timeout=60).raise_for_status()
    times.append(time.perf_counter() - started)
    time.sleep(0.02)
print(json.dumps(times))
"""
    done = subprocess.run([sys.executable, "-c", asker], capture_output=True, text=True,
                          check=True)
    return list(json.loads(done.stdout))


def figures(times: list[float]) -> tuple[float, float, float]:
    ordered = sorted(times)
    return (statistics.median(ordered), ordered[int(len(ordered) * 0.95)], ordered[-1])


def spread(values: list[float]) -> str:
    return (f"{statistics.median(values) * 1000:6.1f} ms "
            f"({min(values) * 1000:.1f}-{max(values) * 1000:.1f})")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, way, http, loop, busy, asks = sys.argv
        print(json.dumps(serve(way=way, http=http, loop=loop, busy=int(busy),
                               asks=int(asks))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--asks", type=int, default=150)
    parser.add_argument("--busy", type=int, default=2)
    args = parser.parse_args()
    runs: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for repeat in range(args.repeat):
        for http, loop in SERVERS:
            for way in WAYS:
                done = subprocess.run(
                    [sys.executable, __file__, "--child", way, http, loop, str(args.busy),
                     str(args.asks)], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
                run = figures(json.loads(done.stdout.strip().splitlines()[-1]))
                runs.setdefault((way, f"{http}+{loop}"), []).append(run)
                print(f"run {repeat + 1}: {way:12} {http}+{loop:8} median {run[0] * 1000:6.1f} "
                      f"ms, p95 {run[1] * 1000:6.1f} ms, worst {run[2] * 1000:6.1f} ms",
                      flush=True)
    for (way, server), found in runs.items():
        print(f"{way:12} {server:18} median {spread([r[0] for r in found])}, "
              f"p95 {spread([r[1] for r in found])}, worst {spread([r[2] for r in found])}")
    worst = {way: statistics.median(r[2] for r in runs[(way, "httptools+uvloop")])
             for way in WAYS}
    print(f"worst answer: plain def {worst['plain def'] * 1000:.0f} ms, offloaded "
          f"{worst['offloaded'] * 1000:.0f} ms, on the loop {worst['on the loop'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
