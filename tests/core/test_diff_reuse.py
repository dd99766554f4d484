"""Desired apps normalized once per DesiredState object: reuse never changes a diff."""

from __future__ import annotations

import gc

from reconciler.core import diff as diffing
from reconciler.core import model


def _state(*, revision: str, image: str) -> model.DesiredState:
    definition = {"id": "/dirac/web/portal", "cmd": "dirac-webapp-run", "instances": 2,
                  "container": {"type": "DOCKER", "docker": {"image": image}}}
    return model.DesiredState(
        revision=revision,
        apps={"/dirac/web/portal": model.DesiredApp(app_id="/dirac/web/portal",
                                                    definition=definition, source_path="a.yaml")},
        images={}, settings=model.RepoSettings())


LIVE = {"id": "/dirac/web/portal", "cmd": "dirac-webapp-run", "instances": 2,
        "container": {"type": "DOCKER", "docker": {"image": "lhcbdirac:v8r2p44"}},
        "version": "2024-03-04T10:11:12.131Z"}


def test_the_same_state_diffed_twice_gives_the_same_diffs() -> None:
    desired = _state(revision="r1", image="lhcbdirac:v8r2p45")
    first = diffing.diff_apps(desired, [LIVE])
    second = diffing.diff_apps(desired, [LIVE])
    assert first == second
    assert [d.action for d in second] == [model.Action.UPDATE]
    assert {c.path for c in second[0].changes} == {"/container/docker/image"}


def test_another_state_of_the_same_revision_is_normalized_afresh() -> None:
    # The engine builds a one-app state for a rollback under the revision being rolled back.
    changed = _state(revision="r1", image="lhcbdirac:v8r2p45")
    assert [d.action for d in diffing.diff_apps(changed, [LIVE])] == [model.Action.UPDATE]
    same = _state(revision="r1", image="lhcbdirac:v8r2p44")
    assert [d.action for d in diffing.diff_apps(same, [LIVE])] == [model.Action.NOOP]


def test_a_state_reborn_at_the_same_address_is_not_served_its_predecessor() -> None:
    # CPython reuses the address (id) of a collected object: the memo must notice.
    for image, action in [("lhcbdirac:v8r2p45", model.Action.UPDATE),
                          ("lhcbdirac:v8r2p44", model.Action.NOOP)] * 20:
        desired = _state(revision="r1", image=image)
        assert [d.action for d in diffing.diff_apps(desired, [LIVE])] == [action]
        del desired
        gc.collect()
