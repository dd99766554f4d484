"""The on-call dashboard: server-rendered pages for the engineer paged at 3 a.m.

Apps with state, revision, image tag and health; a page per app (current diff, deployment
history, drift, rollbacks); drift (open first, filters by group prefix and time) with a
downloadable self-contained report; revisions with their outcome, runs and the audit of
actions. Who may read is decided where the router is mounted (``web/auth.py``); the action
buttons call ``/api/v1`` with the signed-in session and its CSRF token, or with a token kept
in sessionStorage. No external asset: CSS and the few lines of JS are inline.

Mount with ``app.include_router(dashboard.dashboard_router(deps))``.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Annotated, Any

import fastapi
from fastapi import responses

from reconciler.core import model, status
from reconciler.core import since as since_filter
from reconciler.shell import readmodel
from reconciler.shell import records as recording
from reconciler.web import context, offload, report

APPS_PAGE = 100
"""Apps per page of the dashboard (10,000 rows are no page for a person)."""
DRIFTS_SHOWN = 200
"""Drift records on the Drift page, open first, then the newest seen (all are counted)."""
REPORT_DRIFTS_MAX = 10_000
"""Drift records in a downloaded report at most, in the same order."""


def dashboard_router(deps: context.Deps, *, root: str = "", api: str = "/api/v1"
                     ) -> fastapi.APIRouter:
    """Pages under ``root`` (``""``: at the site root), whose buttons call the API at
    ``api``."""
    router = fastapi.APIRouter(prefix=root, include_in_schema=False)

    def page(template: str, name: str, **context: Any) -> responses.HTMLResponse:
        html = report.render(template, root=root, page=name, now=deps.clock(), api=api,
                             environment=deps.environment,
                             replica=deps.replica() if deps.replica else None,
                             promotions=deps.promotions is not None, **context)
        return responses.HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @router.get("/", response_class=responses.HTMLResponse)
    @offload.route
    def apps(group: str | None = None, state: str | None = None,
             page_number: Annotated[int, fastapi.Query(alias="page", ge=1)] = 1,
             ) -> responses.HTMLResponse:
        now = deps.status()
        rows = now.by_urgency
        counts = [(str(s), now.state_counts[s]) for s in status.URGENCY]
        group = "/" + group.strip("/") if group and group.strip("/") else None
        shown = rows if group is None and not state else [
            r for r in rows if (group is None or model.is_under(r.app_id, group))
            and (not state or str(r.state) == state)]
        pages = max(1, -(-len(shown) // APPS_PAGE))
        page_number = min(page_number, pages)
        start = (page_number - 1) * APPS_PAGE

        def query(number: int) -> str:
            kept = {"group": group, "state": state, "page": number}
            return urllib.parse.urlencode({k: v for k, v in kept.items() if v})

        return page("apps.html", "apps", rows=shown[start:start + APPS_PAGE],
                    revision=now.revision, live_error=now.live_error,
                    counts=[c for c in counts if c[1]], generated_at=_now(deps),
                    group=group, state=state, states=[str(s) for s in status.URGENCY],
                    total=len(shown), pages=pages, page_number=page_number, query=query)

    @router.get("/runbook", response_class=responses.HTMLResponse)
    @offload.route
    def runbook() -> responses.HTMLResponse:
        return page("runbook.html", "runbook")

    @router.get("/apps/{app_id:path}", response_class=responses.HTMLResponse)
    @offload.route
    def app(app_id: str) -> responses.HTMLResponse:
        detail = readmodel.app_detail(deps.records, deps.status(), "/" + app_id.strip("/"),
                                            live_app=deps.live_app)
        if detail is None:
            raise fastapi.HTTPException(status_code=404, detail=f"unknown app /{app_id}")
        return page("app.html", "apps", d=detail)

    @router.get("/drift", response_class=responses.HTMLResponse)
    @offload.route
    def drift(request: fastapi.Request, prefix: str | None = None, since: str | None = None,
              open_only: bool = False) -> responses.HTMLResponse:
        found, (open_count, resolved_count), error = _filtered(
            deps, prefix=prefix, since=since, open_only=open_only, limit=DRIFTS_SHOWN)
        return page("drift.html", "drift", views=readmodel.drift_views(deps.records, found),
                    prefix=prefix, since=since, open_only=open_only, error=error,
                    open_count=open_count, resolved_count=resolved_count,
                    query=urllib.parse.urlencode(request.query_params))

    @router.get("/drift/report.html", response_class=responses.HTMLResponse)
    @offload.route
    def drift_report(prefix: str | None = None, since: str | None = None,
                     open_only: bool = False) -> responses.HTMLResponse:
        found, counts, _ = _filtered(deps, prefix=prefix, since=since, open_only=open_only,
                                     limit=REPORT_DRIFTS_MAX)
        generated = _now(deps)
        html = report.store_report(deps.records, generated_at=generated, drifts=found,
                                   matching=sum(counts))
        name = f"drift-report-{generated[:19].replace(':', '')}.html"
        return responses.HTMLResponse(html, headers={
            "Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "no-store"})

    @router.get("/history", response_class=responses.HTMLResponse)
    @offload.route
    def history() -> responses.HTMLResponse:
        return page("history.html", "history", revisions=deps.records.revisions(),
                    runs=deps.records.runs(limit=200), audit=deps.records.audit_log(limit=200))

    @router.get("/releases", response_class=responses.HTMLResponse)
    @offload.route
    def releases() -> responses.HTMLResponse:
        return page("releases.html", "releases", releases=deps.records.releases(
            limit=readmodel.RELEASES_SHOWN, apps_shown=readmodel.RELEASE_APPS_SHOWN))

    return router


def _filtered(deps: context.Deps, *, prefix: str | None, since: str | None, open_only: bool,
              limit: int) -> tuple[list[recording.Drift], tuple[int, int], str | None]:
    """The first ``limit`` drift records matching the filters, how many match (open,
    resolved), and what is wrong with the filters."""
    try:
        after = since_filter.parse_since(since, now=deps.clock())
    except ValueError as e:
        return [], (0, 0), str(e)
    found, counts = deps.records.counted_drifts(open_only=open_only, prefix=prefix,
                                                since=after, limit=limit)
    return found, counts, None


def _now(deps: context.Deps) -> str:
    return dt.datetime.fromtimestamp(deps.clock(), dt.UTC).isoformat(timespec="seconds")
