"""A route's blocking work, run off the server's loop in a plain thread pool.

FastAPI runs a plain ``def`` route, and each plain ``def`` dependency, in one of anyio's
worker threads. While a release keeps a dozen threads busy, every step of that hop waits
its turn for the interpreter's lock, and answers took up to 0.75 s where the same work done
through ``loop.run_in_executor`` took at most 0.15 s (``bench/page_hop.py``). A route
written as a plain function and decorated with :func:`route` (under ``@router.get``)
keeps its code and its parameters, and takes the shorter way.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_PAGES = ThreadPoolExecutor(max_workers=8, thread_name_prefix="web-pages")
"""Threads for the pages' blocking work (the records, a first snapshot): enough for an
on-call team's pages at once; more requests wait for a free one."""
_OPERATIONS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="web-operations")
"""Threads of ``/readyz`` and ``/metrics`` alone: a probe and a scraper get their answer
while pages wait (for the first snapshot at start, or for a slow records database)."""


async def run(work: Callable[[], T], *, pool: ThreadPoolExecutor = _PAGES) -> T:
    """``work()`` in ``pool``, in the request's context (its context variables, as anyio
    would pass them); the loop serves other requests meanwhile."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(pool, context.run, work)


def route(handler: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """``handler`` as a coroutine FastAPI awaits, running ``handler`` itself in the pages'
    pool (FastAPI reads the parameters from ``handler``, through ``__wrapped__``)."""
    return _offloaded(handler, _PAGES)


def operation(handler: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """As :func:`route`, in the operations' own pool (``/readyz``, ``/metrics``)."""
    return _offloaded(handler, _OPERATIONS)


def _offloaded(handler: Callable[P, T], pool: ThreadPoolExecutor
               ) -> Callable[P, Awaitable[T]]:
    @functools.wraps(handler)
    async def offloaded(*args: P.args, **kwargs: P.kwargs) -> T:
        return await run(functools.partial(handler, *args, **kwargs), pool=pool)

    return offloaded
