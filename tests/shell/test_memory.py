"""``shell/memory.py``: what settle freezes is skipped by the collector, and a cycle among
frozen objects is still collected at the next thaw (no leak for the life of the process)."""

from __future__ import annotations

import gc
import platform
import subprocess
import sys
import weakref
from pathlib import Path

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


_ARENAS_SCRIPT = """
import ctypes, sys, threading
from reconciler.shell import memory
if sys.argv[2] == "tuned":
    memory.tune()
met = threading.Barrier(9)
def work():
    held = [bytes(2000) for _ in range(50)]  # past pymalloc's 512 bytes: this thread's arena
    met.wait()
    met.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
met.wait()  # every thread holds its blocks now
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
report = libc.fopen(sys.argv[1].encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(report))
libc.fclose(ctypes.c_void_p(report))
met.wait()
for thread in threads:
    thread.join()
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")
def test_threads_share_few_malloc_arenas_once_tuned(tmp_path: Path) -> None:
    def arenas(mode: str) -> int:
        report = tmp_path / f"{mode}.xml"
        subprocess.run([sys.executable, "-c", _ARENAS_SCRIPT, str(report), mode], check=True,
                       timeout=120)
        return report.read_text().count("<heap nr=")

    assert arenas("tuned") <= memory.MALLOC_ARENAS
    assert arenas("default") > memory.MALLOC_ARENAS  # what the tuning is there to prevent


_MAPPED_SCRIPT = """
import ctypes, sys
from reconciler.shell import memory
if sys.argv[1] == "tuned":
    memory.tune()
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
block = bytes(8_000_000)  # a revision's definitions as JSON, say
del block
before = libc.mallinfo2().hblks
block = bytes(7_000_000)  # the next big one, a little smaller
print(libc.mallinfo2().hblks - before)  # 1: mapped apart; 0: from the heap
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc's thresholds are glibc's")
def test_a_big_block_is_still_mapped_apart_after_one_was_freed_once_tuned() -> None:
    def mapped(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", _MAPPED_SCRIPT, mode], check=True,
                              capture_output=True, text=True, timeout=120)
        return int(done.stdout)

    assert mapped("tuned") == 1  # given back the moment it is freed
    assert mapped("default") == 0  # from the heap, resident until a trim
