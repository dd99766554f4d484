"""App status: the one place that classifies apps for people. Pure.

Given what the records say (desired definitions of the newest revision, what was last applied,
active quarantines, open drifts) and what Marathon says (the live apps), :func:`app_statuses`
gives each app one state word from a closed set (:class:`model.AppState`), most urgent first,
with the health figures behind it. The dashboard, ``/api/v1/``, ``reconciler status`` and the
metrics all read this; nothing else classifies apps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from reconciler.core import health, model
from reconciler.core import images as imaging

JSON = model.JSON

URGENCY = (model.AppState.QUARANTINED, model.AppState.DEGRADED, model.AppState.PROGRESSING,
           model.AppState.DRIFTED, model.AppState.OUT_OF_SYNC, model.AppState.IN_SYNC)
"""State words from the one that most needs a human to the calmest (the dashboard's order)."""


@dataclass(frozen=True)
class Applied:
    """What reconciler last applied to an app: the revision and its desired definition."""

    revision: str
    definition: JSON


@dataclass(frozen=True)
class AppStatus:
    app_id: str
    state: model.AppState
    revision: str | None
    """The config repo revision last applied to this app."""
    image: str | None
    image_tag: str | None
    health: str
    healthy: int
    instances: int
    open_drifts: int
    quarantine: str | None
    """Why the app is quarantined, when it is."""
    failure: str | None = None

    def as_json(self) -> JSON:
        out = asdict(self)
        out["state"] = str(self.state)
        return out


def app_state(*, assessed: health.AppHealth, quarantined: bool, drifted: bool,
              in_sync_with_git: bool) -> model.AppState:
    """The one status word, most urgent first: a human must act on the first ones."""
    if quarantined:
        return model.AppState.QUARANTINED
    if assessed.status in (health.HealthStatus.DEGRADED, health.HealthStatus.MISSING):
        return model.AppState.DEGRADED
    if assessed.status is health.HealthStatus.PROGRESSING:
        return model.AppState.PROGRESSING
    if drifted:
        return model.AppState.DRIFTED
    if not in_sync_with_git:
        return model.AppState.OUT_OF_SYNC
    return model.AppState.IN_SYNC


def app_statuses(
    *, desired: Mapping[str, JSON], applied: Mapping[str, Applied], live_apps: Sequence[JSON],
    quarantines: Mapping[str, str], open_drifts: Mapping[str, int],
) -> list[AppStatus]:
    """Every app Git or reconciler knows of, sorted by id, with its state and health.

    ``quarantines`` maps an app to why it is quarantined; ``open_drifts`` to how many drift
    records are open for it.
    """
    live_by_id = {str(a.get("id")): a for a in live_apps}
    statuses = []
    for app_id in sorted(desired.keys() | applied.keys()):
        live = live_by_id.get(app_id)
        assessed = health.assess(app_id, live)
        last = applied.get(app_id)
        in_sync = last is not None and app_id in desired and last.definition == desired[app_id]
        image = _image(live) or _image(desired.get(app_id))
        statuses.append(AppStatus(
            app_id=app_id,
            state=app_state(assessed=assessed, quarantined=app_id in quarantines,
                            drifted=app_id in open_drifts, in_sync_with_git=in_sync),
            revision=last.revision if last else None, image=image, image_tag=image_tag(image),
            health=str(assessed.status), healthy=assessed.healthy, instances=assessed.target,
            open_drifts=open_drifts.get(app_id, 0), quarantine=quarantines.get(app_id),
            failure=assessed.failure))
    return statuses


def by_urgency(statuses: Sequence[AppStatus]) -> list[AppStatus]:
    return sorted(statuses, key=lambda s: (URGENCY.index(s.state), s.app_id))


def image_tag(image: str | None) -> str | None:
    if not image:
        return None
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _image(app: Mapping[str, Any] | None) -> str | None:
    return None if app is None else imaging.image_of(app)
