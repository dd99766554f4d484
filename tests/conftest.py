"""Fixtures shared by every test folder: real processes, temporary directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.devcluster import launch

REPO_ROOT = Path(__file__).resolve().parent.parent
MARATHON_REFERENCE = REPO_ROOT.parent / "shared" / "marathon-reference"


@pytest.fixture
def devcluster(tmp_path: Path) -> Iterator[launch.RunningCluster]:
    """A fresh dev cluster subprocess on a free port, with the shipped image catalog."""
    cluster = launch.launch(state_dir=tmp_path / "devcluster")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def marathon_reference() -> Path:
    """Marathon's own API examples and RAML schemas (see its README)."""
    if not MARATHON_REFERENCE.is_dir():
        pytest.fail(f"{MARATHON_REFERENCE} is missing: CI clones main with shared/ beside it")
    return MARATHON_REFERENCE
