"""What a load leaves behind: the desired state only. The parsed files (each with its text:
8 MB at 10,000 apps) go the moment the load returns, not at the next full collection, which
in ``reconciler run`` may be minutes away (``shell/memory.py`` makes them rare): until then
they were held through the diff and plan of a release of every app, at its peak."""

from __future__ import annotations

import gc

from reconciler.core import load, model, parse
from tests.core import repo


def _apps_with_dependencies(count: int) -> dict[str, str]:
    """A chain: each app depends on the next one (the last on none)."""
    files = {}
    for index in range(count):
        depends = (f"dependencies: [/dirac-cert/chain/app{index + 1:05d}]\n"
                   if index < count - 1 else "")
        files[f"dirac-cert/chain/app{index:05d}.yaml"] = repo.APP + depends
    return files


def test_no_parsed_file_outlives_the_load_without_a_collection() -> None:
    files = repo.with_files(_apps_with_dependencies(20))
    gc.collect()
    gc.disable()  # what a reference cycle would keep stays visible to get_objects
    try:
        desired = load.load_desired_state(files, revision="r1")
        left = [o for o in gc.get_objects() if isinstance(o, parse.ParsedFile)]
    finally:
        gc.enable()
    assert len(desired.apps) == 21
    assert left == [], f"{len(left)} parsed files kept alive after the load"


def test_a_dependency_chain_longer_than_the_recursion_limit_loads() -> None:
    desired = load.load_desired_state(repo.with_files(_apps_with_dependencies(1500)),
                                      revision="r1")
    assert len(desired.apps) == 1501


def test_a_release_holds_what_it_did_not_change_once_for_both_revisions() -> None:
    """Loaded ``like`` the revision before (the controller's), a release that bumps the
    image catalog shares every other top-level value with that revision: both live until
    the release is over, and at 10,000 apps the unchanged parts were megabytes twice."""
    files = repo.with_files(_apps_with_dependencies(3))
    before = load.load_desired_state(files, revision="r1")
    bumped = [f if f.path != "images.yaml" else
              model.SourceFile(f.path, f.text.replace("v8r2p44", "v8r2p45")) for f in files]
    after = load.load_desired_state(bumped, revision="r2", like=before)
    alone = load.load_desired_state(bumped, revision="r2")
    assert after == alone
    for app_id, app in after.apps.items():
        old = before.apps[app_id].definition
        new = app.definition
        assert new["healthChecks"] is old["healthChecks"]
        assert new["networks"] is old["networks"]
        assert new["container"] is not old["container"]
        assert new["container"]["docker"]["image"] == "lhcbdirac:v8r2p45"
        assert alone.apps[app_id].definition["healthChecks"] is not old["healthChecks"]
