"""Sync windows in a run: which changed apps a closed window holds, and what is recorded.

The decision is :mod:`reconciler.core.windows`' (pure); this module asks it at the run's time
and writes the outcome: a hold per app whose new revision is planned but not applied (its
status then says "waiting for window until ..."), holds ended when their app is applied, and
an audit entry, with who and why, when a manual sync overrode a closed window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

from reconciler.core import model
from reconciler.core import plan as planning
from reconciler.core import windows as sync_windows
from reconciler.shell import records as recording
from reconciler.shell.records import holds

OVERRIDE_ACTION = "sync window override"


def closed_for(desired: model.DesiredState, app_ids: Collection[model.AppId], *,
               trigger: model.Trigger, at: float,
               applied: Mapping[model.AppId, model.JSON] | None = None,
               ) -> dict[model.AppId, sync_windows.Verdict]:
    """The apps of ``app_ids`` that a closed window holds at ``at`` (UNIX seconds).

    A drift correction that would also roll out a definition not applied yet (``applied``:
    the last applied definitions) is a new revision too: its window must be open as well,
    or a hand edit would carry a held release out."""
    scope = sync_windows.scope_of(trigger)
    if scope is None or not desired.settings.windows:
        return {}
    when = dt.datetime.fromtimestamp(at, dt.UTC)
    closed = sync_windows.held(desired.settings.windows, app_ids, scope=scope, at=when)
    if scope is model.WindowScope.DRIFT and applied is not None:
        new = [a for a in app_ids if a in desired.apps and a not in closed
               and applied.get(a) != desired.apps[a].definition]
        closed.update(sync_windows.held(desired.settings.windows, new,
                                        scope=model.WindowScope.REVISIONS, at=when))
    return dict(sorted(closed.items()))


def why_closed(closed: Mapping[model.AppId, sync_windows.Verdict]) -> str:
    """One line for people: which apps wait, until when."""
    return "; ".join(f"{app_id} {verdict.message}" for app_id, verdict in closed.items())


def settle(store: recording.RecordStore, *, desired: model.DesiredState,
           trigger: model.Trigger, plan: planning.Plan,
           closed: Mapping[model.AppId, sync_windows.Verdict], override: str | None,
           requested_by: str | None) -> None:
    """Record what the windows did to this run (call after a run that is not a dry run)."""
    scope = sync_windows.scope_of(trigger)
    if scope is None:
        return
    overridden = {a: v for a, v in closed.items() if a in {s.app_id for s in plan.steps}}
    if override is not None and overridden:
        store.audit(who=requested_by or str(trigger), action=OVERRIDE_ACTION,
                    target=", ".join(sorted(overridden)),
                    result=f"why: {sync_windows.clean_reason(override)}; "
                           f"at revision {desired.revision[:12]}: {why_closed(overridden)}")
    if scope is not model.WindowScope.REVISIONS:
        # A held drift correction is said by its drift record ("correction left out: waiting
        # for window"), and the drift check tries again at its next round.
        return
    # An app held back by another's window (a dependency, an earlier release wave) waits
    # until that window opens: its hold says so.
    waits = [s for s in plan.skipped if s.reason is planning.SkipReason.OUTSIDE_WINDOW]
    held = {s.app_id for s in waits}
    for skip in sorted(waits, key=lambda s: s.app_id):
        verdict = closed.get(skip.app_id) or closed.get(skip.held_by or "")
        if verdict is None:
            continue
        store.hold_for_window(
            app_id=skip.app_id, revision=desired.revision, scope=str(scope),
            until=verdict.until.timestamp() if verdict.until else None,
            reason=skip.detail or verdict.message)
    through = {s.app_id for s in plan.steps} | set(plan.in_sync)
    store.end_holds(app_ids=through - held, revision=desired.revision, scope=str(scope),
                    how=holds.OVERRIDDEN if override is not None else holds.APPLIED)


def due(store: recording.RecordStore, *, revision: str | None, at: float) -> bool:
    """An open hold of ``revision`` whose window has opened by ``at``: time to apply it."""
    if revision is None:
        return False
    return any(h.revision == revision and h.until is not None
               and dt.datetime.fromisoformat(h.until).timestamp() <= at
               for h in store.window_holds())
