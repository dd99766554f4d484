"""Mistakes an operator makes on the host, said in one line at start (exit 1, no traceback):
a signing key file that holds no key, a trusted keys file with no usable key, verification on
with a plain folder as the repo; and ``reconciler windows`` at the end of time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.shell import ports
from testbed.gitrepos import Upstream
from tests.sync import cluster

IMAGES = "images:\n  dirac:\n    repository: lhcbdirac\n    tag: v8r2p44\n"


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"RECONCILER_MARATHON_URL": "http://127.0.0.1:9",
                   "RECONCILER_STATE_DIR": str(tmp_path / "state"),
                   "RECONCILER_LISTEN": f"127.0.0.1:{ports.free_port()}",
                   "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env}
    return subprocess.run([sys.executable, "-m", "reconciler", "run"], capture_output=True,
                          text=True, timeout=120, env=environment, cwd=cluster.REPO_ROOT)


def _one_line(result: subprocess.CompletedProcess[str], *, says: str) -> None:
    assert result.returncode == 1, cluster.explain(result)
    assert "Traceback" not in result.stderr, cluster.explain(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], cluster.explain(result)


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return Upstream.create(tmp_path / "git", {"images.yaml": IMAGES})


def test_a_signing_key_file_without_a_key_stops_run_in_one_line(
        tmp_path: Path, upstream: Upstream) -> None:
    garbage = tmp_path / "signing.asc"
    garbage.write_text("not a key\n")
    result = _run(tmp_path, RECONCILER_REPO_URL=upstream.url,
                  RECONCILER_SIGNING_KEY_FILE=str(garbage))
    _one_line(result, says=str(garbage))


def test_a_trusted_keys_file_without_a_usable_key_stops_run_at_start(
        tmp_path: Path, upstream: Upstream) -> None:
    garbage = tmp_path / "trusted.asc"
    garbage.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\nnonsense\n")
    result = _run(tmp_path, RECONCILER_REPO_URL=upstream.url,
                  RECONCILER_TRUSTED_KEYS_FILE=str(garbage))
    _one_line(result, says="no OpenPGP public key could be imported")


def test_verification_with_a_plain_folder_as_repo_stops_run_in_one_line(
        tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "images.yaml").write_text(IMAGES)
    trusted = tmp_path / "allowed_signers"
    trusted.write_text("")
    result = _run(tmp_path, RECONCILER_REPO_URL=str(folder),
                  RECONCILER_ALLOWED_SIGNERS_FILE=str(trusted))
    _one_line(result, says="a plain folder has no signed commits")


def test_windows_at_the_end_of_time_answers_without_a_traceback(tmp_path: Path) -> None:
    repo = cluster.write_repo(tmp_path / "repo", [cluster.fast_app("/dirac/fts")],
                              tag="v8r2p44", settings={"windows": [
                                  {"kind": "deny", "schedule": "0 18 * * 5",
                                   "duration": "62h"}]})
    for at in ("9999-12-31T23:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"):
        result = cluster.reconciler("windows", str(repo), "--at", at)
        assert result.returncode == 0, cluster.explain(result)
        assert "Traceback" not in result.stderr
