"""Sync windows, pure: which window holds an app at a given time, until when, and the
``windows:`` section of reconciler.yaml checked with path and line."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciler.core import load as loading
from reconciler.core import model
from reconciler.core import windows as sync_windows
from tests.core import repo

UTC = dt.UTC
REVISIONS, DRIFT = model.WindowScope.REVISIONS, model.WindowScope.DRIFT


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _window(kind: str, schedule: str, duration: float, **extra: object) -> model.SyncWindow:
    return model.SyncWindow(kind=model.WindowKind(kind), schedule=schedule, duration=duration,
                            **extra)  # type: ignore[arg-type]


WEEKEND_FREEZE = _window("deny", "0 18 * * 5", 62 * 3600, time_zone="Europe/Zurich",
                         groups=("/dirac-prod",))
"""Friday 18:00 to Monday 08:00, Zurich time: no one on call."""
OFFICE_HOURS = _window("allow", "0 8 * * 1-5", 10 * 3600, time_zone="Europe/Zurich",
                       groups=("/dirac-prod",), scopes=frozenset({REVISIONS}))


def test_a_deny_window_holds_its_group_until_it_ends_in_its_time_zone() -> None:
    saturday = _at("2026-12-05T12:00:00+00:00")
    verdict = sync_windows.decide([WEEKEND_FREEZE], app_id="/dirac-prod/web/portal",
                                  scope=REVISIONS, at=saturday)
    assert not verdict.allowed
    # Monday 08:00 in Zurich is 07:00 UTC in winter.
    assert verdict.until == _at("2026-12-07T07:00:00+00:00")
    assert verdict.message.startswith("waiting for window until 2026-12-07T07:00:00+00:00")
    assert "deny" in verdict.because and "62h" in verdict.because


def test_a_deny_window_leaves_other_groups_and_other_times_alone() -> None:
    saturday = _at("2026-12-05T12:00:00+00:00")
    assert sync_windows.decide([WEEKEND_FREEZE], app_id="/dirac-cert/web/portal",
                               scope=REVISIONS, at=saturday).allowed
    assert sync_windows.decide([WEEKEND_FREEZE], app_id="/dirac-prod/web/portal",
                               scope=REVISIONS, at=_at("2026-12-02T12:00:00+00:00")).allowed
    # The opening minute itself is inside: Friday 18:00 Zurich = 17:00 UTC.
    assert not sync_windows.decide([WEEKEND_FREEZE], app_id="/dirac-prod/x", scope=DRIFT,
                                   at=_at("2026-12-04T17:00:00+00:00")).allowed
    assert sync_windows.decide([WEEKEND_FREEZE], app_id="/dirac-prod/x", scope=DRIFT,
                               at=_at("2026-12-04T16:59:59+00:00")).allowed


def test_a_window_open_for_longer_than_its_period_holds_in_the_last_second_before_a_start(
) -> None:
    # Every minute for an hour: always closed. In the second before each minute the start
    # looked up was the coming one, after the moment judged, and the window read as open
    # (a CI run let a held release through that way).
    always = _window("deny", "* * * * *", 3600, groups=("/dirac",))
    for moment in ("2026-12-02T11:02:59.500000+00:00", "2026-12-02T11:02:59+00:00",
                   "2026-12-02T11:03:00+00:00", "2026-12-02T11:03:00.000001+00:00"):
        assert not sync_windows.decide([always], app_id="/dirac/x", scope=REVISIONS,
                                       at=_at(moment)).allowed, moment


def test_outside_every_allow_window_an_app_waits_for_the_next_opening() -> None:
    evening = _at("2026-12-02T19:30:00+00:00")  # Wednesday 20:30 in Zurich
    verdict = sync_windows.decide([OFFICE_HOURS], app_id="/dirac-prod/fts", scope=REVISIONS,
                                  at=evening)
    assert not verdict.allowed and verdict.until == _at("2026-12-03T07:00:00+00:00")
    assert "outside every allow window" in verdict.because
    # The allow window is for new revisions only: drift is corrected at any hour.
    assert sync_windows.decide([OFFICE_HOURS], app_id="/dirac-prod/fts", scope=DRIFT,
                               at=evening).allowed


def test_deny_wins_over_allow_and_the_wait_crosses_both() -> None:
    """Friday evening: office hours end at 18:00, the freeze runs to Monday 08:00, when
    office hours open again."""
    friday = _at("2026-12-04T16:00:00+00:00")  # 17:00 Zurich, inside office hours
    both = [WEEKEND_FREEZE, OFFICE_HOURS]
    assert sync_windows.decide(both, app_id="/dirac-prod/a", scope=REVISIONS,
                               at=friday).allowed
    saturday = sync_windows.decide(both, app_id="/dirac-prod/a", scope=REVISIONS,
                                   at=_at("2026-12-05T09:00:00+00:00"))
    assert saturday.until == _at("2026-12-07T07:00:00+00:00")
    # A freeze inside office hours (Monday 09:00-10:00): the wait ends when it does.
    maintenance = _window("deny", "0 9 * * 1", 3600, time_zone="Europe/Zurich")
    during = sync_windows.decide([*both, maintenance], app_id="/dirac-prod/a",
                                 scope=REVISIONS, at=_at("2026-12-07T08:30:00+00:00"))
    assert during.until == _at("2026-12-07T09:00:00+00:00")


def test_held_lists_only_the_apps_a_window_holds() -> None:
    held = sync_windows.held([WEEKEND_FREEZE], ["/dirac-prod/a", "/dirac-cert/b"],
                             scope=REVISIONS, at=_at("2026-12-05T12:00:00+00:00"))
    assert list(held) == ["/dirac-prod/a"]
    assert sync_windows.held([], ["/dirac-prod/a"], scope=REVISIONS,
                             at=_at("2026-12-05T12:00:00+00:00")) == {}


def test_a_manual_rollback_is_never_held_and_drift_correction_is_its_own_scope() -> None:
    assert sync_windows.scope_of(model.Trigger.ROLLBACK) is None
    assert sync_windows.scope_of(model.Trigger.DRIFT_CORRECTION) is DRIFT
    assert sync_windows.scope_of(model.Trigger.MANUAL) is REVISIONS


def test_openings_say_whether_each_window_is_open_and_when_it_opens_next() -> None:
    saturday = _at("2026-12-05T12:00:00+00:00")
    freeze, office = sync_windows.openings([WEEKEND_FREEZE, OFFICE_HOURS], at=saturday)
    assert freeze.open_now and freeze.current_end == _at("2026-12-07T07:00:00+00:00")
    assert freeze.next_start == _at("2026-12-11T17:00:00+00:00")
    assert not office.open_now and office.next_start == _at("2026-12-07T07:00:00+00:00")
    assert office.next_end == _at("2026-12-07T17:00:00+00:00")


@pytest.mark.parametrize(("text", "seconds"), [("90m", 5400), ("10h", 36000), ("2d", 172800),
                                               ("30s", 30), (600, 600), ("1.5h", 5400)])
def test_durations_read_as_people_write_them(text: object, seconds: float) -> None:
    assert sync_windows.parse_duration(text) == seconds


WINDOWS_YAML = """\
managedPrefixes: [/dirac-cert]
windows:
  - kind: deny
    schedule: "0 18 * * 5"
    duration: 62h
    timeZone: Europe/Zurich
    groups: [/dirac-cert/web]
    for: [revisions]
  - kind: allow
    schedule: "0 8 * * 1-5"
    duration: 10h
"""


def test_the_windows_of_reconciler_yaml_load_into_the_settings() -> None:
    desired = loading.load_desired_state(
        repo.with_files({"reconciler.yaml": WINDOWS_YAML}), revision="r1")
    freeze, office = desired.settings.windows
    assert freeze == _window("deny", "0 18 * * 5", 62 * 3600, time_zone="Europe/Zurich",
                             groups=("/dirac-cert/web",), scopes=frozenset({REVISIONS}))
    assert office.time_zone == "UTC" and office.groups == ("/",)
    assert office.scopes == frozenset({REVISIONS, DRIFT})


def test_bad_windows_are_reported_with_path_and_line_and_nothing_loads() -> None:
    bad = """\
managedPrefixes: [/dirac-cert]
windows:
  - kind: deny
    schedule: "0 25 * * *"
    duration: 2 weeks
    timeZone: Europe/Atlantis
  - kind: allow
    schedule: "0 0 31 2 *"
    duration: 0
  - kind: sometimes
    schedule: "* * * * *"
    duration: 1h
"""
    with pytest.raises(model.InvalidDesiredState) as raised:
        loading.load_desired_state(repo.with_files({"reconciler.yaml": bad}), revision="r1")
    text = str(raised.value)
    assert "reconciler.yaml:10: /windows/2/kind" in text  # the schema, at its line
    # A schema problem makes the file invalid before the window checks: fixed, they run.
    fixed = bad.replace("kind: sometimes", "kind: deny")
    with pytest.raises(model.InvalidDesiredState) as raised:
        loading.load_desired_state(repo.with_files({"reconciler.yaml": fixed}), revision="r1")
    lines = str(raised.value).splitlines()
    assert any(x.startswith("reconciler.yaml:4: /windows/0/schedule: '0 25 * * *' is not a "
                            "cron expression") for x in lines), lines
    assert any(x.startswith("reconciler.yaml:5: /windows/0/duration: '2 weeks' is not a "
                            "duration") for x in lines), lines
    assert any(x.startswith("reconciler.yaml:6: /windows/0/timeZone: unknown time zone "
                            "'Europe/Atlantis'") for x in lines), lines
    assert any(x.startswith("reconciler.yaml:8: /windows/1/schedule: '0 0 31 2 *' never "
                            "fires") for x in lines), lines
    assert any(x.startswith("reconciler.yaml:9: /windows/1/duration: must be more than 0")
               for x in lines), lines


def test_a_hostile_set_of_windows_is_searched_within_a_bound() -> None:
    """A hundred windows opening every minute: the search gives up (bounded work) and says
    so, instead of walking a year of minutes."""
    hostile = [_window("deny", "* * * * *", 3600)] + [
        _window("allow", f"{minute} * * * *", 1) for minute in range(59)]
    verdict = sync_windows.decide(hostile, app_id="/dirac/a", scope=REVISIONS,
                                  at=_at("2026-12-01T00:00:00+00:00"))
    assert not verdict.allowed and verdict.until is None
    assert "no window opens within a year" in verdict.message
