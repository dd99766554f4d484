"""The one dev-cluster launcher: a free port told by the child, a clear failure, a clean stop."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import requests

from reconciler.devcluster import launch


def test_the_launcher_imports_nothing_else_from_reconciler() -> None:
    """The controller imports it: it must not bring the dev cluster's code along."""
    tree = ast.parse(Path(launch.__file__).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.startswith("reconciler")]


@pytest.mark.integration
def test_a_launched_cluster_listens_where_its_url_file_says_until_stopped(
    tmp_path: Path,
) -> None:
    cluster = launch.launch(state_dir=tmp_path / "dev")
    try:
        assert cluster.url == f"http://127.0.0.1:{cluster.port}"
        assert launch.read_url(tmp_path / "dev") == cluster.url
        assert requests.get(f"{cluster.url}/ping", timeout=5).text == "pong"
    finally:
        cluster.stop()
    assert cluster.process.returncode is not None
    assert launch.read_url(tmp_path / "dev") is None


@pytest.mark.integration
def test_a_cluster_that_cannot_start_is_reported_with_its_log(tmp_path: Path) -> None:
    bad = tmp_path / "images.yaml"
    bad.write_text("images: {}\n")
    with pytest.raises(launch.DidNotStart, match="devcluster.log") as error:
        launch.launch(state_dir=tmp_path / "dev", images=bad)
    assert "expected a top-level 'images:' list" in error.value.log_path.read_text()
