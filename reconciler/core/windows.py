"""Sync windows: whether an app may be applied at a given time, and if not, until when. Pure.

``reconciler.yaml`` declares them (see docs/config-repo.md)::

    windows:
      - kind: deny                    # allow | deny
        schedule: "0 18 * * 5"        # cron: when the window opens, in timeZone
        duration: 62h                 # how long it stays open: 90m, 10h, 2d or seconds
        timeZone: Europe/Zurich       # default UTC
        groups: [/dirac-prod]         # app ids or group prefixes; default every app
        for: [revisions, drift]       # new revisions, drift correction; default both

The rule, as Argo CD's: an app is held while a deny window covering it is open; when allow
windows cover it, it is held unless one of them is open. The time is always given (the
caller's injected clock); cron is croniter's, time zones are ``zoneinfo``'s.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from croniter import croniter

from reconciler.core import model, parse

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = 366 * 86400.0
"""A window longer than a year is a mistake (a deny window that never ends)."""
HORIZON = dt.timedelta(days=400)
"""How far ahead the next opening is looked for; beyond it, "never"."""
MAX_EVALUATIONS = 6000
"""Cron evaluations spent looking for the next opening of one set of windows: hostile
schedules (a hundred windows firing every minute) cost a bounded time, and then say "no
window opens" rather than search on."""
_REFERENCE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Verdict:
    """Whether an app may be applied now; when not, which window holds it and until when."""

    allowed: bool
    until: dt.datetime | None = None
    """When applying is allowed next (UTC); None when allowed now, or not within a year."""
    because: str = ""
    """Which window decides, as people read it."""

    @property
    def message(self) -> str:
        if self.allowed:
            return "inside its sync window"
        when = self.until.isoformat() if self.until else "no window opens within a year"
        return f"waiting for window until {when} ({self.because})"


@dataclass(frozen=True)
class Opening:
    """One window's current and next opening, for ``reconciler windows``."""

    window: model.SyncWindow
    open_now: bool
    current_end: dt.datetime | None
    next_start: dt.datetime | None
    next_end: dt.datetime | None


# -- reading reconciler.yaml --------------------------------------------------------------------


def from_data(entries: Sequence[Mapping[str, Any]] | None) -> tuple[model.SyncWindow, ...]:
    """Windows from schema-valid and :func:`check`-ed ``windows:`` entries."""
    return tuple(model.SyncWindow(
        kind=model.WindowKind(entry["kind"]), schedule=str(entry["schedule"]),
        duration=parse_duration(entry["duration"]),
        time_zone=str(entry.get("timeZone") or "UTC"),
        groups=tuple(_prefix(g) for g in entry.get("groups") or ("/",)),
        scopes=frozenset(model.WindowScope(s) for s in entry.get("for") or model.WindowScope),
    ) for entry in entries or ())


def check(parsed: parse.ParsedFile) -> list[model.Problem]:
    """What a schema cannot say of each window: cron, duration, time zone; at their lines."""
    problems: list[model.Problem] = []
    entries = (parsed.data or {}).get("windows") or () if isinstance(parsed.data, dict) else ()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        at = f"/windows/{index}"

        def problem(key: str, message: str, at: str = at) -> None:
            problems.append(model.Problem(parsed.path, parsed.line_of(f"{at}/{key}"),
                                          f"{at}/{key}: {message}"))

        schedule = str(entry.get("schedule", ""))
        if not croniter.is_valid(schedule) or len(schedule.split()) != 5:
            problem("schedule", f"{schedule!r} is not a cron expression of five fields "
                                "(minute hour day-of-month month day-of-week)")
        else:
            try:
                croniter(schedule, _REFERENCE).get_next(dt.datetime)
            except (ValueError, KeyError, ArithmeticError) as e:
                problem("schedule", f"{schedule!r} never fires ({e})")
        try:
            seconds = parse_duration(entry.get("duration"))
            if not 0 < seconds <= MAX_DURATION:
                problem("duration", "must be more than 0 and at most 366d")
        except ValueError as e:
            problem("duration", str(e))
        zone = entry.get("timeZone")
        if zone is not None:
            try:
                zoneinfo.ZoneInfo(str(zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                problem("timeZone", f"unknown time zone {zone!r} (an IANA name such as "
                                    "Europe/Zurich, or UTC)")
    return problems


def parse_duration(value: Any) -> float:
    """``90m``, ``10h``, ``2d``, ``30s`` or plain seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90m, 10h or 2d")
    if isinstance(value, int | float):
        return float(value)
    found = _DURATION.match(str(value).strip())
    if found is None:
        raise ValueError(f"{value!r} is not a duration such as 90m, 10h or 2d")
    return float(found.group(1)) * _UNIT[found.group(2)]


# -- deciding -----------------------------------------------------------------------------------


def scope_of(trigger: model.Trigger) -> model.WindowScope | None:
    """What a run started by ``trigger`` does, as windows see it (None: not governed; a
    manual rollback undoes a change, it is never held)."""
    if trigger is model.Trigger.DRIFT_CORRECTION:
        return model.WindowScope.DRIFT
    if trigger is model.Trigger.ROLLBACK:
        return None
    return model.WindowScope.REVISIONS


def covering(windows: Iterable[model.SyncWindow], app_id: model.AppId,
             scope: model.WindowScope) -> list[model.SyncWindow]:
    """The windows that govern ``app_id`` for ``scope``."""
    return [w for w in windows if scope in w.scopes
            and any(model.is_under(app_id, g) for g in w.groups)]


def decide(windows: Iterable[model.SyncWindow], *, app_id: model.AppId,
           scope: model.WindowScope, at: dt.datetime) -> Verdict:
    """May ``app_id`` be applied at ``at`` for ``scope``; if not, until when."""
    relevant = covering(windows, app_id, scope)
    if not relevant:
        return Verdict(allowed=True)
    at = at.astimezone(dt.UTC)
    blocking = _blocking(relevant, at)
    if blocking is None:
        return Verdict(allowed=True)
    return Verdict(allowed=False, until=_next_allowed(relevant, at), because=blocking)


def held(windows: Sequence[model.SyncWindow], app_ids: Iterable[model.AppId], *,
         scope: model.WindowScope, at: dt.datetime) -> dict[model.AppId, Verdict]:
    """The apps of ``app_ids`` that their windows hold at ``at``, with each verdict."""
    if not windows:
        return {}
    # Apps under the same windows share a verdict: decided once per set of windows.
    decided: dict[tuple[model.SyncWindow, ...], Verdict] = {}
    out = {}
    for app_id in sorted(app_ids):
        relevant = tuple(covering(windows, app_id, scope))
        if relevant not in decided:
            decided[relevant] = decide(relevant, app_id=app_id, scope=scope, at=at)
        if not decided[relevant].allowed:
            out[app_id] = decided[relevant]
    return out


def openings(windows: Iterable[model.SyncWindow], *, at: dt.datetime) -> list[Opening]:
    """Each window's state at ``at``: open now (until when) and its next opening."""
    at = at.astimezone(dt.UTC)
    out = []
    for window in windows:
        current = _open_interval(window, at)
        start = _next_start(window, at)
        out.append(Opening(
            window=window, open_now=current is not None,
            current_end=current[1] if current else None, next_start=start,
            next_end=_plus(start, window.duration) if start else None))
    return out


def clean_reason(text: str) -> str:
    """An override reason as the audit keeps it: one line, control characters (ESC, line
    breaks, format characters) replaced by spaces, so a record cannot paint a terminal or
    forge a line of its own."""
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
                   for c in text)
    return " ".join(kept.split())


def describe(window: model.SyncWindow) -> str:
    scopes = "+".join(sorted(window.scopes))
    return (f"{window.kind} {window.schedule!r} for {duration_text(window.duration)} "
            f"({window.time_zone}; {scopes})")


def _blocking(windows: Sequence[model.SyncWindow], at: dt.datetime) -> str | None:
    """Why applying is not allowed at ``at`` (the window that holds it), or None."""
    for window in windows:
        if window.kind is model.WindowKind.DENY and _open_interval(window, at) is not None:
            return f"deny window {describe(window)}"
    allows = [w for w in windows if w.kind is model.WindowKind.ALLOW]
    if allows and not any(_open_interval(w, at) is not None for w in allows):
        return "outside every allow window: " + "; ".join(describe(w) for w in allows)
    return None


def _next_allowed(windows: Sequence[model.SyncWindow], at: dt.datetime) -> dt.datetime | None:
    """The first moment after ``at`` when no window holds: walks window boundaries."""
    moment = at
    for _ in range(max(1, MAX_EVALUATIONS // (3 * len(windows)))):
        boundaries = []
        for window in windows:
            current = _open_interval(window, moment)
            if current is not None:
                boundaries.append(current[1])
            start = _next_start(window, moment)
            if start is not None:
                boundaries.append(start)
        later = [b for b in boundaries if b > moment]
        if not later:
            return None
        moment = min(later)
        if moment - at > HORIZON:
            return None
        if _blocking(windows, moment) is None:
            return moment
    return None


def _open_interval(window: model.SyncWindow, at: dt.datetime
                   ) -> tuple[dt.datetime, dt.datetime] | None:
    """The opening of ``window`` that covers ``at`` (start, end), or None.

    Every opening lasts as long, so the latest start at or before ``at`` ends last: only it
    can cover ``at``."""
    local = at.astimezone(zoneinfo.ZoneInfo(window.time_zone))
    try:
        # croniter's get_prev is strictly before its start: a start exactly at ``at`` counts.
        # Within the second before a start, that start comes back, after ``at``: the one
        # before it is the latest at or before ``at`` (an always-closed window of every
        # minute let a release through in the last second of a minute).
        starts = croniter(window.schedule, local + dt.timedelta(seconds=1))
        start = starts.get_prev(dt.datetime)
        if start > local:
            start = starts.get_prev(dt.datetime)
    except (ValueError, KeyError, ArithmeticError):
        return None
    start = start.astimezone(dt.UTC)
    end = _plus(start, window.duration)
    return (start, end) if start <= at < end else None


_END_OF_TIME = dt.datetime.max.replace(tzinfo=dt.UTC)


def _plus(moment: dt.datetime, seconds: float) -> dt.datetime:
    """``moment`` + ``seconds``, at most the last moment a datetime holds (an ``--at`` in
    year 9999 must not end in an OverflowError)."""
    try:
        return moment + dt.timedelta(seconds=seconds)
    except OverflowError:
        return _END_OF_TIME


def _next_start(window: model.SyncWindow, at: dt.datetime) -> dt.datetime | None:
    local = at.astimezone(zoneinfo.ZoneInfo(window.time_zone))
    try:
        start: dt.datetime = croniter(window.schedule, local).get_next(dt.datetime)
    except (ValueError, KeyError, ArithmeticError):
        return None
    return start.astimezone(dt.UTC)


def duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _prefix(prefix: str) -> str:
    return "/" + prefix.strip("/")
