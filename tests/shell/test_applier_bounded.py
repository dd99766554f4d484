"""``applier.run_bounded``: a plan's steps go to the worker pool a few at a time, never a
whole layer at once (10,000 waiting futures held 19 MB during a release of every app), and
otherwise as if all were submitted up front: every call runs, results in the order given,
the first failure raised once all ended."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Iterator

import pytest

from reconciler.shell import applier

WAIT = 30.0
"""Seconds at most for a thread to reach a point (a bound against hanging, not a timing)."""


def test_a_call_is_submitted_only_once_an_earlier_one_finished_beyond_the_limit() -> None:
    count, limit = 8, 3
    release = [threading.Event() for _ in range(count)]
    ended = [threading.Event() for _ in range(count)]
    finished_when_yielded: list[int] = []

    def call(index: int) -> Callable[[], int]:
        def run() -> int:
            assert release[index].wait(WAIT)
            ended[index].set()
            return index
        return run

    def calls() -> Iterator[tuple[int, Callable[[], int]]]:
        for index in range(count):
            finished_when_yielded.append(sum(e.is_set() for e in ended))
            yield index, call(index)

    outcome: dict[str, dict[int, int]] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        runner = threading.Thread(target=lambda: outcome.setdefault(
            "results", applier.run_bounded(pool, calls(), limit=limit)))
        runner.start()
        for index in range(count):  # one at a time, in order: the single worker's order
            release[index].set()
            assert ended[index].wait(WAIT)
        runner.join(WAIT)
    assert outcome["results"] == {i: i for i in range(count)}
    # The call at position i (from the limit on) waited for i - limit + 1 calls to end.
    assert all(finished >= index - limit + 1
               for index, finished in enumerate(finished_when_yielded)), finished_when_yielded


def test_every_call_runs_and_the_first_failure_in_order_is_raised() -> None:
    ran: list[int] = []
    lock = threading.Lock()

    def call(index: int) -> Callable[[], int]:
        def run() -> int:
            with lock:
                ran.append(index)
            if index in (2, 5):
                raise ValueError(f"call {index} failed")
            return index
        return run

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool, \
            pytest.raises(ValueError, match="call 2 failed"):
        applier.run_bounded(pool, ((i, call(i)) for i in range(10)), limit=2)
    assert sorted(ran) == list(range(10))


def test_results_come_in_the_order_of_the_calls_not_of_their_ends() -> None:
    first_may_end = threading.Event()

    def first() -> str:
        assert first_may_end.wait(WAIT)
        return "first"

    def second() -> str:
        first_may_end.set()  # the first call ends only after this one
        return "second"

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = applier.run_bounded(pool, [("a", first), ("b", second)], limit=2)
    assert list(results.items()) == [("a", "first"), ("b", "second")]
