"""The soak of a release wave: its apps, watched for ``soak`` seconds after their deployments
ended, must stay healthy before the next wave starts.

One ``GET /v2/apps/{id}`` per app every ``interval`` seconds, assessed by
:func:`core.health.assess`; the first app found neither Healthy nor Suspended ends the soak
as failed, with why. Marathon not answering is no verdict: the soak goes on, and fails only
when the last look (at the end of the soak) could not be taken, since "stayed healthy" was
then never seen. Time is injected (``clock``, ``sleep``): tests soak without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.core import health, model
from reconciler.shell import marathon

_HEALTHY = (health.HealthStatus.HEALTHY, health.HealthStatus.SUSPENDED)


@dataclass(frozen=True)
class Unhealthy:
    """Why a soak failed: the first app seen unhealthy (or Marathon silent at the end)."""

    app_id: model.AppId
    reason: str


def soak(client: marathon.MarathonClient, app_ids: Sequence[model.AppId], *, seconds: float,
         interval: float, clock: Callable[[], float],
         sleep: Callable[[float], None]) -> Unhealthy | None:
    """None when every app stayed healthy for ``seconds``, else the first that did not."""
    ends_at = clock() + seconds
    while True:
        found = _look(client, app_ids)
        now = clock()
        if isinstance(found, Unhealthy):
            return found
        if now >= ends_at:
            return None if found is None else Unhealthy(found, "Marathon did not answer at "
                                                                "the end of the soak")
        sleep(max(0.0, min(interval, ends_at - now)))


def _look(client: marathon.MarathonClient,
          app_ids: Sequence[model.AppId]) -> Unhealthy | model.AppId | None:
    """The first unhealthy app, or the first app Marathon did not answer for, or None."""
    silent: model.AppId | None = None
    for app_id in app_ids:
        try:
            live = client.get_app(app_id, embed=("app.tasks", "app.lastTaskFailure"))
        except marathon.NotFound:
            return Unhealthy(app_id, "gone from Marathon during the soak")
        except marathon.MarathonError:
            silent = silent or app_id
            continue
        assessed = health.assess(app_id, live)
        if assessed.status not in _HEALTHY:
            detail = f"; {assessed.failure}" if assessed.failure else ""
            return Unhealthy(app_id, f"{assessed.status} during the soak "
                                     f"({assessed.healthy}/{assessed.target} healthy{detail})")
    return silent
