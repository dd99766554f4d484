"""Loading the desired state: ids from paths, images resolved, settings read, and every
problem (YAML, schema, Marathon's rules) reported with its file and line, never a partial
result."""

from __future__ import annotations

import orjson
import pytest
import yaml

from reconciler.core import diff as diffing
from reconciler.core import drift as drifting
from reconciler.core import load as loading
from reconciler.core import model
from reconciler.core import normalize as normalizing
from reconciler.core import plan as planning
from tests.core import repo


def load(overrides: dict[str, str | None]) -> model.DesiredState:
    return loading.load_desired_state(repo.with_files(overrides), revision="r1")


def problems_of(overrides: dict[str, str | None]) -> tuple[model.Problem, ...]:
    with pytest.raises(model.InvalidDesiredState) as caught:
        load(overrides)
    return caught.value.problems


def test_the_example_repo_loads_every_app_on_the_shared_image() -> None:
    files, revision = repo.example_files()
    desired = loading.load_desired_state(files, revision=revision)
    assert revision.startswith("dir:")
    assert 6 <= len(desired.apps) <= 10
    for app in desired.apps.values():
        assert app.definition["container"]["docker"]["image"] == "lhcbdirac:v8r2p44"
        assert app.image_name == "lhcbdirac"
        assert app.definition["id"] == app.app_id
        assert app.app_id.startswith("/dirac-cert/")
    assert desired.settings.managed_prefixes == ("/dirac-cert",)


def test_folder_path_is_the_group_and_file_name_the_app() -> None:
    desired = load({})
    assert list(desired.apps) == ["/dirac-cert/configuration/server"]
    app = desired.apps["/dirac-cert/configuration/server"]
    assert app.source_path == "dirac-cert/configuration/server.yaml"
    assert app.definition["id"] == "/dirac-cert/configuration/server"


@pytest.mark.parametrize("explicit", ["/dirac-cert/configuration/server", "server"])
def test_an_explicit_id_that_agrees_is_accepted(explicit: str) -> None:
    desired = load({"dirac-cert/configuration/server.yaml": f"id: {explicit}\n" + repo.APP})
    assert desired.apps["/dirac-cert/configuration/server"].definition["id"] == (
        "/dirac-cert/configuration/server")


def test_an_explicit_id_that_disagrees_is_reported_on_its_line() -> None:
    problems = problems_of({"dirac-cert/configuration/server.yaml":
                            "# the CS\nid: /dirac-cert/other\n" + repo.APP})
    assert [(p.path, p.line) for p in problems] == [("dirac-cert/configuration/server.yaml", 2)]
    assert "/dirac-cert/configuration/server" in problems[0].message


def test_json_app_files_are_read_like_yaml() -> None:
    desired = load({"dirac-cert/configuration/server.yaml": None,
                    "dirac-cert/web/portal.json": (
                        '{"instances": 2,\n "container": {"docker": {"image": "lhcbdirac"}}}')})
    assert desired.apps["/dirac-cert/web/portal"].definition["instances"] == 2


def test_a_yaml_error_is_reported_with_path_and_line() -> None:
    broken = repo.APP.replace("mem: 128", "mem: [128")
    problems = problems_of({"dirac-cert/configuration/server.yaml": broken})
    assert len(problems) == 1
    assert problems[0].path == "dirac-cert/configuration/server.yaml"
    assert problems[0].line is not None and 3 <= problems[0].line <= 5
    assert "invalid YAML" in problems[0].message


def test_a_json_syntax_error_is_reported_with_path_and_line() -> None:
    problems = problems_of({"dirac-cert/web/portal.json": '{\n  "instances": 1,\n  "mem": }\n'})
    assert [(p.path, p.line) for p in problems] == [("dirac-cert/web/portal.json", 3)]


def test_a_schema_error_is_reported_on_the_line_of_the_field() -> None:
    wrong = repo.APP.replace("cpus: 0.1", "cpus: lots")
    problems = problems_of({"dirac-cert/configuration/server.yaml": wrong})
    assert [(p.path, p.line) for p in problems] == [("dirac-cert/configuration/server.yaml", 2)]
    assert "/cpus" in problems[0].message


def test_a_misspelt_field_is_reported_with_a_suggestion() -> None:
    wrong = repo.APP.replace("instances: 1", "instance: 1")
    problems = problems_of({"dirac-cert/configuration/server.yaml": wrong})
    assert problems[0].line == 1
    assert "unknown field" in problems[0].message and "'instances'" in problems[0].message


def test_fields_marathon_sets_are_refused() -> None:
    problems = problems_of({"dirac-cert/configuration/server.yaml":
                            repo.APP + "version: '2024-01-01T00:00:00Z'\n"})
    assert "set by Marathon" in problems[0].message


def test_a_marathon_rule_error_is_reported_on_the_line_of_the_field() -> None:
    wrong = repo.APP.replace("portIndex: 0", "portIndex: 3")
    problems = problems_of({"dirac-cert/configuration/server.yaml": wrong})
    line = wrong.splitlines().index("    portIndex: 3") + 1
    assert [(p.path, p.line) for p in problems] == [("dirac-cert/configuration/server.yaml",
                                                     line)]
    assert "portIndex 3" in problems[0].message


def test_an_invalid_id_from_the_file_name_is_reported() -> None:
    problems = problems_of({"dirac-cert/Web_Portal.yaml": repo.APP})
    assert problems[0].path == "dirac-cert/Web_Portal.yaml"
    assert "not a valid Marathon id" in problems[0].message


def test_an_unknown_image_name_is_reported_where_it_is_used() -> None:
    wrong = repo.APP.replace("image: lhcbdirac", "image: lhcbdiracx")
    problems = problems_of({"dirac-cert/configuration/server.yaml": wrong})
    assert problems[0].line == wrong.splitlines().index("    image: lhcbdiracx") + 1
    assert "unknown image 'lhcbdiracx'" in problems[0].message


def test_a_pinned_image_is_used_as_written() -> None:
    pinned = repo.APP.replace("image: lhcbdirac", "image: registry.cern.ch/lhcb/tool:1.2")
    desired = load({"dirac-cert/configuration/server.yaml": pinned})
    app = desired.apps["/dirac-cert/configuration/server"]
    assert app.definition["container"]["docker"]["image"] == "registry.cern.ch/lhcb/tool:1.2"
    assert app.image_name is None


def test_two_files_for_one_app_are_reported() -> None:
    problems = problems_of({"dirac-cert/configuration/server.json":
                            '{"container": {"docker": {"image": "lhcbdirac"}}}'})
    assert any("also defined by" in p.message for p in problems)


def test_port_names_must_be_unique() -> None:
    wrong = repo.APP.replace("    - {name: dips, containerPort: 9135}",
                             "    - {name: dips, containerPort: 9135}\n"
                             "    - {name: dips, containerPort: 9136}")
    problems = problems_of({"dirac-cert/configuration/server.yaml": wrong})
    assert [p.line for p in problems] == [wrong.splitlines().index(
        "    - {name: dips, containerPort: 9136}") + 1]
    assert "used twice" in problems[0].message


def test_dependencies_must_exist_inside_managed_prefixes_only() -> None:
    app = repo.APP + "dependencies:\n  - /dirac-cert/missing\n  - /elsewhere/database\n"
    problems = problems_of({"dirac-cert/configuration/server.yaml": app})
    assert len(problems) == 1
    assert problems[0].line == app.splitlines().index("  - /dirac-cert/missing") + 1
    assert "/dirac-cert/missing" in problems[0].message


def test_dependency_cycles_are_reported() -> None:
    problems = problems_of({
        "dirac-cert/configuration/server.yaml": repo.APP + "dependencies: [../web/portal]\n",
        "dirac-cert/web/portal.yaml": repo.APP + "dependencies: [../configuration/server]\n",
    })
    assert any("cycle" in p.message for p in problems)


def test_apps_outside_managed_prefixes_are_refused() -> None:
    problems = problems_of({"other/app.yaml": repo.APP})
    assert [p.path for p in problems] == ["other/app.yaml"]
    assert "outside the managed prefixes" in problems[0].message


def test_env_secret_references_must_name_a_declared_secret() -> None:
    app = repo.APP + "env:\n  DB_PASSWORD: {secret: db}\n"
    problems = problems_of({"dirac-cert/configuration/server.yaml": app})
    assert "not declared in secrets" in problems[0].message


def test_all_problems_of_all_files_come_together_sorted() -> None:
    problems = problems_of({
        "dirac-cert/a.yaml": "mem: [\n",
        "dirac-cert/b.yaml": repo.APP.replace("cpus: 0.1", "cpus: -1"),
        "dirac-cert/c.yaml": repo.APP + "cmd: run\nargs: [run]\n",
        "images.yaml": "images:\n  lhcbdirac: {repository: lhcbdirac}\n",
    })
    assert [p.path for p in problems] == [
        "dirac-cert/a.yaml", "dirac-cert/b.yaml", "dirac-cert/c.yaml", "images.yaml"]
    assert all(p.line is not None for p in problems)


def test_every_problem_of_a_file_is_reported_and_a_broken_app_is_still_a_dependency() -> None:
    """portIndex, an unknown image and a missing dependency in one file: three problems; the
    app that depends on the broken one gets no invented "no app has that id"."""
    broken = (repo.APP.replace("portIndex: 0", "portIndex: 7")
              .replace("image: lhcbdirac", "image: nosuchimage")
              + "dependencies: [/dirac-cert/nothere]\n")
    dependent = repo.APP + "dependencies: [/dirac-cert/broken]\n"
    shapeless = repo.APP.replace("cpus: 0.1", "cpus: lots")
    problems = problems_of({"dirac-cert/broken.yaml": broken,
                            "dirac-cert/dependent.yaml": dependent,
                            "dirac-cert/shapeless.yaml": shapeless,
                            "dirac-cert/on-shapeless.yaml":
                                repo.APP + "dependencies: [/dirac-cert/shapeless]\n"})
    by_file: dict[str, list[str]] = {}
    for problem in problems:
        by_file.setdefault(problem.path, []).append(problem.message)
    assert sorted(by_file) == ["dirac-cert/broken.yaml", "dirac-cert/shapeless.yaml"], by_file
    messages = " | ".join(by_file["dirac-cert/broken.yaml"])
    assert len(by_file["dirac-cert/broken.yaml"]) == 3, messages
    assert "portIndex" in messages and "nosuchimage" in messages and "nothere" in messages


def test_settings_file_is_read_into_repo_settings() -> None:
    settings = """\
managedPrefixes: [/dirac-cert]
prune: true
driftPolicy: {/dirac-cert: correct, /dirac-cert/web: report}
ignore: {/dirac-cert/requests: [/instances, /labels/owner]}
deadlines: {/dirac-cert/configuration: 90}
"""
    desired = load({"reconciler.yaml": settings})
    s = desired.settings
    assert s.prune is True
    assert s.drift_policy_for("/dirac-cert/web/portal") is model.DriftPolicy.REPORT
    assert s.drift_policy_for("/dirac-cert/configuration/server") is model.DriftPolicy.CORRECT
    assert s.ignored_pointers_for("/dirac-cert/requests/executor") == (
        "/instances", "/labels/owner")
    assert s.deadlines == {"/dirac-cert/configuration": 90.0}


def test_a_settings_schema_error_is_reported_on_its_line() -> None:
    problems = problems_of({"reconciler.yaml": "managedPrefixes: [/dirac-cert]\nprune: maybe\n"})
    assert [(p.path, p.line) for p in problems] == [("reconciler.yaml", 2)]


def test_other_files_are_not_read() -> None:
    desired = load({"README.md": "# not yaml: [", "dirac-cert/.hidden.yaml": "mem: ["})
    assert list(desired.apps) == ["/dirac-cert/configuration/server"]


def test_at_most_one_mesos_health_check() -> None:
    app = repo.APP + "  - {protocol: MESOS_TCP, portIndex: 0}\n"
    problems = problems_of({"dirac-cert/configuration/server.yaml": app})
    assert [p.line for p in problems] == [len(app.splitlines())]
    assert "at most one Mesos health check" in problems[0].message


def test_apps_of_a_revision_hold_equal_values_once_and_only_equal_json_is_shared() -> None:
    site = "env: {DIRAC_SETUP: LHCb-Certification}\nconstraints: [[hostname, MAX_PER, '2']]\n"
    desired = load({
        "dirac-cert/a.yaml": repo.APP + site + "upgradeStrategy: {minimumHealthCapacity: 1}\n",
        "dirac-cert/b.yaml": repo.APP + site + "upgradeStrategy: {minimumHealthCapacity: 1.0}\n",
        "dirac-cert/c.yaml": repo.APP + "env: {DIRAC_SETUP: LHCb-Production}\n",
    })
    a, b, c = (desired.apps[f"/dirac-cert/{n}"].definition for n in "abc")
    assert a["env"] is b["env"] and a["constraints"] is b["constraints"]
    assert a["healthChecks"] is b["healthChecks"] is c["healthChecks"]
    assert c["env"] == {"DIRAC_SETUP": "LHCb-Production"} and c["env"] is not a["env"]
    # Equal for Python, not the same JSON: sent to Marathon as written, so held apart.
    a_strategy, b_strategy = a["upgradeStrategy"], b["upgradeStrategy"]
    assert a_strategy == b_strategy and a_strategy is not b_strategy
    assert isinstance(b_strategy["minimumHealthCapacity"], float)
    assert isinstance(a_strategy["minimumHealthCapacity"], int)


def test_nothing_a_reconcile_does_with_desired_apps_changes_their_shared_definitions() -> None:
    # Shared values are safe only while no step mutates a definition: diff, plan, drift and
    # the readable changes all run here over every example app, and each definition must
    # come out as it went in.
    files, revision = repo.example_files()
    desired = loading.load_desired_state(files, revision=revision)
    texts = {f.path: f.text for f in files}
    for app in desired.apps.values():  # each is its own file, read alone: nothing leaked
        own = yaml.safe_load(texts[app.source_path])
        own["id"] = app.app_id
        own["container"]["docker"]["image"] = app.definition["container"]["docker"]["image"]
        assert orjson.dumps(own, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            app.definition, option=orjson.OPT_SORT_KEYS)
    before = {a: orjson.dumps(app.definition) for a, app in desired.apps.items()}
    live = []
    for number, app in enumerate(desired.apps.values()):
        twin = normalizing.normalize_app(app.definition)
        mappings = twin.get("container", {}).get("portMappings") or []
        # Marathon assigns the service ports desired leaves at 0 (adopted, not a change).
        twin["container"] = {**twin["container"], "portMappings": [
            {**m, "servicePort": m.get("servicePort") or 10000 + number} for m in mappings]}
        if number % 2:
            twin = {**twin, "container": {**twin["container"], "docker": {
                **twin["container"]["docker"], "image": "lhcbdirac:v8r2p43"}}}
        live.append({**twin, "version": "2026-11-30T00:00:00.000Z", "tasks": []})
    diffs = diffing.diff_apps(desired, live)
    assert {d.action for d in diffs} == {model.Action.NOOP, model.Action.UPDATE}
    planning.make_plan(diffs, revision=revision, settings=desired.settings)
    for app_id, app in desired.apps.items():
        drifting.find_normalized_drift(
            app_id, desired=normalizing.normalize_app(app.definition),
            live=normalizing.normalize_app({**app.definition, "instances": 0}))
    assert {a: orjson.dumps(app.definition) for a, app in desired.apps.items()} == before
