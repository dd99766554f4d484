"""``shell/memory.py``: what settle freezes is skipped by the collector, and a cycle among
frozen objects is still collected at the next thaw (no leak for the life of the process)."""

from __future__ import annotations

import gc
import weakref

import pytest

from reconciler.shell import memory


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_a_cycle_frozen_by_settle_is_collected_at_the_next_thaw(
        monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        monkeypatch.setattr(memory, "_thawed_at", [float("-inf")])
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        memory.settle()  # a and b are alive: frozen
        assert gc.get_freeze_count() > 0
        del a, b  # now a cycle nobody refers to, among frozen objects
        gc.collect()
        assert gone() is not None, "frozen objects are not collected between thaws"

        monkeypatch.setattr(memory, "_thawed_at", [float("-inf")])  # the thaw is due
        memory.settle()
        assert gone() is None
    finally:
        gc.unfreeze()
