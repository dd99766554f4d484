"""The dev cluster's persistence: apps, their versions and running deployments in ``state.json``.

Written whole (to a temporary file, then renamed) so a crash never leaves half a file; read
once at start, so a restarted dev cluster keeps its apps and resumes its deployments, as a
Marathon whose leader changed does.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson

from reconciler.devcluster import model, tree

STATE_FILE = "state.json"
FRAMEWORK_ID_FILE = "framework-id"


def framework_id(state_dir: Path) -> str:
    """This cluster's Mesos framework id: made at first start and kept, as Marathon keeps the
    id Mesos gave it at registration (in ZooKeeper) across restarts and leader changes."""
    path = state_dir / FRAMEWORK_ID_FILE
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    made = f"devcluster-{uuid.uuid4()}-0000"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(made + "\n")
    tmp.replace(path)
    return made


Loaded = tuple[dict[str, model.AppRecord], dict[str, model.Deployment], tree.GroupTree | None]


def load(state_dir: Path) -> Loaded:
    """The apps, deployments and groups kept in ``state_dir`` (none when nothing was kept)."""
    path = state_dir / STATE_FILE
    apps: dict[str, model.AppRecord] = {}
    deployments: dict[str, model.Deployment] = {}
    if not path.exists():
        return apps, deployments, None
    data = orjson.loads(path.read_bytes())
    for item in data.get("apps", []):
        app = item["app"]
        apps[app["id"]] = model.AppRecord(app=app, versions=item["versions"])
    for item in data.get("deployments", []):
        deployment = model.Deployment(id=item["id"], version=item["version"],
                                      original=item["original"], target=item["target"],
                                      steps=item["steps"])
        deployments[deployment.id] = deployment
    groups = tree.GroupTree.from_json(data["tree"]) if "tree" in data else None
    return apps, deployments, groups


def snapshot(
    apps: dict[str, model.AppRecord], deployments: dict[str, model.Deployment],
    groups: tree.GroupTree,
) -> bytes:
    """The state to keep, serialized; call it on the event loop (the only place it changes).

    Of the group tree only the current groups and version are kept, not its history."""
    return orjson.dumps({
        "tree": groups.to_json(),
        "apps": [{"app": r.app, "versions": r.versions} for r in apps.values()],
        "deployments": [
            {"id": d.id, "version": d.version, "original": d.original, "target": d.target,
             "steps": d.steps}
            for d in deployments.values()
        ],
    })


def write(state_dir: Path, data: bytes) -> None:
    """Replace the kept state with ``data`` (a :func:`snapshot`)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
