"""Marathon's answers read bounded, and ``GET /v2/apps`` app by app.

An answer is input like any other: it is read in chunks, counting bytes and seconds, and
refused past :data:`MAX_BYTES` or :data:`MAX_SECONDS` before anything is parsed (a read
timeout only bounds the wait for each chunk, not a server that dribbles forever).

``GET /v2/apps`` of 10,000 apps is about 15 MB. Parsed in one call it holds the interpreter
lock for most of a second (every page of the dashboard waits) and builds every app at once.
:func:`apps_of` parses it as it arrives, one app at a time (ijson), so other threads run
between apps and a reader can keep each app in whatever form it likes before the next is
built. Marathon writes this answer as ``{"apps":[...]}``; an answer that does not begin so
is read whole and checked as a whole, and its shape named when it is nonsense.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import ijson
import orjson

JSON = dict[str, Any]

MAX_BYTES = 256 * 2**20
"""Of one answer: 10,000 apps with their tasks take about 50 MB."""
MAX_SECONDS = 300.0
"""To read one answer, first byte to last."""
CHUNK = 1 << 16
"""Bytes asked of the connection at a time."""
_APPS_START = re.compile(rb'\s*\{\s*"apps"\s*:\s*\[')
_HEAD = 64
"""Bytes enough to see whether an answer begins as ``{"apps":[``."""


MAX_DEPTH = 32
"""Nesting of one app (Marathon's deepest, a container's volumes' options, is under ten)."""


class Unreadable(ValueError):
    """An answer that is too large or too slow to read; ``str()`` says which."""


class Nonsense(Unreadable):
    """An answer read whole that is not JSON, or not the JSON asked for; ``str()`` says
    which, never quoting its content."""


def chunks(body: Iterable[bytes], *, declared: str | None = None,
           max_bytes: int | None = None, max_seconds: float | None = None,
           clock: Callable[[], float] = time.monotonic) -> Iterator[bytes]:
    """``body`` (an answer's chunks as they arrive), refused past ``max_bytes`` or
    ``max_seconds`` (default :data:`MAX_BYTES`, :data:`MAX_SECONDS`); ``declared`` is its
    ``Content-Length``, refused before any read."""
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    max_seconds = MAX_SECONDS if max_seconds is None else max_seconds
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise Unreadable(f"the answer is {declared} bytes, over the {max_bytes} byte limit")
    started = clock()
    total = 0
    for chunk in body:
        total += len(chunk)
        if total > max_bytes:
            raise Unreadable(f"the answer is over the {max_bytes} byte limit")
        if clock() - started > max_seconds:
            raise Unreadable(f"the answer took over {max_seconds:.0f} s to read")
        yield chunk


def json_of(body: Iterable[bytes], **limits: Any) -> Any:
    """The whole answer, read bounded (:func:`chunks`), parsed as JSON (``{}`` when empty)."""
    whole = b"".join(chunks(body, **limits))
    if not whole:
        return {}
    try:
        return orjson.loads(whole)
    except orjson.JSONDecodeError as e:
        raise Nonsense("not JSON") from e


def apps_of(body: Iterable[bytes], **limits: Any) -> Iterator[Any]:
    """The items of ``apps`` in a ``GET /v2/apps`` answer, each as soon as it is read.

    An answer that does not begin as ``{"apps":[`` yields the value of its ``apps`` whole
    (the caller checks it), or raises :class:`Nonsense` naming what it is instead. An app
    nested deeper than :data:`MAX_DEPTH` is nonsense too (checked before anyone walks it).
    """
    for app in _apps_of(body, **limits):
        if _deeper_than(app, MAX_DEPTH):
            raise Nonsense(f"expected apps, got one nested deeper than {MAX_DEPTH} levels")
        yield app


def _apps_of(body: Iterable[bytes], **limits: Any) -> Iterator[Any]:
    stream = chunks(body, **limits)
    head = b""
    for chunk in stream:
        head += chunk
        if len(head) >= _HEAD:
            break
    if not _APPS_START.match(head):
        rest = head + b"".join(stream)
        try:
            whole = orjson.loads(rest) if rest else {}
        except orjson.JSONDecodeError as e:
            raise Nonsense("not JSON") from e
        if not isinstance(whole, dict) or "apps" not in whole:
            raise Nonsense(f"expected an object with 'apps', got {shape(whole)}")
        if not isinstance(whole["apps"], list):
            raise Nonsense(f"expected a list of apps, got {shape(whole['apps'])}")
        yield from whole["apps"]
        return
    found: list[Any] = ijson.sendable_list()
    parser = ijson.items_coro(found, "apps.item", use_float=True)
    try:
        parser.send(head)
        for chunk in stream:
            yield from found
            del found[:]
            parser.send(chunk)
        parser.close()
    except ijson.JSONError as e:
        raise Nonsense(f"not JSON: {e}") from e
    yield from found


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers more than ``limit`` deep (no recursion: a hostile
    depth must not cost the stack). Level by level, containers only: it runs on every app
    of every resync."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        if not level:
            return False
        children = []
        for item in level:
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, dict | list):
                    children.append(child)
        level = children
    return bool(level)


def shape(body: Any) -> str:
    """What a piece of an answer is, in a few words (for errors: never its content)."""
    if isinstance(body, dict):
        return "an object with " + (", ".join(repr(k) for k in list(body)[:5]) or "no keys")
    if isinstance(body, list):
        kinds = sorted({type(item).__name__ for item in body})
        return f"a list of {', '.join(kinds) or 'nothing'}"
    return f"a {type(body).__name__}"
