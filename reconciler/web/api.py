"""The JSON API under ``/api/v1``: what the dashboard shows, for programs, and the actions.

Reading is open or needs a viewer, as configured. Every action is a POST that needs an
operator (:mod:`reconciler.web.auth`: a bearer token, a provider's JWT or the dashboard's
session); it answers 401 to nobody and 403 to a lesser role. Every action carried out goes to
the audit log with who asked (the person, ``token:<name>``, or for the single API token the
client address plus the ``X-Reconciler-User`` header when given); refused ones too, up to a
rate per client (:mod:`reconciler.web.refusals`). Lists are pages: ``GET /audit`` and
``GET /history`` give the newest ``limit`` entries, ``GET /drift`` the newest recorded, and
``next_cursor`` to pass as ``cursor`` for the next page;
``GET /apps`` and ``GET /releases/{revision}/apps`` go by app id;
``GET /releases`` gives the newest ``limit`` releases, at most 100 apps listed in each.

Mount with ``app.include_router(api.api_router(deps))``; its own OpenAPI document is served at
``/api/v1/openapi.json`` whatever the application's settings.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from typing import Annotated, Any

import fastapi
from fastapi import openapi as fastapi_openapi

from reconciler.core import render
from reconciler.core import since as since_filter
from reconciler.core import windows as sync_windows
from reconciler.shell import readmodel, records
from reconciler.web import auth, context, offload, promotions, refusals

PREFIX = "/api/v1"
AUDIT_PAGE = 100
APPS_PAGE = 1000
APPS_PAGE_MAX = 10_000
AUDIT_PAGE_MAX = 1000
HISTORY_PAGE = 1000
HISTORY_PAGE_MAX = 10_000
DRIFT_PAGE = 1000
DRIFT_PAGE_MAX = 10_000
RECORD_ID_MAX = 2**63 - 1
"""The largest id a record can have (SQLite's and PostgreSQL's 64-bit integers): a larger
one asked for is refused, not handed to the driver, which would fail on it."""
RELEASES_PAGE_MAX = 100


_AppCursor = Annotated[str | None, fastapi.Query(max_length=1000,
                                                 description="the app id to list after")]
_AppOrGroup = Annotated[str | None, fastapi.Query(max_length=1000)]
_Revision = Annotated[str, fastapi.Path(max_length=200, description="a revision released")]
_SinceText = Annotated[str | None, fastapi.Query(max_length=100,
                                                 description="30m, 24h, 7d or an ISO time")]
_Override = Annotated[str | None, fastapi.Query(max_length=500,
                                                description="why a closed sync window is "
                                                            "overridden (audited)")]


def api_router(deps: context.Deps, *, prefix: str = PREFIX) -> fastapi.APIRouter:
    """The API under ``prefix`` (an environment's is ``/api/v1/environments/<name>``)."""
    router = fastapi.APIRouter(prefix=prefix, tags=["reconciler"])
    refused = refusals.RefusalAudit(deps.records.audit, clock=deps.clock)

    def audit_refusal(request: fastapi.Request, who: str, reason: str) -> None:
        refused.refused(client=auth.client_address(request), who=who,
                        action=f"{request.method} {request.url.path}", reason=reason)

    # A default, not an Annotated alias: annotations are strings, resolved in module globals.
    # Every action needs an operator (web/auth.py): one dependency, the same for all of them.
    needs_operator = fastapi.Depends(deps.policy.requires(auth.Role.OPERATOR,
                                                          refused=audit_refusal))
    needs_token = needs_operator  # the older name, for routes written before roles

    @router.get("/openapi.json", include_in_schema=False)
    @offload.route
    def openapi() -> dict[str, Any]:
        return fastapi_openapi.utils.get_openapi(
            title="reconciler", version="1", routes=router.routes,
            description="On-call API of reconciler: apps, drift, history, actions.")

    # Actions come first: a GET on /apps/{id} must not swallow /apps/{id}/sync.
    def window_gate(app_id: str | None, who: str, override: str | None) -> dict[str, Any] | None:
        """A sync while a sync window holds the app(s): refused (409) without an override
        reason; with one, queued past the window (the engine audits what it overrode)."""
        closed = deps.closed_window(app_id) if deps.closed_window else None
        if closed is None:
            return None
        target = app_id or "all apps"
        override = sync_windows.clean_reason(override) if override else None
        if not override or deps.override_sync is None:
            message = f"refused: {closed}; to sync anyway, give override=<why>"
            deps.records.audit(who=who, action="sync", target=target, result=message)
            raise fastapi.HTTPException(status_code=409, detail=message)
        message = deps.override_sync(app_id, who, override)
        deps.records.audit(who=who, action="sync (window override)", target=target,
                           result=f"why: {override}; {message}")
        return {"accepted": True, "message": message, "requested_by": who,
                "override": override}

    @router.post("/sync")
    def sync_all(who: str = needs_token, override: _Override = None) -> dict[str, Any]:
        if (overridden := window_gate(None, who, override)) is not None:
            return overridden
        message = deps.request_sync(None, who)
        deps.records.audit(who=who, action="sync", target="all apps", result=message)
        return {"accepted": True, "message": message, "requested_by": who}

    @router.post("/apps/{app_id:path}/sync")
    def sync_app(app_id: str, who: str = needs_token, override: _Override = None
                 ) -> dict[str, Any]:
        """Says what the sync will change (each field, old -> new) before queueing it, or
        why it will not (quarantined, blocked, nothing to do): ``accepted`` false then.
        While a sync window holds the app: 409, unless ``override`` says why."""
        app_id = _absolute(app_id)
        if (overridden := window_gate(app_id, who, override)) is not None:
            return overridden
        preview = deps.preview_sync(app_id) if deps.preview_sync else None
        if preview is not None and not preview.accepted:
            deps.records.audit(who=who, action="sync", target=app_id, result=preview.message)
            return {**preview.as_json(), "requested_by": who}
        message = deps.request_sync(app_id, who)
        if preview is not None:
            message = f"{preview.message}; {message}"
        deps.records.audit(who=who, action="sync", target=app_id, result=message)
        return {**(preview.as_json() if preview else {}), "accepted": True, "message": message,
                "requested_by": who}

    @router.post("/apps/{app_id:path}/retry")
    def retry_app(app_id: str, who: str = needs_token) -> dict[str, Any]:
        """Lift the app's quarantine and sync it again."""
        app_id = _absolute(app_id)
        lifted = deps.records.lift_quarantine(app_id=app_id, lifted_by=who)
        deps.changed()
        message = f"{lifted} quarantine(s) lifted; " + deps.request_sync(app_id, who)
        deps.records.audit(who=who, action="retry", target=app_id, result=message)
        return {"accepted": True, "lifted": lifted, "message": message, "requested_by": who}

    @router.post("/apps/{app_id:path}/rollback")
    def rollback_app(app_id: str, who: str = needs_token) -> dict[str, Any]:
        app_id = _absolute(app_id)
        message = deps.rollback(app_id, who)
        deps.records.audit(who=who, action="rollback", target=app_id, result=message)
        return {"accepted": True, "message": message, "requested_by": who}

    @router.post("/drift/{drift_id}/acknowledge")
    def acknowledge(drift_id: Annotated[int, fastapi.Path(ge=1, le=RECORD_ID_MAX)],
                    who: str = needs_token) -> dict[str, Any]:
        try:
            deps.records.drift(drift_id)
        except LookupError:
            deps.records.audit(who=who, action="acknowledge drift", target=str(drift_id),
                               result="not found")
            raise fastapi.HTTPException(status_code=404,
                                        detail=f"no drift {drift_id}") from None
        drift = deps.records.acknowledge_drift(drift_id, by=who)
        deps.changed()
        deps.records.audit(who=who, action="acknowledge drift",
                           target=f"{drift.app_id} drift {drift_id}", result="acknowledged")
        return {"acknowledged": True, "drift": readmodel.drift_views(deps.records, [drift])[0]
                .as_json()}

    if deps.promotions is not None:
        promotions.add_routes(router, deps=deps, needs_token=needs_token)

    @router.get("/apps")
    @offload.route
    def apps(limit: Annotated[int, fastapi.Query(ge=1, le=APPS_PAGE_MAX)] = APPS_PAGE,
             cursor: _AppCursor = None) -> dict[str, Any]:
        """By app id; ``next_cursor`` (null on the last page) gives the next page."""
        now = deps.status()
        rows = now.rows
        start = 0 if cursor is None else bisect.bisect_right(now.app_ids, cursor)
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        return {"apps": [r.as_json() for r in page],
                "next_cursor": page[-1].app_id if more and page else None}

    @router.get("/apps/{app_id:path}")
    @offload.route
    def app(app_id: str) -> dict[str, Any]:
        app_id = _absolute(app_id)
        detail = readmodel.app_detail(deps.records, deps.status(), app_id,
                                            live_app=deps.live_app)
        if detail is None:
            raise fastapi.HTTPException(status_code=404, detail=f"unknown app {app_id}")
        return {
            **detail.row.as_json(),
            "diff": render.render_json([detail.diff]) if detail.diff else None,
            "history": [e.as_json() for e in detail.entries],
            "drift": [v.as_json() for v in detail.drifts],
            "rollbacks": detail.rollbacks,
            "quarantines": detail.quarantines,
        }

    @router.get("/drift")
    @offload.route
    def drift(open_only: bool = False, prefix: _AppOrGroup = None,
              since: _SinceText = None,
              limit: Annotated[int, fastapi.Query(ge=1, le=DRIFT_PAGE_MAX)] = DRIFT_PAGE,
              cursor: Annotated[int | None, fastapi.Query(ge=1, le=RECORD_ID_MAX)] = None
              ) -> dict[str, Any]:
        """The newest recorded first (by drift id: a page by the time last seen would skip
        the drift seen again meanwhile); ``next_cursor`` (null on the last page) gives the
        next page."""
        found, before = deps.records.drift_page(
            limit=limit, before=cursor, open_only=open_only, prefix=prefix,
            since=_since(since, deps))
        return {"drift": [v.as_json() for v in readmodel.drift_views(deps.records, found)],
                "next_cursor": before}

    @router.get("/history")
    @offload.route
    def history(app_id: _AppOrGroup = None, since: _SinceText = None,
                limit: Annotated[int, fastapi.Query(ge=1, le=HISTORY_PAGE_MAX)] = HISTORY_PAGE,
                cursor: Annotated[str | None, fastapi.Query(max_length=80)] = None
                ) -> dict[str, Any]:
        """The newest ``limit`` entries, in time order; ``next_cursor`` (null when there is
        none older) gives the page before them."""
        after = _since(since, deps)
        entries = deps.records.history(
            app_id=_absolute(app_id) if app_id else None,
            since=None if after is None else dt.datetime.fromtimestamp(after, dt.UTC),
            limit=limit + 1, before=_history_key(cursor))
        page = entries[-limit:]
        return {"history": [e.as_json() for e in page],
                "next_cursor": _history_cursor(page[0].key) if len(entries) > limit else None}

    @router.get("/revisions")
    @offload.route
    def revisions() -> dict[str, Any]:
        return {"revisions": deps.records.revisions()}

    @router.get("/releases")
    @offload.route
    def releases(limit: Annotated[int, fastapi.Query(ge=1, le=RELEASES_PAGE_MAX)
                                  ] = readmodel.RELEASES_SHOWN) -> dict[str, Any]:
        """Releases, newest first (at most ``limit``): author, message, trigger, images
        changed, overall outcome, apps counted per outcome and at most 100 of them listed,
        those needing attention first (every app: ``/releases/{revision}/apps``)."""
        return {"releases": [r.as_json() for r in deps.records.releases(
            limit=limit, apps_shown=readmodel.RELEASE_APPS_SHOWN)]}

    @router.get("/releases/{revision}/apps")
    @offload.route
    def release_apps(revision: _Revision,
                     limit: Annotated[int, fastapi.Query(ge=1, le=APPS_PAGE_MAX)] = APPS_PAGE,
                     cursor: _AppCursor = None) -> dict[str, Any]:
        """Every app of one release and how its change ended, by app id; ``next_cursor``
        (null on the last page) gives the next page."""
        found = deps.records.release_apps(revision, after=cursor, limit=limit + 1)
        if not found and deps.records.release(revision, apps_shown=0) is None:
            raise fastapi.HTTPException(status_code=404, detail=f"no release of {revision}")
        page = found[:limit]
        return {"apps": [a.as_json() for a in page],
                "next_cursor": page[-1].app_id if len(found) > limit else None}

    @router.get("/audit")
    @offload.route
    def audit(limit: Annotated[int, fastapi.Query(ge=1, le=AUDIT_PAGE_MAX)] = AUDIT_PAGE,
              cursor: Annotated[int | None, fastapi.Query(ge=1, le=RECORD_ID_MAX)] = None
              ) -> dict[str, Any]:
        """Newest first; ``next_cursor`` (null on the last page) gives the next page."""
        entries = deps.records.audit_log(limit=limit, before=cursor)
        more = len(entries) == limit and bool(
            deps.records.audit_log(limit=1, before=entries[-1].audit_id))
        return {"audit": entries, "next_cursor": entries[-1].audit_id if more else None}

    return router


def _history_cursor(key: records.HistoryKey) -> str:
    """``GET /history``'s ``next_cursor``: the key of the oldest entry of the page."""
    return f"{key.at!r}:{key.rank}:{key.id}"


def _history_key(cursor: str | None) -> records.HistoryKey | None:
    """The key a ``next_cursor`` of ``GET /history`` names; 422 for anything else (a number
    the database cannot take included)."""
    if cursor is None:
        return None
    try:
        at, rank, entry_id = cursor.split(":")
        key = records.HistoryKey(at=float(at), rank=int(rank), id=int(entry_id))
    except ValueError:  # not three parts, or not numbers
        key = None
    if key is None or not math.isfinite(key.at) or not 0 <= key.rank <= RECORD_ID_MAX or \
            not 0 <= key.id <= RECORD_ID_MAX:
        raise fastapi.HTTPException(status_code=422, detail=f"not a history cursor: {cursor!r}")
    return key


def _absolute(app_id: str) -> str:
    return "/" + app_id.strip("/")


def _since(text: str | None, deps: context.Deps) -> float | None:
    try:
        return since_filter.parse_since(text, now=deps.clock())
    except ValueError as e:
        raise fastapi.HTTPException(status_code=422, detail=str(e)) from e
