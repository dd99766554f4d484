"""Marathon's answers read bounded, and ``GET /v2/apps`` a batch of apps at a time.

An answer is input like any other: it is read in chunks, counting bytes and seconds, and
refused past :data:`MAX_BYTES` or :data:`MAX_SECONDS` before anything is parsed (a read
timeout only bounds the wait for each chunk, not a server that dribbles forever).

``GET /v2/apps`` of 10,000 apps is about 15 MB. Parsed in one call it holds the interpreter
lock for most of a second (every page of the dashboard waits) and builds every app at once.
:func:`apps_of` parses it as it arrives, a batch of apps at a time (orjson, batches cut
between apps), so other threads run between batches and a reader can keep each app in
whatever form it likes before the next batch is built; the whole costs about one
``orjson.loads`` of the answer. Marathon writes this answer as ``{"apps":[...]}``; an answer
that does not begin so is read whole and checked as a whole, and its shape named when it is
nonsense; one that cannot be cut so is read to its end and parsed whole.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

JSON = dict[str, Any]

MAX_BYTES = 256 * 2**20
"""Of one answer: 10,000 apps with their tasks take about 50 MB."""
MAX_SECONDS = 300.0
"""To read one answer, first byte to last."""
CHUNK = 1 << 16
"""Bytes asked of the connection at a time."""
_WS = b" \t\n\r"
"""JSON's whitespace (not Python's: a vertical tab is no JSON)."""
_APPS_START = re.compile(rb'[ \t\n\r]*\{[ \t\n\r]*"apps"[ \t\n\r]*:[ \t\n\r]*\[')
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
    """The items of ``apps`` in a ``GET /v2/apps`` answer, a few hundred kB of them at a time
    as they are read (:func:`_in_batches`).

    An answer that does not begin as ``{"apps":[`` yields the value of its ``apps`` whole
    (the caller checks it), or raises :class:`Nonsense` naming what it is instead. An app
    nested deeper than :data:`MAX_DEPTH` is nonsense too (checked before anyone walks it).
    """
    stream = chunks(body, **limits)
    head = b""
    for chunk in stream:
        head += chunk
        if len(head) >= _HEAD:
            break
    opening = _APPS_START.match(head)
    if opening is None:
        yield from _whole(head + b"".join(stream))
    else:
        yield from _in_batches(head[opening.end():], stream)


_NEXT_APP = b'},{"id":"/'
"""Where one app of Marathon's answer ends and the next begins: Marathon writes each app's
``id`` first, absolute (type ``App`` of docs/docs/rest-api/public/api/v2/types/app.raml;
``AppInfo`` extends it), compact. In a string these bytes cannot stand (its quotes would be
escaped); inside an app only in an array of objects whose first key is such an ``id``, which
none of Marathon's is. A cut found here is still only taken once the batch before it parses as
a list (it cannot, cut inside an app: brackets would be left open)."""
BATCH = 1 << 18
"""Bytes of apps parsed in one call: about 170 apps, a few milliseconds with the interpreter
lock held, and few calls (orjson's per-call cost counts at 10,000 apps)."""
MISCUTS = 8
"""Cuts that turned out inside an app, per batch, before the rest of the answer is read to
its end and parsed whole instead (an answer written to make every cut a miss costs little)."""


def _in_batches(rest: bytes, stream: Iterator[bytes]) -> Iterator[Any]:
    """The apps of ``{"apps":[`` + ``rest`` + ``stream``, parsed with orjson in batches cut
    between apps (:data:`_NEXT_APP`), as soon as a batch has arrived: never all apps at once,
    and about the cost of one ``orjson.loads`` of the answer."""
    pending = bytearray(rest)
    search_from, misses = BATCH, 0
    for chunk in stream:
        pending += chunk
        while (cut := pending.find(_NEXT_APP, search_from)) != -1:
            batch = _batch(bytes(pending[:cut + 1]))
            if batch is None:
                misses += 1
                if misses > MISCUTS:
                    yield from _whole(_OPENING + bytes(pending) + b"".join(stream))
                    return
                search_from = cut + 1
                continue
            yield from batch
            del pending[:cut + 2]  # the next app starts after "},"
            search_from, misses = BATCH, 0
        # Not found up to here: the next search starts where a cut could still begin.
        search_from = max(search_from, len(pending) - len(_NEXT_APP) + 1)
    tail = bytes(pending).rstrip(_WS)
    # The last apps, then "]}"; anything else (cut short, more keys) is parsed whole.
    batch = _batch(tail[:-2]) if tail.endswith(b"]}") else None
    yield from _whole(_OPENING + tail) if batch is None else batch


def _batch(apps: bytes) -> list[Any] | None:
    """``apps`` (JSON values between commas) as a list, None when they do not parse as one;
    raises :class:`Nonsense` when one nests deeper than :data:`MAX_DEPTH`."""
    listed = b"[" + apps + b"]"
    if not nesting_at_most(listed, MAX_DEPTH + 1):
        raise Nonsense(f"expected apps, got one nested deeper than {MAX_DEPTH} levels")
    try:
        parsed = orjson.loads(listed)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, list) else None


_OPENING = b'{"apps":['


def _whole(answer: bytes) -> list[Any]:
    """The apps of a whole answer, its depth bounded on its bytes before it is parsed (two
    levels more than an app's: the answer's object and its list)."""
    if not nesting_at_most(answer, MAX_DEPTH + 2):
        raise Nonsense(f"expected apps, got one nested deeper than {MAX_DEPTH} levels")
    try:
        whole = orjson.loads(answer) if answer else {}
    except orjson.JSONDecodeError as e:
        raise Nonsense("not JSON") from e
    if not isinstance(whole, dict) or "apps" not in whole:
        raise Nonsense(f"expected an object with 'apps', got {shape(whole)}")
    if not isinstance(whole["apps"], list):
        raise Nonsense(f"expected a list of apps, got {shape(whole['apps'])}")
    return whole["apps"]


_DROP = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_AS_BRACES = bytes.maketrans(b"[]", b"{}")
_BRACKETED_STRING = re.compile(rb'"[^"]*"')


def nesting_at_most(text: bytes, limit: int) -> bool:
    """Whether the JSON ``text`` nests objects and arrays at most ``limit`` deep, judged on its
    bytes in C (string methods), without parsing it: an answer's apps are checked before any
    parser builds them, at a few percent of a parse. Text that is not JSON passes unless it is
    too deep: the parser refuses it next.

    Strings go first: escaped backslashes and quotes, then every byte but quotes and
    brackets, then quote pairs with nothing left between them (an empty string, or two
    strings with no bracket between them: merging them moves no bracket in or out), then the
    few strings with brackets in them. What is left is the brackets, each round takes off the
    innermost pairs: the rounds needed are the depth.
    """
    if b"\\" in text:  # rare in Marathon's answers: skip two scans of the whole text
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    bare = text.translate(_AS_BRACES, _DROP)
    bare = bare.replace(b'""', b"")
    if b'"' in bare:
        bare = _BRACKETED_STRING.sub(b"", bare)
    for _ in range(limit):
        if not bare:
            return True
        shorter = bare.replace(b"{}", b"")
        if len(shorter) == len(bare):
            return True  # unbalanced: not JSON, which the parser says
        bare = shorter
    return not bare


def shape(body: Any) -> str:
    """What a piece of an answer is, in a few words (for errors: never its content)."""
    if isinstance(body, dict):
        return "an object with " + (", ".join(repr(k) for k in list(body)[:5]) or "no keys")
    if isinstance(body, list):
        kinds = sorted({type(item).__name__ for item in body})
        return f"a list of {', '.join(kinds) or 'nothing'}"
    return f"a {type(body).__name__}"
