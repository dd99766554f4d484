"""Diffing desired against live: actions, exact changes, patches, ignore rules, masking."""

from __future__ import annotations

import copy
import json

import jsonpatch

from reconciler.core import diff as diffing
from reconciler.core import load as loading
from reconciler.core import model, render
from reconciler.core import normalize as normalizing
from tests.core import repo


def example(*, tag: str | None = None, settings: str | None = None) -> model.DesiredState:
    files, revision = repo.example_files()
    replaced = []
    for f in files:
        text = f.text
        if f.path == "images.yaml" and tag is not None:
            text = text.replace("tag: v8r2p44", f"tag: {tag}")
        if f.path == "reconciler.yaml" and settings is not None:
            text = settings
        replaced.append(model.SourceFile(path=f.path, text=text))
    return loading.load_desired_state(replaced, revision=revision)


def as_marathon_returns_it(desired: model.DesiredState) -> list[model.JSON]:
    """Live apps as GET /v2/apps shows them after a sync: server fields, assigned ports."""
    live = []
    next_port = 10000
    for app in desired.apps.values():
        definition = copy.deepcopy(app.definition)
        for mapping in definition.get("container", {}).get("portMappings", []):
            if not mapping.get("servicePort"):
                mapping["servicePort"] = next_port
                next_port += 1
        definition.update({
            "version": "2024-03-04T10:11:12.131Z",
            "versionInfo": {"lastScalingAt": "2024-03-04T10:11:12.131Z",
                            "lastConfigChangeAt": "2024-03-04T10:11:12.131Z"},
            "tasksRunning": definition.get("instances", 1), "tasksHealthy": 1,
            "tasksStaged": 0, "tasksUnhealthy": 0, "deployments": [], "role": "*",
        })
        live.append(definition)
    return live


def test_a_freshly_synced_cluster_shows_no_difference() -> None:
    desired = example()
    diffs = diffing.diff_apps(desired, as_marathon_returns_it(desired))
    assert [d.action for d in diffs] == [model.Action.NOOP] * len(desired.apps)
    assert not render.has_changes(diffs)
    assert "No changes" in render.render_text(diffs)


def test_bumping_the_tag_changes_exactly_the_image_of_every_app_using_it() -> None:
    live = as_marathon_returns_it(example())
    diffs = diffing.diff_apps(example(tag="v8r2p45"), live)
    assert len(diffs) == len(live)
    for diff in diffs:
        assert diff.action is model.Action.UPDATE
        assert diff.changes == (model.FieldChange(path="/container/docker/image",
                                                  old="lhcbdirac:v8r2p44",
                                                  new="lhcbdirac:v8r2p45"),)
        assert diff.patch == ({"op": "replace", "path": "/container/docker/image",
                               "value": "lhcbdirac:v8r2p45"},)
        assert diff.desired is not None
        assert diff.desired["container"]["docker"]["image"] == "lhcbdirac:v8r2p45"


def test_only_instances_differing_is_a_scale() -> None:
    desired = example()
    live = as_marathon_returns_it(desired)
    portal = next(a for a in live if a["id"] == "/dirac-cert/web/portal")
    portal["instances"] = 3
    by_id = {d.app_id: d for d in diffing.diff_apps(desired, live)}
    assert by_id["/dirac-cert/web/portal"].action is model.Action.SCALE
    assert by_id["/dirac-cert/web/portal"].changes == (
        model.FieldChange(path="/instances", old=3, new=1),)


def test_ignored_pointers_never_differ() -> None:
    desired = example()
    live = as_marathon_returns_it(desired)
    executor = next(a for a in live if a["id"] == "/dirac-cert/requestmanagement/executor")
    executor["instances"] = 17  # the autoscaler's doing; reconciler.yaml ignores /instances
    by_id = {d.app_id: d for d in diffing.diff_apps(desired, live)}
    assert by_id["/dirac-cert/requestmanagement/executor"].action is model.Action.NOOP


def test_live_apps_missing_from_git_are_delete_candidates_only_under_managed_prefixes() -> None:
    desired = example()
    live = as_marathon_returns_it(desired) + [
        {"id": "/dirac-cert/old/service", "cmd": "sleep 1"},
        {"id": "/other-team/app", "cmd": "sleep 1"},
    ]
    diffs = diffing.diff_apps(desired, live)
    assert [d.app_id for d in diffs] == sorted(d.app_id for d in diffs)
    deletes = [d for d in diffs if d.action is model.Action.DELETE]
    assert [d.app_id for d in deletes] == ["/dirac-cert/old/service"]
    assert deletes[0].desired is None and deletes[0].live is not None
    assert "/other-team/app" not in {d.app_id for d in diffs}
    assert desired.settings.prune is False  # flagged anyway: the planner decides


def test_apps_absent_live_are_created_with_their_definition_as_written() -> None:
    desired = example()
    diffs = diffing.diff_apps(desired, [])
    assert {d.action for d in diffs} == {model.Action.CREATE}
    portal = next(d for d in diffs if d.app_id == "/dirac-cert/web/portal")
    assert portal.desired == desired.apps["/dirac-cert/web/portal"].definition
    assert "maxLaunchDelaySeconds" not in {c.path.strip("/") for c in portal.changes}


def test_the_patch_turns_normalized_live_into_normalized_desired() -> None:
    desired = example(tag="v9")
    live = as_marathon_returns_it(example())
    live[0]["mem"] = 4096
    live[0]["labels"] = {"team": "someone-else"}
    live[0]["healthChecks"] = []
    diff = diffing.diff_apps(desired, live)[0]
    normal_live = normalizing.normalize_app(live[0])
    normal_desired = diffing.adopt_server_choices(
        normalizing.normalize_app(desired.apps[diff.app_id].definition), normal_live)
    patched = jsonpatch.apply_patch(normal_live, [dict(op) for op in diff.patch])
    assert patched == normal_desired
    paths = {c.path for c in diff.changes}
    assert {"/mem", "/container/docker/image", "/healthChecks"} <= paths


def test_a_declared_service_port_differs_from_the_assigned_one() -> None:
    desired = example()
    live = as_marathon_returns_it(desired)
    portal = next(a for a in live if a["id"] == "/dirac-cert/web/portal")
    portal["container"]["portMappings"][0]["servicePort"] = 10444  # desired fixes 10443
    by_id = {d.app_id: d for d in diffing.diff_apps(desired, live)}
    assert by_id["/dirac-cert/web/portal"].changes == (model.FieldChange(
        path="/container/portMappings/0/servicePort", old=10444, new=10443),)


SECRET_APP = """\
container:
  docker: {image: lhcbdirac}
  portMappings: [{name: dips, containerPort: 9135}]
networks: [{mode: container/bridge}]
secrets:
  db: {source: /dirac/db/password-v2}
env:
  DB_PASSWORD: {secret: db}
  FTS_TOKEN: s3cr3t-new-token
  DIRAC_SETUP: LHCb-Certification
"""


def test_secret_values_are_masked_in_patch_changes_and_text() -> None:
    desired = loading.load_desired_state(
        repo.with_files({"dirac-cert/configuration/server.yaml": SECRET_APP}), revision="r")
    live = {**desired.apps["/dirac-cert/configuration/server"].definition,
            "secrets": {"db": {"source": "/dirac/db/password-v1"}},
            "env": {"DB_PASSWORD": {"secret": "db"}, "FTS_TOKEN": "s3cr3t-old-token",
                    "DIRAC_SETUP": "LHCb-Production"}}
    diff = diffing.diff_apps(desired, [live])[0]
    assert diff.action is model.Action.UPDATE
    shown = json.dumps([list(diff.patch), [c.__dict__ for c in diff.changes],
                        render.render_json([diff])]) + render.render_text([diff])
    for secret in ("s3cr3t", "password-v1", "password-v2"):
        assert secret not in shown
    assert "***" in shown
    assert "LHCb-Production" in shown  # not secret: shown
    assert diff.desired is not None and diff.desired["env"]["FTS_TOKEN"] == "s3cr3t-new-token"


def test_created_apps_are_masked_too() -> None:
    desired = loading.load_desired_state(
        repo.with_files({"dirac-cert/configuration/server.yaml": SECRET_APP}), revision="r")
    diffs = diffing.diff_apps(desired, [])
    shown = json.dumps(render.render_json(diffs)) + render.render_text(diffs)
    assert "s3cr3t" not in shown and "password-v2" not in shown


def test_render_json_carries_action_and_patch_ops() -> None:
    diffs = diffing.diff_apps(example(tag="v8r2p45"), as_marathon_returns_it(example()))
    data = render.render_json(diffs)
    assert data["counts"]["update"] == len(diffs)
    assert data["changed"] is True
    for app in data["apps"]:
        assert app["action"] == "update"
        assert app["patch"] == [{"op": "replace", "path": "/container/docker/image",
                                 "value": "lhcbdirac:v8r2p45"}]
    json.dumps(data)  # serializable as is


def test_render_text_lists_counts_then_changed_fields() -> None:
    diffs = diffing.diff_apps(example(tag="v8r2p45"), as_marathon_returns_it(example()))
    text = render.render_text(diffs)
    assert text.splitlines()[0].startswith(f"Plan: 0 to create, {len(diffs)} to update")
    assert '/container/docker/image: "lhcbdirac:v8r2p44" -> "lhcbdirac:v8r2p45"' in text
