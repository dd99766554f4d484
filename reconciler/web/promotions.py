"""Promotion routes of an environment that takes promotions (it names ``promote_from``).

``GET  .../promotions``                the promotions into this environment, newest first
``GET  .../promotions/{image}/check``  the gate's verdict now (promote, wait, refuse,
                                       nothing to promote; which app, healthy since when)
``POST .../promotions/{image}``        promote: the commit and the record when the gate
                                       allows (200), 409 with what is missing when it does
                                       not; an action, so it needs the actions' credential
                                       (the same dependency as sync and rollback)

Added to the environment's API router by :func:`reconciler.web.api.api_router`.
"""

from __future__ import annotations

from typing import Annotated, Any

import fastapi

from reconciler.shell import promoter
from reconciler.web import context, offload

IMAGE_NAME_MAX = 200
"""An image is named in ``images.yaml`` (lower-case letters, digits, ``._-``): a longer or
other name is refused (422) before it reaches the promoter or the audit log."""

ImageName = Annotated[str, fastapi.Path(max_length=IMAGE_NAME_MAX,
                                        pattern=r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")]


def add_routes(router: fastapi.APIRouter, *, deps: context.Deps, needs_token: Any) -> None:
    promotions = deps.promotions
    assert promotions is not None

    @router.get("/promotions")
    @offload.route
    def listed() -> dict[str, Any]:
        return {"from": promotions.source,
                "promotions": [p.as_json() for p in deps.records.promotions()]}

    @router.get("/promotions/{image}/check")
    @offload.route
    def check(image: ImageName) -> dict[str, Any]:
        try:
            return promotions.assess(image)
        except promoter.PromotionError as e:
            raise fastapi.HTTPException(status_code=422, detail=e.reason) from e

    # A default, not an Annotated alias: annotations are strings, resolved in module globals.
    @router.post("/promotions/{image}")
    def promote(image: ImageName, who: str = needs_token) -> dict[str, Any]:
        """Promote ``image`` from the source environment if it has soaked; otherwise 409
        saying which app holds it back and since when it is healthy."""
        try:
            promoted, message, result = promotions.promote(image, who)
        except promoter.PromotionError as e:
            deps.records.audit(who=who, action="promote", target=image, result=e.reason)
            raise fastapi.HTTPException(status_code=422, detail=e.reason) from e
        if not promoted:
            raise fastapi.HTTPException(status_code=409, detail=message)
        return {**result, "accepted": True, "requested_by": who}
