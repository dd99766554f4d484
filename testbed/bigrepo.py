"""A large config repo for benchmarks: N DIRAC services, one YAML file each, as users write
them (image by name from ``images.yaml``, comments, flow and block style)."""

from __future__ import annotations

from pathlib import Path

SERVICES = [
    ("configuration", "server", "Configuration/Server", 9135),
    ("datamanagement", "filecatalog", "DataManagement/FileCatalog", 9197),
    ("datamanagement", "ftsmanager", "DataManagement/FTS3Manager", 9193),
    ("requestmanagement", "reqmanager", "RequestManagement/ReqManager", 9140),
    ("requestmanagement", "executor", "RequestManagement/RequestExecutingAgent", 8080),
    ("bookkeeping", "server", "Bookkeeping/BookkeepingManager", 9167),
    ("web", "portal", "WebApp", 8443),
]

APP = """# DIRAC {component} at {site}
instances: {instances}
cpus: 0.1
mem: 256
args: [dirac-service, {component}]
container:
  type: DOCKER
  docker:
    image: lhcbdirac
  portMappings:
    - {{name: dips, containerPort: {port}, hostPort: 0, servicePort: 0}}
networks:
  - mode: container/bridge
env:
  DIRAC_SETUP: LHCb-Certification
  DIRAC_COMPONENT: {component}
labels:
  team: lhcb-dirac
  site: {site}
constraints:
  - [hostname, MAX_PER, "2"]
healthChecks:
  - protocol: MESOS_HTTP
    path: /
    portIndex: 0
    gracePeriodSeconds: 10
    intervalSeconds: 2
    timeoutSeconds: 2
    maxConsecutiveFailures: 3
upgradeStrategy:
  minimumHealthCapacity: 0.5
  maximumOverCapacity: 0.2
"""


def app_path(index: int) -> str:
    """``bench/site0003/datamanagement/filecatalog.yaml``: the app id is its folder path."""
    group, name, _, _ = SERVICES[index % len(SERVICES)]
    return f"bench/site{index // len(SERVICES):04d}/{group}/{name}.yaml"


def write(root: Path, apps: int, *, tag: str = "v8r2p44", instances: int = 0) -> Path:
    """Write the repo under ``root`` (files only; commit it with :mod:`testbed.gitrepos`)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "images.yaml").write_text(
        f"images:\n  lhcbdirac:\n    repository: lhcbdirac\n    tag: {tag}\n")
    (root / "reconciler.yaml").write_text(
        "managedPrefixes: [/bench]\ndriftPolicy:\n  /bench: correct\n")
    for index in range(apps):
        group, name, component, port = SERVICES[index % len(SERVICES)]
        path = root / app_path(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(APP.format(component=component, port=port, instances=instances,
                                   site=f"site{index // len(SERVICES):04d}"))
    return root


def files(apps: int, *, tag: str = "v8r2p44", instances: int = 0) -> dict[str, str]:
    """The same repo as ``{path: text}`` (for :class:`testbed.gitrepos.Upstream`)."""
    out = {"images.yaml": f"images:\n  lhcbdirac:\n    repository: lhcbdirac\n    tag: {tag}\n",
           "reconciler.yaml": "managedPrefixes: [/bench]\ndriftPolicy:\n  /bench: correct\n"}
    for index in range(apps):
        _, _, component, port = SERVICES[index % len(SERVICES)]
        out[app_path(index)] = APP.format(component=component, port=port, instances=instances,
                                          site=f"site{index // len(SERVICES):04d}")
    return out
