"""The on-call vocabulary: one state word per app, most urgent first; image tags; time filters."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.core import health, model
from reconciler.web import views


def _health(status: health.HealthStatus) -> health.AppHealth:
    return health.AppHealth(app_id="/a", status=status, target=1, healthy=1, running=1,
                            staged=0, version=None, deployment_ids=(), step=None, failure=None)


@pytest.mark.parametrize(("status", "quarantined", "drifted", "in_sync", "expected"), [
    (health.HealthStatus.HEALTHY, False, False, True, model.AppState.IN_SYNC),
    (health.HealthStatus.HEALTHY, False, False, False, model.AppState.OUT_OF_SYNC),
    (health.HealthStatus.HEALTHY, False, True, False, model.AppState.DRIFTED),
    (health.HealthStatus.PROGRESSING, False, True, True, model.AppState.PROGRESSING),
    (health.HealthStatus.DEGRADED, False, True, True, model.AppState.DEGRADED),
    (health.HealthStatus.MISSING, False, False, False, model.AppState.DEGRADED),
    (health.HealthStatus.DEGRADED, True, True, False, model.AppState.QUARANTINED),
])
def test_state_word_puts_what_needs_a_human_first(
        status: health.HealthStatus, quarantined: bool, drifted: bool, in_sync: bool,
        expected: model.AppState) -> None:
    assert views.app_state(assessed=_health(status), quarantined=quarantined, drifted=drifted,
                           in_sync_with_git=in_sync) is expected


@pytest.mark.parametrize(("image", "tag"), [
    ("lhcbdirac:v8r2p44", "v8r2p44"),
    ("registry.cern.ch:5000/lhcb/lhcbdirac:v8r2p45", "v8r2p45"),
    ("registry.cern.ch:5000/lhcb/lhcbdirac", "latest"),
    (None, None),
])
def test_image_tag_ignores_a_registry_port(image: str | None, tag: str | None) -> None:
    assert views.image_tag(image) == tag


def test_since_accepts_durations_and_iso_times_and_explains_the_rest() -> None:
    now = 1_000_000.0
    assert views.parse_since("30m", now=now) == now - 1800
    assert views.parse_since("24h", now=now) == now - 86400
    assert views.parse_since("7d", now=now) == now - 7 * 86400
    assert views.parse_since("", now=now) is None
    at = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)
    assert views.parse_since("2026-11-25T03:00:00+00:00", now=now) == at.timestamp()
    assert views.parse_since("2026-11-25T03:00:00", now=now) == at.timestamp()
    with pytest.raises(ValueError, match="24h"):
        views.parse_since("yesterday", now=now)


def test_apps_needing_a_human_come_first() -> None:
    def row(app_id: str, state: model.AppState) -> views.AppRow:
        return views.AppRow(app_id=app_id, state=state, revision=None, image=None,
                            image_tag=None, health="Healthy", healthy=1, instances=1,
                            open_drifts=0, quarantine=None)
    rows = [row("/a", model.AppState.IN_SYNC), row("/b", model.AppState.DRIFTED),
            row("/c", model.AppState.QUARANTINED), row("/d", model.AppState.DEGRADED),
            row("/e", model.AppState.IN_SYNC)]
    assert [r.app_id for r in views.by_urgency(rows)] == ["/c", "/d", "/b", "/a", "/e"]
    assert set(views.URGENCY) == set(model.AppState)
