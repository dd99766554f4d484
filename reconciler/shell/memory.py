"""After big, short-lived work: settle what stays, and hand freed memory back.

A resync of 10,000 apps or a reconcile of a whole revision builds tens of megabytes of
objects for a moment, and leaves behind what lives on (a revision's definitions, the live
cache, the records of a release). Two costs follow unless something is done:

- The garbage collector keeps scanning every object that lives on: with hundreds of
  thousands of them a full collection holds the interpreter lock for a quarter to half a
  second, several times during a release, and every page waits. :func:`settle` collects
  once, then freezes the survivors (``gc.freeze``): later collections skip them. Frozen
  objects are still freed as soon as nothing refers to them; a reference cycle among them
  would stay, so at most every :data:`UNFREEZE_EVERY` seconds settle thaws everything and
  collects it all once (one pause of a few hundred milliseconds at 10,000 apps).
  With many young objects (a release), the collector would still run full collections every
  few seconds: :func:`tune_collector` makes them a hundred times rarer, since settle
  collects after each run and resync anyway.
- The C allocator (glibc) keeps the freed pages, so the resident size stays at its peak
  for good: ``malloc_trim`` returns them. Elsewhere than glibc there is nothing to call.
- glibc gives each thread that allocates its own arena (up to eight per core), and each
  arena keeps its own free blocks: the worker threads of a release held 20 MB more at its
  peak than when they share :data:`MALLOC_ARENAS` arenas (:func:`tune`). And once a big
  block (a revision's definitions as JSON, 8 MB) is freed, glibc raises the size from which
  it maps blocks apart to that block's: the next ones come from the heap and stay resident
  until a trim. :func:`tune` fixes that size at :data:`MAP_APART_FROM`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import time

_libc_name = ctypes.util.find_library("c")
_libc = ctypes.CDLL(_libc_name) if _libc_name else None
_trim = getattr(_libc, "malloc_trim", None)
_mallopt = getattr(_libc, "mallopt", None)
_M_ARENA_MAX = -8
"""``mallopt``'s parameter number for the most arenas (glibc's ``malloc.h``)."""
MALLOC_ARENAS = 2
"""Arenas glibc's malloc may make at most, shared by every thread."""
_M_MMAP_THRESHOLD = -3
MAP_APART_FROM = 128 * 1024
"""Bytes from which a block is mapped on its own, given back the moment it is freed (glibc's
default, but fixed: no longer raised to the largest block freed so far)."""
_lock = threading.Lock()
_FULL_EVERY = 1000
"""Second-generation collections between two full ones (Python's default is 10)."""
UNFREEZE_EVERY = 600.0
"""Seconds at least between two collections of everything, frozen objects included."""
_thawed_at = [float("-inf")]


def tune() -> None:
    """Full collections a hundred times rarer, few malloc arenas, big blocks always mapped
    apart (``reconciler run`` calls this once, before it starts threads: an arena made
    before stays)."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _FULL_EVERY)
    if _mallopt is not None:
        _mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
        _mallopt(_M_MMAP_THRESHOLD, MAP_APART_FROM)


def settle() -> None:
    """Collect once, freeze what survived, return free pages to the system (call after big
    work, not per request: the collection takes milliseconds once most objects are frozen)."""
    with _lock:
        now = time.monotonic()
        if now - _thawed_at[0] >= UNFREEZE_EVERY:
            _thawed_at[0] = now
            gc.unfreeze()  # cycles among what was frozen before are collected too
        gc.collect()
        gc.freeze()
        if _trim is not None:
            _trim(0)
