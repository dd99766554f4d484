"""Build small config repos in memory (SourceFiles) for loader and diff tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from reconciler.core import model
from reconciler.shell import directory

EXAMPLE = Path(__file__).resolve().parents[2] / "desired-state"

IMAGES = """\
images:
  lhcbdirac:
    repository: lhcbdirac
    tag: v8r2p44
"""

SETTINGS = """\
managedPrefixes: [/dirac-cert]
"""

APP = """\
instances: 1
cpus: 0.1
mem: 128
container:
  docker:
    image: lhcbdirac
  portMappings:
    - {name: dips, containerPort: 9135}
networks:
  - mode: container/bridge
healthChecks:
  - protocol: MESOS_HTTP
    portIndex: 0
"""


def with_files(overrides: dict[str, str | None]) -> list[model.SourceFile]:
    """The base repo with files replaced, added, or (value None) removed."""
    base: dict[str, str | None] = {"images.yaml": IMAGES, "reconciler.yaml": SETTINGS,
                                   "dirac-cert/configuration/server.yaml": APP}
    base.update(overrides)
    return [model.SourceFile(path=p, text=t) for p, t in base.items() if t is not None]


def copy_example(target: Path) -> Path:
    shutil.copytree(EXAMPLE, target)
    return target


def example_files() -> tuple[list[model.SourceFile], str]:
    return directory.read_directory(EXAMPLE)
