"""Two dev clusters, certification's and production's, for tests of several environments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.devcluster import launch


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[tuple[launch.RunningCluster, launch.RunningCluster]]:
    cert = launch.launch(state_dir=tmp_path / "cert-cluster")
    try:
        prod = launch.launch(state_dir=tmp_path / "prod-cluster")
        try:
            yield cert, prod
        finally:
            prod.stop()
    finally:
        cert.stop()
