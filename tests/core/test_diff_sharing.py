"""Apps changed alike (a release: one image tag for all) hold one patch and one change list
between them, and sharing never changes a diff: each is what diffing the app alone gives."""

from __future__ import annotations

from reconciler.core import diff as diffing
from reconciler.core import model


def _app(app_id: str, *, image: str, password: str = "s3cret") -> model.JSON:
    return {"id": app_id, "cmd": "dirac-service", "instances": 1,
            "env": {"DB_PASSWORD": password},
            "container": {"type": "DOCKER", "docker": {"image": image}}}


def _desired(apps: list[model.JSON]) -> model.DesiredState:
    return model.DesiredState(
        revision="r2",
        apps={str(a["id"]): model.DesiredApp(app_id=str(a["id"]), definition=a,
                                             source_path=f"{a['id']}.yaml") for a in apps},
        images={}, settings=model.RepoSettings())


def test_apps_changed_alike_share_their_patch_and_changes_and_others_do_not() -> None:
    ids = [f"/dirac/site{n}/fts" for n in range(4)]
    desired = [_app(a, image="lhcbdirac:v8r2p45") for a in ids[:3]]
    desired.append(_app(ids[3], image="lhcbdirac:v8r2p45", password="other"))
    live = [{**_app(a, image="lhcbdirac:v8r2p44"), "version": "2026-11-30T00:00:00Z"}
            for a in ids]
    diffs = diffing.diff_apps(_desired(desired), live)

    alike, different = diffs[:3], diffs[3]
    assert all(d.patch is alike[0].patch and d.changes is alike[0].changes for d in alike)
    assert different.changes is not alike[0].changes
    for d, want, have in zip(diffs, desired, live, strict=True):  # as if diffed alone
        alone = diffing.diff_app(model.DesiredApp(app_id=d.app_id, definition=want,
                                                  source_path=""), have)
        assert (d.patch, d.changes) == (alone.patch, alone.changes)
    shown = str([(d.patch, d.changes) for d in diffs])  # what is shown is masked, shared or not
    assert "other" not in shown and "s3cret" not in shown
