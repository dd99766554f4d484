"""Time filters as people type them (``--since 24h``, ``?since=2026-11-25T03:00``). Pure."""

from __future__ import annotations

import datetime as dt
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str | None, *, now: float) -> float | None:
    """A filter's start as UNIX seconds: ``90s``, ``30m``, ``24h``, ``7d``, ``1w`` before
    ``now``, or an ISO-8601 date or time (UTC when it names no zone); None for no filter.

    Raises ValueError saying what is accepted.
    """
    if text is None or not text.strip():
        return None
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _SECONDS[match.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"since={text!r}: give 30m, 24h, 7d (or 90s, 2w) or an ISO time "
                         "such as 2026-11-25T03:00:00+00:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def ago(when: str | None, *, now: float) -> str:
    """``when`` (an ISO time) as people say it relative to ``now``: ``3 min ago``; ``""`` for
    no time, and the text as given when it is not an ISO time."""
    if not when:
        return ""
    at = _parse(when)
    if at is None:
        return when
    seconds = now - at
    if seconds < 0:
        return "in the future"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def latest(*times: str | None) -> str | None:
    """The latest of several ISO times (any zone, ``Z`` too), as written; None for none."""
    known = [(parsed, text) for text in times if text
             for parsed in [_parse(text)] if parsed is not None]
    return max(known)[1] if known else None


def _parse(text: str) -> float | None:
    try:
        at = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp()
