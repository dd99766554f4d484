"""The plan: order by dependencies, what is left out and why, deadlines."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from reconciler.core import diff as diffing
from reconciler.core import model
from reconciler.core import plan as planning


def _diff(app_id: str, action: model.Action, **definition: Any) -> model.AppDiff:
    desired = None if action is model.Action.DELETE else {"id": app_id, **definition}
    live = None if action is model.Action.CREATE else {"id": app_id, **definition}
    return model.AppDiff(app_id=app_id, action=action, patch=(), changes=(), desired=desired,
                         live=live)


def _ids(plan: planning.Plan) -> list[list[str]]:
    return [[step.app_id for step in wave] for wave in plan.waves]


def test_dependencies_come_in_earlier_waves_and_independent_apps_share_one() -> None:
    diffs = [
        _diff("/dirac/web", model.Action.CREATE, dependencies=["/dirac/db", "../dirac/cat"]),
        _diff("/dirac/cat", model.Action.CREATE, dependencies=["db"]),
        _diff("/dirac/db", model.Action.CREATE),
        _diff("/dirac/fts", model.Action.UPDATE),
    ]
    plan = planning.make_plan(diffs, revision="r1", settings=model.RepoSettings())
    assert _ids(plan) == [["/dirac/db", "/dirac/fts"], ["/dirac/cat"], ["/dirac/web"]]
    assert plan.waves[2][0].depends_on == ("/dirac/db", "/dirac/cat")


def test_dependency_outside_the_plan_does_not_delay_the_app() -> None:
    diffs = [_diff("/a", model.Action.UPDATE, dependencies=["/unchanged"])]
    plan = planning.make_plan(diffs, revision="r", settings=model.RepoSettings())
    assert _ids(plan) == [["/a"]]
    assert plan.steps[0].depends_on == ()


def test_deletes_need_prune_and_run_last_dependents_first() -> None:
    diffs = [
        _diff("/old/web", model.Action.DELETE, dependencies=["/old/db"]),
        _diff("/old/db", model.Action.DELETE),
        _diff("/new", model.Action.CREATE),
    ]
    kept = planning.make_plan(diffs, revision="r", settings=model.RepoSettings())
    assert _ids(kept) == [["/new"]]
    assert {(s.app_id, s.reason) for s in kept.skipped} == {
        ("/old/web", planning.SkipReason.PRUNE_DISABLED),
        ("/old/db", planning.SkipReason.PRUNE_DISABLED),
    }
    pruned = planning.make_plan(diffs, revision="r", settings=model.RepoSettings(prune=True))
    assert _ids(pruned) == [["/new"], ["/old/web"], ["/old/db"]]


def test_quarantined_apps_are_skipped_unless_a_retry_is_asked() -> None:
    diffs = [_diff("/a", model.Action.UPDATE), _diff("/b", model.Action.UPDATE)]
    plan = planning.make_plan(diffs, revision="r", settings=model.RepoSettings(),
                              quarantined={"/a"})
    assert _ids(plan) == [["/b"]]
    assert plan.skipped == (
        planning.Skipped("/a", model.Action.UPDATE, planning.SkipReason.QUARANTINED),
    )
    retry = planning.make_plan(diffs, revision="r", settings=model.RepoSettings(),
                               quarantined={"/a"},
                               options=planning.PlanOptions(retry_quarantined=True))
    assert _ids(retry) == [["/a", "/b"]]


def test_apps_depending_on_a_quarantined_app_are_held_back_too() -> None:
    # The release that broke /config must not reach the apps that depend on it when the same
    # revision is reconciled again (a later poll or a drift correction).
    diffs = [_diff("/config", model.Action.UPDATE),
             _diff("/catalog", model.Action.UPDATE, dependencies=["/config"]),
             _diff("/fts", model.Action.UPDATE, dependencies=["/catalog"]),
             _diff("/other", model.Action.UPDATE)]
    plan = planning.make_plan(diffs, revision="r", settings=model.RepoSettings(),
                              quarantined={"/config"})
    assert _ids(plan) == [["/other"]]
    held = {s.app_id: s.reason for s in plan.skipped}
    assert held == {"/config": planning.SkipReason.QUARANTINED,
                    "/catalog": planning.SkipReason.DEPENDENCY_QUARANTINED,
                    "/fts": planning.SkipReason.DEPENDENCY_QUARANTINED}
    # The same when the run selects only a dependent (a drift correction of that app).
    only = planning.make_plan(diffs, revision="r", settings=model.RepoSettings(),
                              quarantined={"/config"},
                              options=planning.PlanOptions(only_apps={"/catalog"}))
    assert _ids(only) == []
    assert planning.Skipped("/catalog", model.Action.UPDATE,
                            planning.SkipReason.DEPENDENCY_QUARANTINED,
                            held_by="/config") in only.skipped


WINDOW = "waiting for window until 2026-12-01T08:00:00+00:00 (deny window '0 18 * * 5')"


def test_an_app_a_window_holds_holds_back_the_apps_that_depend_on_it() -> None:
    # Issue 17: configuration/server waited for its window while its dependents went out.
    diffs = [_diff("/d/configuration/server", model.Action.UPDATE),
             _diff("/d/web/portal", model.Action.UPDATE,
                   dependencies=["/d/configuration/server"]),
             _diff("/d/fts", model.Action.UPDATE, dependencies=["/d/web/portal"]),
             _diff("/d/other", model.Action.UPDATE)]
    plan = planning.make_plan(diffs, revision="r", settings=model.RepoSettings(),
                              outside_window={"/d/configuration/server": WINDOW})
    assert _ids(plan) == [["/d/other"]]
    held = {s.app_id: (s.reason, s.held_by) for s in plan.skipped}
    assert held == {
        "/d/configuration/server": (planning.SkipReason.OUTSIDE_WINDOW, None),
        "/d/web/portal": (planning.SkipReason.OUTSIDE_WINDOW, "/d/configuration/server"),
        "/d/fts": (planning.SkipReason.OUTSIDE_WINDOW, "/d/configuration/server")}
    portal = next(s for s in plan.skipped if s.app_id == "/d/web/portal")
    assert "/d/configuration/server" in portal.text and "deny window" in portal.text
    # Selecting the dependent alone does not carry it past its dependency's window.
    only = planning.make_plan(diffs, revision="r", settings=model.RepoSettings(),
                              outside_window={"/d/configuration/server": WINDOW},
                              options=planning.PlanOptions(only_apps={"/d/web/portal"}))
    assert _ids(only) == []


def test_a_release_wave_with_an_app_a_window_holds_holds_every_later_wave() -> None:
    settings = model.RepoSettings(prune=True, waves=(
        model.ReleaseWave("config", ("/d/configuration",), soak=30),
        model.ReleaseWave("services", ("/d/db",))))
    diffs = [_diff("/d/configuration/server", model.Action.UPDATE),
             _diff("/d/configuration/mirror", model.Action.UPDATE),
             _diff("/d/db", model.Action.UPDATE), _diff("/d/independent", model.Action.UPDATE),
             _diff("/d/old", model.Action.DELETE)]
    plan = planning.make_plan(diffs, revision="r", settings=settings,
                              outside_window={"/d/configuration/server": WINDOW})
    # Its own wave's other apps go; nothing after it does, deletes included.
    assert [s.name for s in plan.stages] == ["config"]
    assert _ids(plan) == [["/d/configuration/mirror"]]
    later = {s.app_id: s for s in plan.skipped if s.held_by == "/d/configuration/server"}
    assert set(later) == {"/d/db", "/d/independent", "/d/old"}
    assert all(s.reason is planning.SkipReason.OUTSIDE_WINDOW for s in later.values())
    assert "release wave 'config'" in later["/d/db"].text
    assert "deny window" in later["/d/db"].text


def test_a_scale_back_of_an_app_whose_dependency_is_quarantined_is_not_held_back() -> None:
    # A drift correction that only puts the instances back needs nothing of the dependency's
    # broken release; an update of the same app still waits.
    diffs = [_diff("/config", model.Action.UPDATE),
             _diff("/catalog", model.Action.SCALE, dependencies=["/config"]),
             _diff("/fts", model.Action.UPDATE, dependencies=["/catalog"])]
    plan = planning.make_plan(diffs, revision="r", settings=model.RepoSettings(),
                              quarantined={"/config"},
                              options=planning.PlanOptions(only_apps={"/catalog", "/fts"}))
    assert _ids(plan) == [["/catalog"]]
    assert {s.app_id: s.reason for s in plan.skipped} == {
        "/config": planning.SkipReason.NOT_SELECTED,
        "/fts": planning.SkipReason.DEPENDENCY_QUARANTINED}


def test_only_selected_apps_are_planned_and_no_ops_count_as_in_sync() -> None:
    diffs = [_diff("/a", model.Action.SCALE), _diff("/b", model.Action.UPDATE),
             _diff("/c", model.Action.NOOP)]
    plan = planning.make_plan(diffs, revision="r", settings=model.RepoSettings(),
                              options=planning.PlanOptions(only_apps=["/a"]))
    assert _ids(plan) == [["/a"]]
    assert plan.in_sync == ("/c",)
    assert [s.reason for s in plan.skipped] == [planning.SkipReason.NOT_SELECTED]


def test_dependency_cycle_is_an_invalid_desired_state() -> None:
    diffs = [_diff("/a", model.Action.CREATE, dependencies=["/b"]),
             _diff("/b", model.Action.CREATE, dependencies=["/a"])]
    with pytest.raises(model.InvalidDesiredState, match="dependency cycle"):
        planning.make_plan(diffs, revision="r", settings=model.RepoSettings())


@pytest.mark.parametrize(
    ("instances", "minimum", "over", "batches"),
    [
        (3, 1.0, 1.0, 1),   # Marathon's default: start all new tasks, then kill all old
        (3, 1.0, 0.0, 3),   # one extra task at a time
        (4, 0.5, 0.0, 2),   # kill two up front, replace two per round
        (10, 0.8, 0.1, 4),  # 8 kept up, 11 at most: 3 in flight
        (1, 0.0, 0.0, 1),
    ],
)
def test_upgrade_batches_follow_the_upgrade_strategy(
    instances: int, minimum: float, over: float, batches: int
) -> None:
    definition = {"instances": instances,
                  "upgradeStrategy": {"minimumHealthCapacity": minimum,
                                      "maximumOverCapacity": over}}
    assert planning.upgrade_batches(definition) == batches


def test_deadline_derives_from_health_checks_batches_and_backoff() -> None:
    diff = _diff("/a", model.Action.UPDATE, instances=2, backoffSeconds=2,
                 upgradeStrategy={"minimumHealthCapacity": 1, "maximumOverCapacity": 0},
                 healthChecks=[{"gracePeriodSeconds": 10, "intervalSeconds": 2,
                                "maxConsecutiveFailures": 3, "timeoutSeconds": 1},
                               {"gracePeriodSeconds": 5}])
    deadline = planning.derive_deadline(diff)
    slowest_check = 5 + 60 * 3 + 20  # second check: Marathon's defaults fill the rest
    per_batch = planning.LAUNCH_ALLOWANCE + 2 + slowest_check
    assert deadline.batches == 2
    assert deadline.seconds == planning.MARGIN + 2 * per_batch
    assert deadline.source is planning.DeadlineSource.DERIVED


def test_deadline_overrides_settings_by_longest_prefix_then_run_timeout() -> None:
    settings = model.RepoSettings(deadlines={"/dirac": 100.0, "/dirac/web": 40.0})
    web = _diff("/dirac/web/portal", model.Action.CREATE)
    fts = _diff("/dirac/fts", model.Action.CREATE)
    other = _diff("/other", model.Action.CREATE)
    assert planning.deadline_for(web, settings=settings, timeout=None).seconds == 40.0
    assert planning.deadline_for(fts, settings=settings, timeout=None).seconds == 100.0
    derived = planning.deadline_for(other, settings=settings, timeout=None)
    assert derived.source is planning.DeadlineSource.DERIVED
    run = planning.deadline_for(web, settings=settings, timeout=3)
    assert (run.seconds, run.source) == (3.0, planning.DeadlineSource.RUN)


def test_example_desired_state_deploys_every_app_after_its_dependencies() -> None:
    from pathlib import Path

    from reconciler.core import diff as diffing
    from reconciler.core import load as loading
    from reconciler.shell import directory

    files, revision = directory.read_directory(Path(__file__).parents[2] / "desired-state")
    desired = loading.load_desired_state(files, revision=revision)
    plan = planning.make_plan(diffing.diff_apps(desired, []), revision=revision,
                              settings=desired.settings)
    wave_of = {step.app_id: n for n, wave in enumerate(plan.waves) for step in wave}
    assert set(wave_of) == set(desired.apps)
    assert len(plan.waves) > 1, "the example has dependencies: one wave cannot be right"
    for app_id, app in desired.apps.items():
        for dependency in planning.dependencies_of(app_id, app.definition):
            assert wave_of[dependency] < wave_of[app_id], (app_id, dependency)
    overridden = [s for s in plan.steps if s.deadline.source is planning.DeadlineSource.SETTINGS]
    assert overridden and all(s.app_id.startswith("/dirac-cert/datamanagement/")
                              for s in overridden)


def test_a_sync_preview_says_what_will_change_or_why_not() -> None:
    change = model.FieldChange(path="/instances", old=3, new=1)
    diffs = [model.AppDiff(app_id="/a", action=model.Action.SCALE, patch=(), changes=(change,),
                           desired={"id": "/a"}, live={"id": "/a"}),
             _diff("/q", model.Action.UPDATE),
             _diff("/dep", model.Action.UPDATE, dependencies=["/q"]),
             _diff("/same", model.Action.NOOP)]

    def preview(app_id: str) -> planning.SyncPreview:
        plan = planning.make_plan(diffs, revision="r1", settings=model.RepoSettings(),
                                  quarantined={"/q"},
                                  options=planning.PlanOptions(only_apps=(app_id,)))
        return planning.preview(plan, app_id)

    scale = preview("/a")
    assert (scale.accepted, scale.action, scale.message) == (
        True, model.Action.SCALE, "will scale /a to r1: /instances")
    assert scale.as_json()["changes"] == [{"path": "/instances", "old": 3, "new": 1}]
    assert [(p.accepted, p.message) for p in (preview("/q"), preview("/dep"),
                                              preview("/same"), preview("/gone"))] == [
        (False, "will not sync /q: revision r1 is quarantined for this app (retry lifts it)"),
        (False, "will not sync /dep: blocked: an app it depends on is quarantined at "
                "revision r1"),
        (False, "nothing to do: /same already equals r1"),
        (False, "will not sync /gone: neither in Git nor in Marathon")]



def test_a_plan_from_what_the_engine_keeps_of_live_apps_is_the_plan_from_whole_apps() -> None:
    # The engine streams GET /v2/apps and keeps only planning.live_view of each app: every
    # step, order and deadline (also a rollback's, which derives from the live app) must be
    # what the whole apps would give. A field the plan reads but live_view drops fails this.
    checks = [{"protocol": "MESOS_HTTP", "gracePeriodSeconds": 120, "intervalSeconds": 20,
               "maxConsecutiveFailures": 5, "timeoutSeconds": 9}]
    strategy = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}

    def live(app_id: str, image: str, **more: Any) -> model.JSON:
        return {"id": app_id, "version": f"2026-11-0{len(app_id) % 9}T00:00:00.000Z",
                "instances": 6, "cpus": 0.1, "mem": 256, "upgradeStrategy": strategy,
                "healthChecks": checks, "backoffSeconds": 7, "taskKillGracePeriodSeconds": 40,
                "container": {"type": "DOCKER", "docker": {"image": image}},
                "tasks": [{"id": f"{app_id}.{i}", "host": "h"} for i in range(6)],
                "deployments": [], "lastTaskFailure": {"message": "OOM"}, **more}

    def desired(app_id: str, **more: Any) -> model.DesiredApp:
        return model.DesiredApp(app_id=app_id, source_path=f"{app_id}.yaml", definition={
            "id": app_id, "instances": 3, "cpus": 0.1, "mem": 256,
            "container": {"type": "DOCKER", "docker": {"image": "lhcbdirac:v8r2p45"}}, **more})

    state = model.DesiredState(
        revision="r2", images={},
        apps={a.app_id: a for a in (desired("/dirac/web", dependencies=["/dirac/db"]),
                                    desired("/dirac/db"), desired("/dirac/new"))},
        settings=model.RepoSettings(prune=True, managed_prefixes=("/dirac",)))
    lives = [live("/dirac/web", "lhcbdirac:v8r2p44", dependencies=["db"]),
             live("/dirac/db", "lhcbdirac:v8r2p44"),
             live("/dirac/old/agent", "lhcbdirac:v8r2p44", dependencies=["/dirac/old/store"]),
             live("/dirac/old/store", "lhcbdirac:v8r2p44")]
    same = state.apps["/dirac/db"].definition
    state = replace(state, apps={**state.apps, "/dirac/same": desired("/dirac/same")})
    lives.append({**same, "id": "/dirac/same", "version": "2026-11-01T00:00:00.000Z",
                  "tasks": [{"id": "/dirac/same.1"}], "deployments": []})

    whole = diffing.diff_apps(state, lives)
    kept = diffing.diff_apps(state, iter(lives), keep_live=planning.live_view)

    assert [(d.app_id, d.action, d.patch, d.changes) for d in kept] == [
        (d.app_id, d.action, d.patch, d.changes) for d in whole]
    assert all("tasks" not in (d.live or {}) for d in kept)
    # Nothing reads a no-op's live app: a streamed answer leaves none of it behind.
    assert [(d.app_id, d.live) for d in kept if d.action is model.Action.NOOP] == [
        ("/dirac/same", None)]

    def shape(diffs: tuple[model.AppDiff, ...]) -> list[Any]:
        plan = planning.make_plan(diffs, revision="r2", settings=state.settings)
        rollback_deadlines = [planning.derive_deadline(model.AppDiff(
            app_id=s.app_id, action=model.Action.UPDATE, patch=(), changes=(),
            desired=s.diff.live, live=s.diff.live)) for s in plan.steps if s.diff.live]
        return [[(s.app_id, s.action, s.deadline, s.depends_on, (s.diff.live or {}).get("version"))
                 for s in wave] for wave in plan.waves] + [rollback_deadlines]

    assert shape(kept) == shape(whole)
    assert len(shape(whole)[-1]) == 4  # four live apps: four rollback deadlines compared
