"""Freed memory handed back to the operating system after big, short-lived work.

A resync of 10,000 apps or a reconcile of a whole revision builds tens of megabytes of
objects for a moment. Python frees them, but the C allocator (glibc) keeps the freed pages
for later, so the controller's resident size would stay at its peak for good. ``malloc_trim``
returns what is free; elsewhere than glibc there is nothing to call and nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_libc_name = ctypes.util.find_library("c")
_trim = getattr(ctypes.CDLL(_libc_name), "malloc_trim", None) if _libc_name else None


def give_back() -> None:
    """Return the C allocator's free pages to the system (milliseconds; call after big work,
    not per request)."""
    if _trim is not None:
        _trim(0)
