"""The on-call vocabulary: one state word per app, most urgent first; image tags; time filters."""

from __future__ import annotations

import datetime as dt
import json
import random
import weakref
from collections.abc import Hashable, Iterator, Mapping
from typing import Any

import pytest

from reconciler.core import health, model, status
from reconciler.core import since as since_filter


def _health(health_status: health.HealthStatus) -> health.AppHealth:
    return health.AppHealth(app_id="/a", status=health_status, target=1, healthy=1, running=1,
                            staged=0, version=None, deployment_ids=(), step=None, failure=None)


@pytest.mark.parametrize(("health_status", "quarantined", "drifted", "in_sync", "expected"), [
    (health.HealthStatus.HEALTHY, False, False, True, model.AppState.IN_SYNC),
    (health.HealthStatus.HEALTHY, False, False, False, model.AppState.OUT_OF_SYNC),
    (health.HealthStatus.HEALTHY, False, True, False, model.AppState.DRIFTED),
    (health.HealthStatus.PROGRESSING, False, True, True, model.AppState.PROGRESSING),
    (health.HealthStatus.DEGRADED, False, True, True, model.AppState.DEGRADED),
    (health.HealthStatus.MISSING, False, False, False, model.AppState.DEGRADED),
    (health.HealthStatus.DEGRADED, True, True, False, model.AppState.QUARANTINED),
])
def test_state_word_puts_what_needs_a_human_first(
        health_status: health.HealthStatus, quarantined: bool, drifted: bool, in_sync: bool,
        expected: model.AppState) -> None:
    assert status.app_state(assessed=_health(health_status), quarantined=quarantined,
                            drifted=drifted, in_sync_with_git=in_sync) is expected


@pytest.mark.parametrize(("image", "tag"), [
    ("lhcbdirac:v8r2p44", "v8r2p44"),
    ("registry.cern.ch:5000/lhcb/lhcbdirac:v8r2p45", "v8r2p45"),
    ("registry.cern.ch:5000/lhcb/lhcbdirac", "latest"),
    (None, None),
])
def test_image_tag_ignores_a_registry_port(image: str | None, tag: str | None) -> None:
    assert status.image_tag(image) == tag


def test_since_accepts_durations_and_iso_times_and_explains_the_rest() -> None:
    now = 1_000_000.0
    assert since_filter.parse_since("30m", now=now) == now - 1800
    assert since_filter.parse_since("24h", now=now) == now - 86400
    assert since_filter.parse_since("7d", now=now) == now - 7 * 86400
    assert since_filter.parse_since("", now=now) is None
    at = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)
    assert since_filter.parse_since("2026-11-25T03:00:00+00:00", now=now) == at.timestamp()
    assert since_filter.parse_since("2026-11-25T03:00:00", now=now) == at.timestamp()
    with pytest.raises(ValueError, match="24h"):
        since_filter.parse_since("yesterday", now=now)


def test_apps_needing_a_human_come_first() -> None:
    def row(app_id: str, state: model.AppState) -> status.AppStatus:
        return status.AppStatus(app_id=app_id, state=state, sync=status.SyncStatus.SYNCED,
                                health="Healthy", conditions=(), since=None, revision=None,
                                cause=None, image=None, image_tag=None, healthy=1, instances=1,
                                open_drifts=0, quarantine=None)
    rows = [row("/a", model.AppState.IN_SYNC), row("/b", model.AppState.DRIFTED),
            row("/c", model.AppState.QUARANTINED), row("/d", model.AppState.DEGRADED),
            row("/e", model.AppState.IN_SYNC)]
    assert [r.app_id for r in status.by_urgency(rows)] == ["/c", "/d", "/b", "/a", "/e"]
    assert set(status.URGENCY) == set(model.AppState)


def _live(app_id: str, *, instances: int = 1, healthy: bool = True) -> model.JSON:
    tasks = [{"id": f"{app_id[1:]}.{n}", "host": "node-1", "state": "TASK_RUNNING",
              "version": "2026-01-01T00:00:00Z", "healthCheckResults": []}
             for n in range(instances if healthy else 0)]
    return {"id": app_id, "instances": instances, "version": "2026-01-01T00:00:00Z",
            "versionInfo": {"lastConfigChangeAt": "2026-01-01T00:00:00Z"},
            "container": {"docker": {"image": "lhcbdirac:v8r2p44"}},
            "tasks": tasks, "deployments": []}


def test_statuses_come_from_records_and_live_alone() -> None:
    desired = {"/a": {"id": "/a", "instances": 1}, "/b": {"id": "/b", "instances": 2},
               "/c": {"id": "/c"}, "/d": {"id": "/d"}}
    applied = {"/a": status.Applied(revision="r2", definition={"id": "/a", "instances": 1}),
               "/b": status.Applied(revision="r1", definition={"id": "/b", "instances": 1}),
               "/c": status.Applied(revision="r1", definition={"id": "/c", "cmd": "old"}),
               "/d": status.Applied(revision="r2", definition={"id": "/d"})}
    got = status.app_statuses(
        desired_revision="r2", desired=desired, applied=applied,
        live_apps=[_live("/a"), _live("/b"), _live("/c")],
        quarantines={"/c": [status.Quarantine(revision="r2", since="2026-11-29T03:00:00Z",
                                              reason="rolled back: never healthy")]},
        drifts={})
    by_id = {s.app_id: s for s in got}
    assert [s.app_id for s in got] == ["/a", "/b", "/c", "/d"]
    assert by_id["/a"].state is model.AppState.IN_SYNC
    assert by_id["/a"].sync is status.SyncStatus.SYNCED
    assert by_id["/a"].image_tag == "v8r2p44"
    assert by_id["/b"].state is model.AppState.OUT_OF_SYNC
    assert by_id["/c"].state is model.AppState.QUARANTINED
    assert by_id["/c"].since == "2026-11-29T03:00:00Z"
    assert by_id["/c"].cause == status.Revision(revision="r2")
    assert by_id["/c"].quarantine == "rolled back: never healthy"
    assert by_id["/d"].state is model.AppState.DEGRADED  # in Git, missing from Marathon
    assert by_id["/d"].health == "Missing"


_QUARANTINED_R2 = {"/dep": [status.Quarantine(revision="r2", since="t1", reason="broken")]}
_DESIRED = {"/dep": {"id": "/dep", "cmd": "new"},
            "/web": {"id": "/web", "instances": 1, "dependencies": ["/dep"]}}


@pytest.mark.parametrize(("desired_revision", "applied_dep", "web_instances_live", "expected"), [
    # The release broke /dep: quarantined at r2, and /web (changed too) is held back.
    ("r2", {"id": "/dep", "cmd": "old"}, 1, {"/dep": "quarantined", "/web": "blocked"}),
    # Fix-forward: Git moved to r3; the old quarantine no longer speaks for the app.
    ("r3", {"id": "/dep", "cmd": "old"}, 1, {"/dep": "out of sync", "/web": "out of sync"}),
    # Back in sync at r2 (a retry succeeded): not quarantined any more, whatever the records.
    ("r2", {"id": "/dep", "cmd": "new"}, 1, {"/dep": "in sync", "/web": "out of sync"}),
])
def test_quarantine_speaks_only_for_the_revision_git_asks_for(
        desired_revision: str, applied_dep: model.JSON, web_instances_live: int,
        expected: dict[str, str]) -> None:
    applied = {"/dep": status.Applied(revision="r1", definition=applied_dep),
               "/web": status.Applied(revision="r1", definition={"id": "/web"})}
    got = status.app_statuses(
        desired_revision=desired_revision, desired=_DESIRED, applied=applied,
        live_apps=[_live("/dep"), _live("/web", instances=web_instances_live)],
        quarantines=_QUARANTINED_R2, drifts={})
    assert {s.app_id: str(s.state) for s in got} == expected


def test_a_drift_is_a_condition_with_who_and_what_and_the_app_is_out_of_sync() -> None:
    applied = {"/a": status.Applied(revision="r1", definition={"id": "/a"})}
    got, = status.app_statuses(
        desired_revision="r1", desired={"/a": {"id": "/a"}}, applied=applied,
        live_apps=[_live("/a", instances=3)], quarantines={},
        drifts={"/a": [status.Drift(since="t0", fields=("/instances",),
                                    who="10.0.0.7 PUT /v2/apps/a", policy="report",
                                    action="reported")]})
    assert got.state is model.AppState.DRIFTED
    assert got.sync is status.SyncStatus.OUT_OF_SYNC
    drifted = got.condition(status.ConditionType.DRIFTED)
    assert drifted is not None and drifted.since == "t0"
    assert "/instances" in drifted.message and "10.0.0.7" in drifted.message


def test_marathon_unreachable_is_unknown_not_healthy() -> None:
    applied = {"/a": status.Applied(revision="r1", definition={"id": "/a"})}
    got, = status.app_statuses(desired_revision="r1", desired={"/a": {"id": "/a"}},
                               applied=applied, live_apps=None, quarantines={}, drifts={})
    assert (got.state, got.sync, got.health) == (model.AppState.UNKNOWN,
                                                 status.SyncStatus.UNKNOWN, "Unknown")


@pytest.mark.parametrize(("when", "expected"), [
    ("2026-11-29T03:00:00Z", "0 s ago"), ("2026-11-29T02:59:15+00:00", "45 s ago"),
    ("2026-11-29T02:30:00Z", "30 min ago"), ("2026-11-28T23:00:00Z", "4 h ago"),
    ("2026-11-26T03:00:00Z", "3 d ago"), (None, ""), ("not a time", "not a time"),
])
def test_since_reads_as_people_say_it(when: str | None, expected: str) -> None:
    now = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC).timestamp()
    assert since_filter.ago(when, now=now) == expected


def test_blocking_reaches_every_app_held_back_behind_a_quarantine() -> None:
    # The executor waits for the request manager, which waits for the quarantined server.
    desired = {"/server": {"id": "/server", "cmd": "new"},
               "/reqmanager": {"id": "/reqmanager", "cmd": "new", "dependencies": ["/server"]},
               "/executor": {"id": "/executor", "cmd": "new", "dependencies": ["/reqmanager"]}}
    applied = {a: status.Applied(revision="r1", definition={"id": a, "cmd": "old"})
               for a in desired}
    got = {s.app_id: s for s in status.app_statuses(
        desired_revision="r2", desired=desired, applied=applied,
        live_apps=[_live(a) for a in desired],
        quarantines={"/server": [status.Quarantine(revision="r2", since="t1", reason="x")]},
        drifts={})}
    assert {a: str(s.state) for a, s in got.items()} == {
        "/server": "quarantined", "/reqmanager": "blocked", "/executor": "blocked"}
    blocked = got["/executor"].condition(status.ConditionType.BLOCKED)
    assert blocked is not None and "/reqmanager" in blocked.message
    assert "/server" in blocked.message


def test_an_app_in_sync_names_the_revision_git_asks_for_and_dates_from_its_last_change() -> None:
    # Applied by an earlier run (another revision with the same definition), then rolled back
    # and forth in Marathon: in sync with r3, since live last changed, not since r1 was applied.
    applied = {"/a": status.Applied(revision="dir:old", definition={"id": "/a"},
                                    at="2026-11-29T20:42:25+00:00")}
    live = _live("/a")
    live["versionInfo"] = {"lastConfigChangeAt": "2026-11-29T20:42:54.801Z"}
    live["tasks"] = [{**t, "version": "2026-11-29T20:42:54.801Z"} for t in live["tasks"]]
    got, = status.app_statuses(
        desired_revision="r3", desired={"/a": {"id": "/a"}}, applied=applied, live_apps=[live],
        quarantines={}, drifts={},
        revisions={"r3": status.Revision(revision="r3", author="Alice", message="fix")})
    assert got.state is model.AppState.IN_SYNC
    assert got.cause == status.Revision(revision="r3", author="Alice", message="fix")
    assert got.since == "2026-11-29T20:42:54.801Z"


class _View(dict):  # type: ignore[type-arg] - a dict that a weak reference can follow
    pass


class _ViewsMadeWhenAsked(Mapping[str, model.JSON]):
    """Live apps by id, each built when looked up, counting how many are alive at once."""

    def __init__(self, apps: list[model.JSON]) -> None:
        self._apps = {str(a["id"]): a for a in apps}
        self._made: list[weakref.ref[_View]] = []
        self.most_alive = 0

    def __getitem__(self, app_id: str) -> model.JSON:
        view = _View(self._apps[app_id])
        self._made.append(weakref.ref(view))
        self.most_alive = max(self.most_alive, sum(r() is not None for r in self._made))
        return view

    def __contains__(self, app_id: object) -> bool:
        return app_id in self._apps

    def __iter__(self) -> Iterator[str]:
        return iter(self._apps)

    def __len__(self) -> int:
        return len(self._apps)


def test_live_apps_by_id_are_read_one_at_a_time_with_the_same_statuses() -> None:
    """The status board hands the live cache's apps by id, each unpacked when looked up:
    10,000 unpacked at once took 23 MB, every few seconds of a release."""
    apps = [_live(f"/app{n}", healthy=n % 3 != 0) for n in range(30)]
    desired = {str(a["id"]): {"id": a["id"], "instances": 1} for a in apps}
    applied = {app_id: status.Applied(revision="r1", definition=d)
               for app_id, d in desired.items()}
    facts: dict[str, Any] = {"desired_revision": "r1", "desired": desired,
                             "applied": applied, "quarantines": {}, "drifts": {}}
    views = _ViewsMadeWhenAsked(apps)
    assert status.app_statuses(live_apps=views, **facts) == status.app_statuses(
        live_apps=apps, **facts)
    assert views.most_alive <= 2


def test_rows_equal_to_the_previous_ones_are_those_very_objects() -> None:
    """The status board passes its last rows: an app that did not move keeps its row object
    (no 10,000 new rows to throw away every few seconds of a release); one that moved gets a
    new row with what changed."""
    desired = {f"/a{n}": {"id": f"/a{n}", "instances": 1} for n in range(3)}
    applied = {a: status.Applied(revision="r1", definition=d) for a, d in desired.items()}
    facts: dict[str, Any] = {"desired_revision": "r1", "desired": desired,
                             "applied": applied, "quarantines": {}, "drifts": {}}
    first = status.compute(live_apps=[_live(a) for a in desired], **facts).rows
    moved = [_live("/a0"), _live("/a1", instances=2), _live("/a2")]
    again = status.compute(live_apps=moved, previous=status.Computed(rows=first), **facts).rows
    assert again == status.app_statuses(live_apps=moved, **facts)
    assert again[0] is first[0] and again[2] is first[2]
    assert again[1] is not first[1] and again[1].instances == 2


class _CountedViews(_ViewsMadeWhenAsked):
    """Live apps by id, each built when looked up, the lookups counted; ``marks`` equal only
    for equal views, as the live cache's are (its are the packed views)."""

    def __init__(self, apps: list[model.JSON]) -> None:
        super().__init__(apps)
        self.looked_up: list[str] = []

    def __getitem__(self, app_id: str) -> model.JSON:
        self.looked_up.append(app_id)
        return super().__getitem__(app_id)

    def marks(self) -> dict[str, Hashable]:
        return {app_id: json.dumps(app, sort_keys=True) for app_id, app in self._apps.items()}


def test_an_app_whose_mark_and_facts_did_not_change_keeps_its_row_and_is_not_read() -> None:
    """The status board recomputes every second or so during a release: unpacking and
    assessing 10,000 live apps each time kept the interpreter from the pages."""
    desired = {f"/a{n}": {"id": f"/a{n}", "instances": 1} for n in range(4)}
    applied = {a: status.Applied(revision="r1", definition=d) for a, d in desired.items()}
    facts: dict[str, Any] = {"desired_revision": "r1", "desired": desired,
                             "applied": applied, "quarantines": {}, "drifts": {}}
    views = _CountedViews([_live(a) for a in desired])
    first = status.compute(live_apps=views, live_marks=views.marks(), **facts)
    assert sorted(views.looked_up) == sorted(desired)

    moved = [_live("/a0"), _live("/a1", healthy=False), _live("/a2"), _live("/a3")]
    views = _CountedViews(moved)
    drifted = {"/a3": [status.Drift(since="2026-11-30T01:00:00Z", fields=("/instances",),
                                    who=None, policy="report", action=None)]}
    again = status.compute(live_apps=views, live_marks=views.marks(), previous=first,
                           **{**facts, "drifts": drifted})
    assert sorted(views.looked_up) == ["/a1", "/a3"]  # a new view; a new fact
    assert again.rows[0] is first.rows[0] and again.rows[2] is first.rows[2]
    assert again.rows[1].state is model.AppState.DEGRADED
    assert again.rows[3].state is model.AppState.DRIFTED
    assert list(again.rows) == status.app_statuses(live_apps=moved,
                                                   **{**facts, "drifts": drifted})


def test_rows_kept_by_their_inputs_are_the_rows_computed_from_nothing() -> None:
    """Whatever moves between two computations (a view, an applied revision, the desired
    revision, a drift, a quarantine, a window's hold, a dependency, a revision's author),
    the rows kept by their inputs are the rows a computation from nothing gives."""
    rng = random.Random(15)
    ids = [f"/a{n}" for n in range(6)]
    revisions = {r: status.Revision(revision=r, author="alice", seen_at=f"2026-11-3{n}")
                 for n, r in enumerate(("r1", "r2"))}

    def definition(app_id: str, revision: str) -> model.JSON:
        out: model.JSON = {"id": app_id, "instances": 1, "cmd": f"run {revision}"}
        if app_id == "/a1":
            out["dependencies"] = ["/a0"]
        return out

    facts: dict[str, Any] = {
        "desired_revision": "r1", "desired": {a: definition(a, "r1") for a in ids},
        "applied": {a: status.Applied(revision="r1", definition=definition(a, "r1"),
                                      at="2026-11-30T00:00:00Z") for a in ids},
        "quarantines": {}, "drifts": {}, "waiting": {}, "revisions": dict(revisions)}
    live = {a: _live(a) for a in ids}
    previous = None
    read = 0
    for _ in range(2000):
        app_id = rng.choice(ids)
        move = rng.randrange(8)
        if move == 0:
            live[app_id] = _live(app_id, instances=rng.randrange(1, 3),
                                 healthy=rng.random() < 0.7)
        elif move == 1 and app_id in live:
            del live[app_id]
        elif move == 1:
            live[app_id] = _live(app_id)
        elif move == 2:
            revision = rng.choice(("r1", "r2"))
            facts["applied"] = {**facts["applied"], app_id: status.Applied(
                revision=revision, definition=definition(app_id, revision),
                at=f"2026-11-30T0{rng.randrange(10)}:00:00Z")}
        elif move == 3:
            revision = rng.choice(("r1", "r2"))
            facts["desired_revision"] = revision
            facts["desired"] = {a: definition(a, revision) for a in ids}
        elif move == 4:
            facts["drifts"] = {**facts["drifts"], app_id: [] if facts["drifts"].get(app_id)
                               else [status.Drift(since="2026-11-30T02:00:00Z",
                                                  fields=("/cmd",), who="10.0.0.1",
                                                  policy="report", action=None)]}
        elif move == 5:
            facts["quarantines"] = {**facts["quarantines"], app_id: [] if facts[
                "quarantines"].get(app_id) else [status.Quarantine(
                    revision=facts["desired_revision"], since="2026-11-30T03:00:00Z",
                    reason="never healthy")]}
        elif move == 6:
            facts["waiting"] = {**facts["waiting"], app_id: status.Waiting(
                revision=rng.choice(("r1", "r2")), since="2026-11-30T04:00:00Z",
                until="2026-11-30T05:00:00Z", message="waiting for window")}
        else:
            revision = rng.choice(("r1", "r2"))
            facts["revisions"] = {**facts["revisions"], revision: status.Revision(
                revision=revision, author=rng.choice(("alice", "bob")))}
        views = _CountedViews(list(live.values()))
        previous = status.compute(live_apps=views, live_marks=views.marks(),
                                  previous=previous, **facts)
        assert list(previous.rows) == status.app_statuses(live_apps=list(live.values()),
                                                          **facts)
        read += len(views.looked_up)
    assert read < 2000 * len(ids) / 2  # most rows were kept, not made again
