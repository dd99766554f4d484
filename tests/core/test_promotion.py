"""Promotion's gate (pure, table-tested): promote, wait, refuse or nothing, and why."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.core import promotion
from reconciler.core.promotion import AppEvidence as App
from reconciler.core.promotion import Decision

D = Decision

HOUR = 3600.0
NOW = 1_800_000_000.0
REF = "lhcbdirac:v8r2p45"
OLD = "lhcbdirac:v8r2p44"


def healthy(app_id: str, *, hours: float, image: str = REF) -> App:
    return App(app_id=app_id, live_image=image, health="Healthy",
               healthy_since=NOW - hours * HOUR, state="in sync")


@pytest.mark.parametrize(("apps", "target", "decision", "blocked"), [
    # every app healthy on the tag for longer than the soak
    ([healthy("/c/a", hours=2), healthy("/c/b", hours=1.5)], "v8r2p44", D.PROMOTE, []),
    # exactly the soak is enough
    ([healthy("/c/a", hours=1)], "v8r2p44", D.PROMOTE, []),
    # one app only half-way: time is all it needs
    ([healthy("/c/a", hours=2), healthy("/c/b", hours=0.5)], "v8r2p44", D.WAIT, ["/c/b"]),
    # one app still on the old tag: refused, whatever the other's soak
    ([healthy("/c/a", hours=2), healthy("/c/b", hours=2, image=OLD)], "v8r2p44", D.REFUSE,
     ["/c/b"]),
    # degraded
    ([App("/c/a", REF, "Degraded", None)], "v8r2p44", D.REFUSE, ["/c/a"]),
    # progressing (a rollout under way) is not healthy yet
    ([App("/c/a", REF, "Progressing", None)], "v8r2p44", D.REFUSE, ["/c/a"]),
    # not on Marathon
    ([App("/c/a", None, "Missing", None)], "v8r2p44", D.REFUSE, ["/c/a"]),
    # healthy but drifted: what runs is not what Git released
    ([App("/c/a", REF, "Healthy", NOW - 2 * HOUR, state="drifted")], "v8r2p44", D.REFUSE,
     ["/c/a"]),
    # healthy since an unknown time never soaks
    ([App("/c/a", REF, "Healthy", None)], "v8r2p44", D.REFUSE, ["/c/a"]),
    # a waiting app and a broken one: refused (time alone will not do)
    ([healthy("/c/a", hours=0.2), App("/c/b", REF, "Degraded", None)], "v8r2p44", D.REFUSE,
     ["/c/a", "/c/b"]),
    # the target has the tag already
    ([healthy("/c/a", hours=2)], "v8r2p45", D.NOTHING, []),
    # no app of the source uses the image
    ([], "v8r2p44", D.REFUSE, []),
])
def test_the_gate_decides_from_every_source_app(
    apps: list[App], target: str, decision: D, blocked: list[str]
) -> None:
    verdict = promotion.judge(image="lhcbdirac", source_reference=REF, target_tag=target,
                              apps=apps, soak=HOUR, now=NOW)
    assert verdict.decision is decision
    assert [b.app_id for b in verdict.blockers] == blocked
    assert verdict.accepted is (decision is D.PROMOTE)


def test_a_refusal_names_the_app_and_since_when_it_is_healthy() -> None:
    verdict = promotion.judge(image="lhcbdirac", source_reference=REF, target_tag="v8r2p44",
                              apps=[healthy("/c/a", hours=2), healthy("/c/b", hours=0.25)],
                              soak=HOUR, now=NOW)
    text = verdict.message(source="certification", target="production")
    assert "refused" in text
    assert "/c/b: healthy since 2027-01-15T07:45:00+00:00, for 15m of 1h" in text
    assert verdict.ready_at == NOW + 0.75 * HOUR
    assert verdict.as_json()["blockers"][0]["soaked_at"] == "2027-01-15T08:45:00+00:00"


def test_a_digest_pinned_in_the_source_must_be_the_one_live() -> None:
    pinned = f"{REF}@sha256:{'a' * 64}"
    verdict = promotion.judge(image="lhcbdirac", source_reference=pinned, target_tag="v8r2p44",
                              apps=[healthy("/c/a", hours=2)], soak=HOUR, now=NOW)
    assert verdict.decision is D.REFUSE
    assert verdict.tag == f"v8r2p45@sha256:{'a' * 64}"
    ok = promotion.judge(image="lhcbdirac", source_reference=pinned, target_tag="v8r2p44",
                         apps=[healthy("/c/a", hours=2, image=pinned)], soak=HOUR, now=NOW)
    assert ok.decision is D.PROMOTE


def test_an_image_unknown_to_the_source_is_refused() -> None:
    verdict = promotion.judge(image="nginx", source_reference=None, target_tag="1.25",
                              apps=[], soak=HOUR, now=NOW)
    assert verdict.decision is D.REFUSE
    assert "no image 'nginx'" in verdict.reason


@pytest.mark.parametrize(("tasks", "state_since", "expected"), [
    # the newest start of a healthy streak among the tasks
    ([{"state": "TASK_RUNNING", "startedAt": "2026-11-29T10:00:00Z",
       "healthCheckResults": [{"alive": True, "firstSuccess": "2026-11-29T10:00:05Z"}]},
      {"state": "TASK_RUNNING", "startedAt": "2026-11-29T10:01:00Z",
       "healthCheckResults": [{"alive": True, "firstSuccess": "2026-11-29T10:01:07Z"}]}],
     None, "2026-11-29T10:01:07+00:00"),
    # a health check failure restarts the streak
    ([{"state": "TASK_RUNNING", "startedAt": "2026-11-29T10:00:00Z",
       "healthCheckResults": [{"alive": True, "firstSuccess": "2026-11-29T10:00:05Z",
                               "lastFailure": "2026-11-29T11:30:00Z"}]}],
     None, "2026-11-29T11:30:00+00:00"),
    # not before the status model's since (applied, last config change or scaling)
    ([{"state": "TASK_RUNNING", "startedAt": "2026-11-29T10:00:00Z"}],
     "2026-11-29T12:00:00+00:00", "2026-11-29T12:00:00+00:00"),
    # no task: unknown
    ([], "2026-11-29T12:00:00+00:00", None),
])
def test_healthy_since_is_the_start_of_the_newest_healthy_streak(
    tasks: list[dict[str, object]], state_since: str | None, expected: str | None
) -> None:
    found = promotion.healthy_since({"id": "/c/a", "tasks": tasks}, in_state_since=state_since)
    shown = None if found is None else dt.datetime.fromtimestamp(found, dt.UTC).isoformat()
    assert shown == expected


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (90, "1m30s"), (3600, "1h"), (86400 + 7200, "1d2h")])
def test_durations_read_short(seconds: float, text: str) -> None:
    assert promotion.duration(seconds) == text
