"""Reading a plain directory: which files, relative paths, and a content digest revision."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reconciler.core import parse
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


def refusals(root: Path) -> dict[str, str]:
    with pytest.raises(directory.UnreadableDirectory) as caught:
        directory.read_directory(root)
    return {p.path: p.message for p in caught.value.problems}


def test_a_symlink_to_a_secret_file_is_refused_and_never_read(tmp_path: Path) -> None:
    outside = tmp_path / "shadow"
    outside.write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    root = repo.copy_example(tmp_path / "repo")
    (root / "dirac-cert/web/shadow.yaml").symlink_to(outside)
    problems = refusals(root)
    assert list(problems) == ["dirac-cert/web/shadow.yaml"]
    assert "symbolic link not allowed" in problems["dirac-cert/web/shadow.yaml"]
    assert "secret-hash" not in str(problems)


def test_a_symlink_to_a_valid_app_outside_the_repo_is_not_loaded(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text((root / "dirac-cert/web/portal.yaml").read_text())
    (root / "dirac-cert/web/stray.yaml").symlink_to(outside)
    (root / "dirac-cert/linked").symlink_to(tmp_path / "repo/dirac-cert/web")
    problems = refusals(root)
    assert set(problems) == {"dirac-cert/web/stray.yaml", "dirac-cert/linked"}
    assert all("symbolic link not allowed" in m for m in problems.values())


def test_a_broken_symlink_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    (root / "gone.yaml").symlink_to(tmp_path / "nothing-here")
    assert "symbolic link not allowed" in refusals(root)["gone.yaml"]


@pytest.mark.timeout(20)
def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    # Opening a FIFO for reading blocks until a writer comes: a hang, if it were opened.
    root = repo.copy_example(tmp_path / "repo")
    os.mkfifo(root / "dirac-cert/web/pipe.yaml")
    assert refusals(root) == {"dirac-cert/web/pipe.yaml": "not a regular file (a FIFO): not read"}


def test_a_device_is_refused_without_being_opened(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    try:
        os.mknod(root / "zero.yaml", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    assert refusals(root) == {"zero.yaml": "not a regular file (a character device): not read"}


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    with open(root / "huge.yaml", "wb") as huge:
        huge.truncate(64 * parse.MAX_FILE_BYTES)  # sparse: no disk, and no read either
    assert "file too large" in refusals(root)["huge.yaml"]


def test_undecodable_and_unreadable_files_are_each_reported_as_path_message(
        tmp_path: Path) -> None:
    root = repo.copy_example(tmp_path / "repo")
    (root / "latin1.yaml").write_bytes(b"instances: 1\nlabels: {team: \xe9quipe}\n")
    locked = root / "locked.yaml"
    locked.write_text("instances: 1\n")
    locked.chmod(0)
    problems = refusals(root)
    assert problems["latin1.yaml"].startswith("not UTF-8 text")
    if os.geteuid() != 0:  # root reads whatever the mode says
        assert problems["locked.yaml"] == "Permission denied"
    with pytest.raises(directory.UnreadableDirectory) as caught:
        directory.read_directory(root)
    assert "latin1.yaml:2: not UTF-8 text" in str(caught.value)
