"""Reading a plain directory: which files, relative paths, and a content digest revision."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.shell import directory
from tests.core import repo


def test_reads_config_files_only_with_a_stable_content_digest(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    (root / "README.md").write_text("# docs")
    (root / ".git").mkdir()
    (root / ".git" / "config.yaml").write_text("not: [read")
    files, revision = directory.read_directory(root)
    paths = [f.path for f in files]
    assert "images.yaml" in paths and "dirac-cert/web/portal.yaml" in paths
    assert not any(p.startswith(".git") or p == "README.md" for p in paths)
    assert paths == sorted(paths)
    assert revision.startswith("dir:") and len(revision) == len("dir:") + 64
    assert directory.read_directory(root)[1] == revision
    (root / "README.md").write_text("# other docs")
    assert directory.read_directory(root)[1] == revision


def test_any_content_change_changes_the_revision(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    _, before = directory.read_directory(root)
    images = root / "images.yaml"
    images.write_text(images.read_text().replace("v8r2p44", "v8r2p45"))
    assert directory.read_directory(root)[1] != before


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(directory.UnreadableDirectory, match="not a directory"):
        directory.read_directory(tmp_path / "nope")
