"""From a tag in the registry to a running release, with ``reconciler run`` as a subprocess:
a real Distribution registry (Debian's ``docker-registry``), a bare Git repository and the
dev cluster. The registry watch writes the bump commit, the controller rolls it out wave by
wave; a broken tag stops in the first wave; a registry that is down or refuses access is
retried, shown on ``/readyz`` and in the metrics, and never stops the controller."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest
import requests
import yaml

from testbed import registries
from testbed.apps import fast_app
from tests.controller.stack import CATALOG, PORTAL, Controller, running

pytestmark = pytest.mark.integration

IMAGES = """\
# Every image the apps use, named once.
images:
  dirac:
    repository: {repository}
    tag: v8r2p44    # moved by the registry watch
    update:
      registry: {registry}
      order: lhcbdirac
{options}
"""


@pytest.fixture
def registry() -> Iterator[registries.Registry]:
    with registries.running_registry() as server:
        yield server


def repo_files(registry: registries.Registry, *, repository: str, options: str = "",
               waves: list[dict[str, Any]] | None = None) -> dict[str, str]:
    host = registry.url.split("://", 1)[1]
    apps = [fast_app(CATALOG, grace=2), fast_app(PORTAL, grace=2)]
    files = {app["id"].strip("/") + ".yaml": yaml.safe_dump(app) for app in apps}
    files["images.yaml"] = IMAGES.format(repository=f"{host}/{repository}",
                                         registry=registry.url, options=options)
    settings: dict[str, Any] = {"managedPrefixes": ["/dirac"]}
    if waves is not None:
        settings["waves"] = waves
    files["reconciler.yaml"] = yaml.safe_dump(settings)
    return files


WAVES = [{"name": "portal", "apps": ["/dirac/web"], "soak": 1}]


def newest_release(controller: Controller, revision: str) -> dict[str, Any] | None:
    found = controller.get("/api/v1/releases")["releases"]
    return next((r for r in found if r["revision"] == revision), None)


def versions(controller: Controller, app_id: str) -> list[str]:
    response = requests.get(f"{controller.marathon}/v2/apps{app_id}/versions", timeout=10)
    response.raise_for_status()
    return list(response.json()["versions"])


def fresh_repository() -> str:
    # The dev cluster's catalog picks the stand-in by the last path part: lhcbdirac.
    return f"lhcb-{uuid.uuid4().hex[:8]}/lhcbdirac"


def readyz(controller: Controller) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{controller.url}/readyz", timeout=10) as response:
            return dict(yaml.safe_load(response.read()))
    except urllib.error.HTTPError as e:
        return dict(yaml.safe_load(e.read()))


def metric(controller: Controller, name: str) -> float:
    text = requests.get(f"{controller.url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def commits(controller: Controller) -> list[git.Commit]:
    return list(git.Repo(controller.upstream.bare).iter_commits("main"))


def first_sync(controller: Controller) -> None:
    controller.wait("the first revision to be synced",
                    lambda: controller.get("/api/v1/status")["revision"])
    controller.wait("both apps healthy", lambda: all(
        controller.settled(a) for a in (CATALOG, PORTAL)))


def test_a_tag_pushed_to_the_registry_becomes_one_bump_commit_and_is_rolled_out(
        registry: registries.Registry, tmp_path: Path) -> None:
    repository = fresh_repository()
    registry.push(repository, "v8r2p44")
    # Pinned by digest: a tag moved in the registry later cannot change what runs.
    files = repo_files(registry, repository=repository, waves=WAVES,
                       options="      pinDigest: true")
    with running(tmp_path, poll_interval=600, files=files,
                 extra_env={"RECONCILER_REGISTRY_INTERVAL": "1"}) as controller:
        first_sync(controller)
        before = commits(controller)
        assert len(before) == 1

        digest = registry.push(repository, "v8r2p46")
        registry.push(repository, "v8r3-pre1")  # no pre-releases in this policy
        bump = controller.wait("the bump commit", lambda: (c := commits(controller))
                               and len(c) > 1 and c[0])
        assert bump.author.name == "reconciler"
        assert "dirac" in bump.message and "v8r2p44 -> v8r2p46" in bump.message
        assert digest in bump.message
        text = bump.tree["images.yaml"].data_stream.read().decode()
        assert "# Every image the apps use, named once." in text
        assert "tag: v8r2p46    # moved by the registry watch" in text
        # The Git poll is every 10 minutes: the bump itself asked for the poll.
        host = registry.url.split("://", 1)[1]
        for app_id in (PORTAL, CATALOG):
            controller.wait(f"{app_id} on v8r2p46", lambda a=app_id: controller.image_of(a)
                            == f"{host}/{repository}:v8r2p46@{digest}", timeout=90)
        controller.wait("the controller to report the bump revision",
                        lambda: controller.get("/api/v1/status")["revision"] == bump.hexsha)
        assert len(commits(controller)) == 2  # one commit, v8r3-pre1 ignored
        assert metric(controller, "reconciler_registry_bumps_total") == 1
        assert readyz(controller)["ready"] is True

        # Wave by wave: the portal, then (after its soak) the rest; Marathon's versions of
        # the new definitions are in that order too.
        release = controller.wait("the release to succeed", lambda: (r := newest_release(
            controller, bump.hexsha)) and r["outcome"] == "succeeded" and r)
        assert [(w["name"], w["state"], w["apps"]) for w in release["waves"]] == [
            ("portal", "succeeded", [PORTAL]), ("(rest)", "succeeded", [CATALOG])]
        assert release["waves"][0]["finishedAt"] <= release["waves"][1]["startedAt"]
        live = controller.live()
        assert live[PORTAL]["version"] < live[CATALOG]["version"]
        assert release["cause"].startswith("tag v8r2p46 of dirac seen in the registry")
        assert release["imagesChanged"] == [{"name": "dirac", "repository": f"{host}/{repository}",
                                             "old": "v8r2p44",
                                             "new": f"v8r2p46@{digest}"}]


def test_a_broken_tag_from_the_registry_stops_in_the_first_wave(
        registry: registries.Registry, tmp_path: Path) -> None:
    repository = fresh_repository()
    registry.push(repository, "v8r2p44")
    # A policy that takes the dev cluster's broken stand-in tags too (a regex order keyed on
    # the patch number): the registry's newest tag is a bad release.
    policy = ("      order: regex\n"
              "      pattern: '^v8r2p(?P<key>\\d+)(-broken)?$'")
    files = repo_files(registry, repository=repository, waves=WAVES)
    files["images.yaml"] = files["images.yaml"].replace("      order: lhcbdirac", policy)
    with running(tmp_path, poll_interval=600, files=files,
                 extra_env={"RECONCILER_REGISTRY_INTERVAL": "1"}) as controller:
        first_sync(controller)
        host = registry.url.split("://", 1)[1]
        catalog_versions = versions(controller, CATALOG)

        registry.push(repository, "v8r2p47-broken")
        bump = controller.wait("the bump commit", lambda: (c := commits(controller))
                               and len(c) > 1 and c[0])
        assert "v8r2p44 -> v8r2p47-broken" in bump.message
        release = controller.wait("the release to be rolled back", lambda: (
            r := newest_release(controller, bump.hexsha)) and r["outcome"] == "rolled back"
            and r, timeout=120)
        assert [(w["name"], w["state"]) for w in release["waves"]] == [
            ("portal", "rolled back"), ("(rest)", "not started")]
        assert {a["app"]: a["outcome"] for a in release["apps"]} == {
            PORTAL: "rolled back", CATALOG: "skipped"}
        controller.wait("the portal back on v8r2p44", lambda: controller.image_of(PORTAL)
                        == f"{host}/{repository}:v8r2p44")
        assert controller.image_of(CATALOG) == f"{host}/{repository}:v8r2p44"
        assert versions(controller, CATALOG) == catalog_versions, "a later wave got a write"
        # The status board follows the records within a second or so.
        rows = controller.wait("both apps shown quarantined", lambda: (
            r := {a["app_id"]: a for a in controller.get("/api/v1/apps")["apps"]})
            and r[PORTAL]["quarantine"] and r[CATALOG]["quarantine"] and r)
        assert rows[PORTAL]["quarantine"], rows[PORTAL]
        assert "wave portal failed" in rows[CATALOG]["quarantine"], rows[CATALOG]


def test_registry_down_or_refusing_is_retried_and_visible_never_a_crash(
        tmp_path: Path) -> None:
    with contextlib.ExitStack() as up:
        refusing = up.enter_context(registries.running_registry(auth="htpasswd"))
        repository = fresh_repository()
        refusing.push(repository, "v8r2p44")
        files = repo_files(refusing, repository=repository)
        wrong = tmp_path / "registries.json"  # on the host, like every other secret
        wrong.write_text(json.dumps({"auths": {refusing.url.split("://")[1]: {
            "username": registries.USER, "password": "not-the-password"}}}))
        with running(tmp_path, poll_interval=1, files=files,
                     extra_env={"RECONCILER_REGISTRY_INTERVAL": "0.2",
                                "RECONCILER_REGISTRY_AUTH_FILE": str(wrong)}) as controller:
            first_sync(controller)

            def watch_reasons() -> list[str]:
                return [r for r in readyz(controller)["reasons"]
                        if r.startswith("registry watch:")]

            refused = controller.wait("/readyz to name the refused registry", watch_reasons)
            assert "access refused (401)" in refused[0], refused
            assert "not-the-password" not in refused[0]
            controller.wait("a retry", lambda: metric(
                controller, "reconciler_registry_errors_total") >= 2)

            up.close()  # the registry goes down
            down = controller.wait("/readyz to name the registry that is down", lambda: [
                r for r in watch_reasons() if "unreachable" in r])
            assert refusing.url in down[0]
            assert controller.process.poll() is None  # never a crash
            assert controller.get("/api/v1/status")["revision"]  # Git and Marathon go on
            assert len(commits(controller)) == 1


def test_without_an_update_policy_the_watch_does_nothing_and_says_nothing(
        tmp_path: Path) -> None:
    # The stack's images.yaml moves its tag by hand: no image has an update policy.
    with running(tmp_path, poll_interval=0.5, serve_git=True,
                 extra_env={"RECONCILER_REGISTRY_INTERVAL": "0.2"}) as controller:
        first_sync(controller)
        assert controller.git is not None
        controller.git.stop()  # the config repo becomes unreachable
        # The poll says so (its own reason); by then the watch had many turns (0.2s each).
        controller.wait("the poll to fail three times", lambda: metric(
            controller, "reconciler_git_errors_total") >= 3)
        reasons = controller.wait("/readyz to name the repo", lambda: [
            r for r in readyz(controller)["reasons"] if "git" in r.lower()])
        assert not [r for r in readyz(controller)["reasons"]
                    if r.startswith("registry watch")], reasons
        assert metric(controller, "reconciler_registry_checks_total") == 0
        assert metric(controller, "reconciler_registry_errors_total") == 0
        # Nothing at all: not even a working copy of the config repo for bumps.
        assert not (tmp_path / "state" / "registry-watch").exists()
