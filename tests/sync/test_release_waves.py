"""Release waves on the dev cluster, through ``reconciler sync``: the portal's wave first,
then the rest once the portal stayed healthy for its soak; a broken tag stops in the first
wave, rolled back and quarantined, and the later wave's apps get no write at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from reconciler.core import diff as diffing
from reconciler.core import load as loading
from reconciler.core import model, releases
from reconciler.core import plan as planning
from reconciler.devcluster import launch
from reconciler.shell import applier as applying
from reconciler.shell import directory, marathon, steps
from tests.sync import cluster

pytestmark = pytest.mark.integration

CONVERGED, ROLLED_BACK, QUARANTINED = 0, 3, 4
PORTAL = "/dirac/web/portal"
CATALOG = "/dirac/datamanagement/filecatalog"
EXECUTOR = "/dirac/requests/executor"
WAVES = {"managedPrefixes": ["/dirac"],
         "waves": [{"name": "portal", "apps": ["/dirac/web"], "soak": 1},
                   {"name": "services", "apps": ["/dirac/*/filecatalog"]}]}


def apps() -> list[dict[str, Any]]:
    # The executor is in no wave (it deploys in the last one, "(rest)") and depends on the
    # catalog: dependency layers inside a release wave.
    return [cluster.fast_app(PORTAL, grace=2), cluster.fast_app(CATALOG, grace=2),
            cluster.fast_app(EXECUTOR, grace=2, dependencies=[CATALOG])]


def release(state: Path) -> dict[str, Any]:
    shown = cluster.reconciler("releases", "--state-dir", str(state), "--output", "json")
    assert shown.returncode == 0, cluster.explain(shown)
    newest: dict[str, Any] = json.loads(shown.stdout)[0]
    return newest


def test_a_release_goes_wave_by_wave_and_a_broken_tag_stops_in_the_first_wave(
        devcluster: launch.RunningCluster, tmp_path: Path) -> None:
    repo = cluster.write_repo(tmp_path / "repo", apps(), tag="v8r2p44", settings=WAVES)
    state = tmp_path / "state"
    first = cluster.sync(devcluster.url, repo, state)
    assert first.returncode == CONVERGED, cluster.explain(first)

    cluster.set_tag(repo, "v8r2p46")
    bumped = cluster.sync(devcluster.url, repo, state)
    assert bumped.returncode == CONVERGED, cluster.explain(bumped)
    live = cluster.apps(devcluster.url)
    assert {cluster.image_of(live[a]) for a in (PORTAL, CATALOG, EXECUTOR)} == {
        "lhcbdirac:v8r2p46"}
    waves = release(state)["waves"]
    assert [(w["name"], w["state"], w["apps"]) for w in waves] == [
        ("portal", "succeeded", [PORTAL]), ("services", "succeeded", [CATALOG]),
        ("(rest)", "succeeded", [EXECUTOR])]
    assert waves[0]["soakSeconds"] == 1
    # Wave by wave: each starts after the one before finished (its soak included).
    for before, after in zip(waves, waves[1:], strict=False):
        assert before["finishedAt"] <= after["startedAt"], waves
    # And in Marathon: each app's new version (written when its change was sent, in
    # milliseconds) comes after the one of the wave before.
    assert live[PORTAL]["version"] < live[CATALOG]["version"] < live[EXECUTOR]["version"]
    started = {a["app"]: a["startedAt"] for a in release(state)["apps"]}
    assert started[PORTAL] <= started[CATALOG] <= started[EXECUTOR]
    # Each app's end is its own, not the run's: the portal's deployment ended before its
    # wave's soak did, and so before the catalog (next wave) started.
    ended = {a["app"]: a["at"] for a in release(state)["apps"]}
    assert ended[PORTAL] <= waves[0]["finishedAt"], (ended, waves)
    assert ended[PORTAL] <= started[CATALOG], (ended, started)

    untouched = {a: cluster.versions(devcluster.url, a) for a in (CATALOG, EXECUTOR)}
    cluster.set_tag(repo, "v8r2p47-broken")
    broken = cluster.sync(devcluster.url, repo, state, "--timeout", "4")
    assert broken.returncode == ROLLED_BACK, cluster.explain(broken)
    live = cluster.apps(devcluster.url)
    assert cluster.image_of(live[PORTAL]) == "lhcbdirac:v8r2p46"
    for app_id in (CATALOG, EXECUTOR):
        assert cluster.image_of(live[app_id]) == "lhcbdirac:v8r2p46"
        assert cluster.versions(devcluster.url, app_id) == untouched[app_id], \
            f"{app_id} of a later wave got a write"
    shown = release(state)
    assert [(w["name"], w["state"]) for w in shown["waves"]] == [
        ("portal", "rolled back"), ("services", "not started"), ("(rest)", "not started")]
    assert "wave portal failed" in shown["waves"][1]["reason"]
    outcomes = {a["app"]: a["outcome"] for a in shown["apps"]}
    assert outcomes == {PORTAL: "rolled back", CATALOG: "skipped", EXECUTOR: "skipped"}
    assert shown["outcome"] == "rolled back"
    text = cluster.reconciler("releases", "--state-dir", str(state), "--limit", "1")
    assert text.returncode == 0, cluster.explain(text)
    assert "wave portal: rolled back, soak 1s" in text.stdout, text.stdout
    assert "wave services: not started" in text.stdout, text.stdout
    assert "image dirac (lhcbdirac): v8r2p46 -> v8r2p47-broken" in text.stdout, text.stdout

    # The revision is quarantined for every app of the release: a second sync writes nothing.
    versions = {a: cluster.versions(devcluster.url, a) for a in (PORTAL, CATALOG, EXECUTOR)}
    again = cluster.sync(devcluster.url, repo, state, "--timeout", "4")
    assert again.returncode == QUARANTINED, cluster.explain(again)
    assert {a: cluster.versions(devcluster.url, a) for a in versions} == versions


def test_an_app_failing_after_the_first_wave_rolls_back_its_wave_only(
        devcluster: launch.RunningCluster, tmp_path: Path) -> None:
    # The catalog's wave breaks (its image is broken, the portal's is not): the portal's
    # wave stays released, the catalog's wave is rolled back, the executor's never starts.
    portal = {**cluster.fast_app(PORTAL, grace=2),
              "container": {"type": "DOCKER", "docker": {"image": "portal"}}}
    repo = cluster.write_repo(tmp_path / "repo", [portal, *apps()[1:]], tag="v8r2p44",
                              settings=WAVES)
    images = {"images": {"dirac": {"repository": "lhcbdirac", "tag": "v8r2p44"},
                         "portal": {"repository": "lhcbdirac", "tag": "v8r2p44"}}}
    (repo / "images.yaml").write_text(json.dumps(images))
    state = tmp_path / "state"
    assert cluster.sync(devcluster.url, repo, state).returncode == CONVERGED

    images["images"]["dirac"]["tag"] = "v8r2p47-broken"
    images["images"]["portal"]["tag"] = "v8r2p47"
    (repo / "images.yaml").write_text(json.dumps(images))
    executor_versions = cluster.versions(devcluster.url, EXECUTOR)
    broken = cluster.sync(devcluster.url, repo, state, "--timeout", "4")
    assert broken.returncode == ROLLED_BACK, cluster.explain(broken)
    live = cluster.apps(devcluster.url)
    assert cluster.image_of(live[PORTAL]) == "lhcbdirac:v8r2p47"
    assert cluster.image_of(live[CATALOG]) == "lhcbdirac:v8r2p44"
    assert cluster.versions(devcluster.url, EXECUTOR) == executor_versions
    assert [(w["name"], w["state"]) for w in release(state)["waves"]] == [
        ("portal", "succeeded"), ("services", "rolled back"), ("(rest)", "not started")]


def test_an_app_unhealthy_during_the_soak_rolls_back_its_wave_and_the_next_never_starts(
        devcluster: launch.RunningCluster, tmp_path: Path) -> None:
    # In process, to see the waves as they go: when the portal's wave starts soaking, its
    # task is killed through Marathon's API (a crash after a good deployment): the soak sees
    # the portal unhealthy, the wave is rolled back, the catalog's wave never starts.
    repo = cluster.write_repo(tmp_path / "repo", apps()[:2], tag="v8r2p44",
                              settings={**WAVES, "waves": [
                                  {"name": "portal", "apps": ["/dirac/web"], "soak": 30}]})
    assert cluster.sync(devcluster.url, repo, tmp_path / "state").returncode == CONVERGED
    before = {a: cluster.versions(devcluster.url, a) for a in (PORTAL, CATALOG)}
    cluster.set_tag(repo, "v8r2p46")
    files, _ = directory.read_directory(repo)
    desired = loading.load_desired_state(files, revision="r2")
    client = marathon.MarathonClient(marathon.ClientSettings(urls=(devcluster.url,)))
    plan = planning.make_plan(diffing.diff_apps(desired, client.list_apps(
        embed=marathon.LIVE_EMBED)), revision="r2", settings=desired.settings)
    assert [s.name for s in plan.stages] == ["portal", "(rest)"]

    seen: list[steps.WaveReport] = []

    def on_wave(wave: steps.WaveReport) -> None:
        seen.append(wave)
        if wave.name == "portal" and wave.state is releases.WaveState.SOAKING:
            [task] = client.list_tasks(PORTAL)
            requests.delete(f"{devcluster.url}/v2/apps{PORTAL}/tasks/{task['id']}",
                            timeout=10).raise_for_status()

    applier = applying.Applier(client)
    try:
        results = {r.app_id: r for r in applier.run(plan, on_wave=on_wave)}
    finally:
        applier.close()
    assert [(w.name, str(w.state)) for w in seen] == [
        ("portal", "deploying"), ("portal", "soaking"), ("portal", "rolled back"),
        ("(rest)", "not started")]
    assert PORTAL in (seen[2].reason or "") and "during the soak" in (seen[2].reason or "")
    assert results[PORTAL].outcome is model.Outcome.ROLLED_BACK
    assert results[PORTAL].rollback is not None
    assert results[PORTAL].rollback.to_version == before[PORTAL][-1]
    assert results[CATALOG].outcome is model.Outcome.SKIPPED
    live = cluster.apps(devcluster.url)
    assert cluster.image_of(live[PORTAL]) == "lhcbdirac:v8r2p44"
    assert cluster.versions(devcluster.url, CATALOG) == before[CATALOG]
