"""Release waves: reading ``waves:`` from reconciler.yaml, the problems it can have (each
with file and line), which wave each app lands in, and plans whose release waves hold
dependency layers."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.core import load as loading
from reconciler.core import model
from reconciler.core import plan as planning
from reconciler.core import waves as release_waves
from tests.core import repo

SERVER = "dirac-cert/configuration/server.yaml"
PORTAL = "dirac-cert/web/portal.yaml"

WAVES = """\
managedPrefixes: [/dirac-cert]
# The portal first: users see a problem before the services get it.
waves:
  - name: portal
    apps: [/dirac-cert/web]
    soak: 300
  - name: services
    apps: ["/dirac-cert/*/server"]
"""


def problems_of(overrides: dict[str, str | None]) -> list[tuple[str, int | None, str]]:
    with pytest.raises(model.InvalidDesiredState) as caught:
        loading.load_desired_state(repo.with_files(overrides), revision="r1")
    return [(p.path, p.line, p.message) for p in caught.value.problems]


def test_waves_are_read_in_order_with_their_soak() -> None:
    desired = loading.load_desired_state(
        repo.with_files({"reconciler.yaml": WAVES, PORTAL: repo.APP}), revision="r1")
    assert desired.settings.waves == (
        model.ReleaseWave(name="portal", selectors=("/dirac-cert/web",), soak=300.0),
        model.ReleaseWave(name="services", selectors=("/dirac-cert/*/server",), soak=0.0))


@pytest.mark.parametrize(("selector", "app_id", "selected"), [
    ("*", "/any/app", True),
    ("/dirac-cert/web", "/dirac-cert/web/portal", True),     # a group
    ("/dirac-cert/web", "/dirac-cert/webapp", False),        # not a prefix of the name
    ("/dirac-cert/web/portal", "/dirac-cert/web/portal", True),
    ("/dirac-cert/*/server", "/dirac-cert/configuration/server", True),
    ("/dirac-cert/*/server", "/dirac-cert/configuration/serverless", False),
    ("/dirac-cert/web/portal-?", "/dirac-cert/web/portal-2", True),
])
def test_selectors_are_ids_groups_or_globs(selector: str, app_id: str, selected: bool) -> None:
    assert release_waves.selects(selector, app_id) is selected


def test_an_app_goes_to_the_first_wave_that_selects_it_else_the_rest() -> None:
    waves = (model.ReleaseWave("portal", ("/d/web",)), model.ReleaseWave("all", ("/d",)))
    assert release_waves.wave_of("/d/web/portal", waves) == "portal"
    assert release_waves.wave_of("/d/fts", waves) == "all"
    assert release_waves.wave_of("/other/x", waves) == release_waves.REST


@pytest.mark.parametrize(("settings", "line", "message"), [
    ("waves:\n  - {name: Portal, apps: [/x]}\n", 2, "does not match"),
    ("waves:\n  - name: a\n    apps: [/dirac-cert]\n    soak: -1\n", 4, "minimum"),
    ("waves:\n  - name: a\n    apps: [relative/id]\n", 3, "does not match"),
    ("waves:\n  - name: a\n    apps: [/dirac-cert]\n    pause: 3\n", 4, "pause: unknown field"),
    ("waves:\n  - {name: a, apps: [/dirac-cert]}\n  - name: a\n    apps: [/dirac-cert]\n",
     3, "wave 'a' is named twice"),
    ("waves:\n  - name: a\n    apps:\n      - /dirac-cert\n      - /dirac-cert/wbe\n",
     5, "'/dirac-cert/wbe' selects no app"),
])
def test_bad_waves_are_reported_with_their_line(settings: str, line: int, message: str) -> None:
    problems = problems_of({"reconciler.yaml": settings})
    assert any(p == "reconciler.yaml" and at == line and message in text
               for p, at, text in problems), problems


def test_an_app_that_depends_on_a_later_wave_is_reported_on_its_dependency_line() -> None:
    portal = repo.APP + "dependencies:\n  - /dirac-cert/configuration/server\n"
    problems = problems_of({"reconciler.yaml": WAVES, PORTAL: portal})
    [(path, line, message)] = problems
    assert (path, line) == (PORTAL, portal.splitlines().index(
        "  - /dirac-cert/configuration/server") + 1)
    assert "later wave 'services'" in message


def _diff(app_id: str, **definition: Any) -> model.AppDiff:
    body = {"id": app_id, **definition}
    return model.AppDiff(app_id=app_id, action=model.Action.UPDATE, patch=(), changes=(),
                         desired=body, live=body)


def test_release_waves_hold_dependency_layers_and_deletes_join_the_last() -> None:
    settings = model.RepoSettings(prune=True, waves=(
        model.ReleaseWave("portal", ("/d/web",), soak=60),
        model.ReleaseWave("services", ("/d/db", "/d/cat"))))
    diffs = [_diff("/d/web/portal"), _diff("/d/db"), _diff("/d/cat", dependencies=["/d/db"]),
             _diff("/d/fts", dependencies=["/d/cat"]),
             model.AppDiff(app_id="/d/old", action=model.Action.DELETE, patch=(), changes=(),
                           desired=None, live={"id": "/d/old"})]
    plan = planning.make_plan(diffs, revision="r", settings=settings)
    assert [(s.name, s.soak, [[step.app_id for step in layer] for layer in s.waves])
            for s in plan.stages] == [
        ("portal", 60.0, [["/d/web/portal"]]),
        ("services", 0.0, [["/d/db"], ["/d/cat"]]),
        (release_waves.REST, 0.0, [["/d/fts"], ["/d/old"]]),
    ]
    assert [step.app_id for step in plan.steps] == [
        "/d/web/portal", "/d/db", "/d/cat", "/d/fts", "/d/old"]
    fts = next(s for s in plan.steps if s.app_id == "/d/fts")
    assert fts.depends_on == ("/d/cat",)  # across waves: the applier checks it succeeded


def test_a_wave_with_nothing_to_deploy_is_not_a_stage() -> None:
    settings = model.RepoSettings(waves=(model.ReleaseWave("portal", ("/d/web",), soak=60),))
    plan = planning.make_plan([_diff("/d/db")], revision="r", settings=settings)
    assert [s.name for s in plan.stages] == [release_waves.REST]


def test_without_waves_a_plan_has_no_stages() -> None:
    plan = planning.make_plan([_diff("/d/db")], revision="r", settings=model.RepoSettings())
    assert plan.stages == ()
    assert [[s.app_id for s in layer] for layer in plan.waves] == [["/d/db"]]


def test_a_dependency_on_a_later_wave_is_refused_by_the_plan_too() -> None:
    settings = model.RepoSettings(waves=(model.ReleaseWave("first", ("/d/a",)),))
    with pytest.raises(model.InvalidDesiredState, match="later release wave"):
        planning.make_plan([_diff("/d/a", dependencies=["/d/b"]), _diff("/d/b")],
                           revision="r", settings=settings)


@pytest.mark.parametrize("doc", ["docs/releases.md", "docs/config-repo.md"])
def test_the_documented_waves_validate_against_the_shipped_example_repo(doc: str) -> None:
    # The portal depends on configuration/server and reqmanager: an example with the portal
    # in the first wave would be refused, and readers copy the examples.
    import dataclasses
    import re
    from pathlib import Path

    import yaml

    from reconciler.shell import directory

    root = Path(__file__).parents[2]
    text = (root / doc).read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "waves:" in b]
    assert blocks, f"{doc} has no waves example"
    files, revision = directory.read_directory(root / "reconciler" / "desired_state")
    shipped = next(f for f in files if f.path == "reconciler.yaml")
    for block in blocks:
        settings = yaml.safe_load(shipped.text) | yaml.safe_load(block)
        edited = [dataclasses.replace(f, text=yaml.safe_dump(settings))
                  if f.path == "reconciler.yaml" else f for f in files]
        desired = loading.load_desired_state(edited, revision=revision)
        assert len(desired.settings.waves) >= 2
