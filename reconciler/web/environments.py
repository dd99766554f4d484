"""The web application of several environments (``RECONCILER_ENVIRONMENTS``).

Each environment gets the whole on-call surface of a single controller under its own
prefix: the dashboard at ``/environments/<name>/`` and the API at
``/api/v1/environments/<name>/`` (with the promotion routes, :mod:`.promotions`, for an
environment that names ``promote_from``). Across environments: ``/`` lists them with their
apps' states, ``/api/v1/environments`` and ``/api/v1/status`` say each one's status,
``/healthz``, ``/readyz`` (a reason per environment) and ``/metrics`` (app states also
per environment) cover them all, and a webhook makes every environment poll.

Every environment's pages, API, overview row and app gauges read that environment's
:class:`statusboard.StatusBoard` (its controller's, started and stopped with it), as the
single environment's app does: nothing computes a status per request.
"""

from __future__ import annotations

import re
from typing import Any

import fastapi
from fastapi import responses

from reconciler.core import status
from reconciler.shell import environments, promoter, telemetry
from reconciler.web import (
    api,
    app,
    auth,
    context,
    dashboard,
    offload,
    oidc,
    ops,
    report,
    webhooks,
)

ENVIRONMENTS = f"{api.PREFIX}/environments"


def create_fleet_app(fleet: environments.Fleet) -> fastapi.FastAPI:
    web = fastapi.FastAPI(title="reconciler", openapi_url=None, docs_url=None, redoc_url=None)
    settings = fleet.settings
    web.include_router(webhooks.webhook_router(secret=settings.webhook_secret,
                                               trigger_poll=fleet.trigger_poll))
    web.include_router(ops.ops_router(ready=fleet.not_ready_because,
                                      alive=lambda: fleet.alive,
                                      before_scrape=lambda: _before_scrape(fleet),
                                      status=fleet.status))

    # One access policy for every environment (web/auth.py): the same people, roles, sign-on.
    policy = auth.Access.from_settings(settings)
    api_reads = [fastapi.Depends(policy.reader(pages=False))]
    page_reads = [fastapi.Depends(policy.reader(pages=True))]

    @web.get(f"{api.PREFIX}/status", dependencies=api_reads)
    @offload.route
    def fleet_status() -> dict[str, Any]:
        return fleet.status()

    @web.get(ENVIRONMENTS, dependencies=api_reads)
    @offload.route
    def listed() -> dict[str, Any]:
        return {"environments": [_summary(fleet, name) for name in fleet.members]}

    @web.get("/", response_class=responses.HTMLResponse, dependencies=page_reads)
    @offload.route
    def overview() -> responses.HTMLResponse:
        html = report.render("environments.html", environments=[
            _summary(fleet, name) for name in fleet.members])
        return responses.HTMLResponse(html, headers={"Cache-Control": "no-store"})

    for name in fleet.members:
        deps = _deps(fleet, name, policy)
        prefix = f"{ENVIRONMENTS}/{name}"
        web.include_router(api.api_router(deps, prefix=prefix), dependencies=api_reads)
        web.include_router(dashboard.dashboard_router(deps, root=f"/environments/{name}",
                                                      api=prefix), dependencies=page_reads)
        if deps.promotions is not None:
            web.include_router(_promotions_page(deps, root=f"/environments/{name}",
                                                api_prefix=prefix), dependencies=page_reads)
    oidc.install(web, settings=settings, policy=policy)
    return app.harden(web, form_targets=app.origins(settings.oidc_issuer))


def _deps(fleet: environments.Fleet, name: str, policy: auth.Access) -> context.Deps:
    controller = fleet.members[name].controller
    env = fleet.members[name].environment
    promotions = None
    if env.promote_from is not None:
        def promote(image: str, who: str) -> tuple[bool, str, dict[str, Any]]:
            result = fleet.promoter.promote(image, target=name, requested_by=who)
            return result.promoted, result.message, result.as_json()

        promotions = context.Promotions(
            source=env.promote_from,
            assess=lambda image: fleet.promoter.assess(image, target=name).as_json(),
            promote=promote, images=lambda: fleet.promoter.images(name))
    return context.Deps(records=controller.records, live_apps=controller.live_apps,
                        live_app=controller.live_app,
                        request_sync=controller.request_sync, rollback=controller.rollback,
                        preview_sync=controller.preview_sync,
                        token=fleet.settings.api_token, access=policy,
                        promotions=promotions, environment=name,
                        board=controller.status_board)


def _summary(fleet: environments.Fleet, name: str) -> dict[str, Any]:
    member = fleet.members[name]
    env = member.environment
    counts = member.controller.status_board.snapshot().state_counts
    return {"name": name, "path": env.path,
            # A URL may carry user:password@: never shown.
            "marathon": [re.sub(r"(://)[^/@]+@", r"\1", u) for u in member.controller.client.urls],
            "promoteFrom": env.promote_from, "soakSeconds": env.soak,
            "autoPromote": list(env.auto_promote),
            "apps": {str(s): counts[s] for s in status.URGENCY if counts[s]},
            "status": member.controller.status().as_json()}


def _before_scrape(fleet: environments.Fleet) -> None:
    open_drift = 0
    for member in fleet.members.values():
        member.controller.refresh_metrics()
        # Each board publishes its environment's app gauges with each new snapshot.
        rows = member.controller.status_board.snapshot().rows
        open_drift += sum(1 for r in rows if r.open_drifts)
    # Each controller set it to its own count: the fleet's is the sum of them.
    telemetry.OPEN_DRIFT.set(open_drift)


def _promotions_page(deps: context.Deps, *, root: str, api_prefix: str) -> fastapi.APIRouter:
    router = fastapi.APIRouter(prefix=root, include_in_schema=False)
    promotions = deps.promotions
    assert promotions is not None

    @router.get("/promotions", response_class=responses.HTMLResponse)
    @offload.route
    def page() -> responses.HTMLResponse:
        checks: list[dict[str, Any]] = []
        error = None
        try:
            for image in promotions.images():
                try:
                    checks.append(promotions.assess(image))
                except promoter.PromotionError as e:
                    checks.append({"image": image, "decision": "error", "reason": e.reason,
                                   "blockers": [], "message": e.reason})
        except promoter.PromotionError as e:
            error = e.reason
        html = report.render(
            "promotions.html", root=root, page="promotions", now=deps.clock(), api=api_prefix,
            environment=deps.environment, promotions=True, source=promotions.source,
            checks=checks, error=error, records=deps.records.promotions(limit=100))
        return responses.HTMLResponse(html, headers={"Cache-Control": "no-store"})

    return router
